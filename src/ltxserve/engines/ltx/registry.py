"""The model registry: API model name -> local diffusers-format LTX-2 weights and run options.

A JSON (``.json``) or TOML (``.toml``) file named by ``LTXSERVE_LTX_MODELS_FILE``::

    {
      "defaults": {"dtype": "bfloat16", "offload": "model"},
      "models": {
        "ltx-2-3-pro":  {"path": "/weights/LTX-2.3", "schedule": "full",
                         "upsampler": "/weights/LTX-2.3/latent_upsampler",
                         "stage2_lora": "/weights/LTX-2.3/distilled-lora.safetensors"},
        "ltx-2-3-fast": {"path": "/weights/LTX-2.3-Distilled", "schedule": "distilled"}
      },
      "endpoint_models": {"video-to-video-hdr": "ltx-2-3-fast"}
    }

Relative paths are resolved against the file's directory. Entries that name the
same weights directory and dtype share one loaded copy. Nothing here imports
torch: the checks are file-system only, so ``available()`` stays cheap.

Only recipes diffusers' LTX-2 pipelines support are accepted (see ``_recipe_problems``):
bfloat16 on a GPU (float32 for CPU tests; Gemma 3 overflows in float16), the distilled
LoRA for a full model's stage 2, and the HDR IC-LoRA with the distilled recipe.
Doubtful choices (a schedule that does not match the checkpoint's scheduler) become
``Registry.warnings``, which the engine logs at load.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ltxserve.config import ConfigError

SCHEDULES = ("distilled", "full")
OFFLOADS = ("none", "model", "sequential")
DTYPES = ("bfloat16", "float16", "float32")
# Components without weights of their own (no config.json + tensors to check).
_PLAIN_COMPONENTS = {"scheduler", "tokenizer", "processor", "audio_scheduler"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")


def allowed_dtypes(device: str) -> tuple[str, ...]:
    """The dtypes a model on ``device`` may use (see ``_recipe_problems``)."""
    return ("bfloat16", "float32") if device == "cpu" else ("bfloat16",)


class RegistryError(ConfigError, ValueError):
    """The registry file or a weights directory it names is unusable: a configuration
    error, so ``serve`` and ``worker`` stop with one line instead of retrying."""

    setting = "LTXSERVE_LTX_MODELS_FILE"
    doc = "docs/model-engine.md"


@dataclass(frozen=True)
class ModelSpec:
    """How one API model is served. Unset guidance values take the schedule's defaults."""

    name: str
    path: Path
    dtype: str = "bfloat16"
    device: str = "cuda"
    schedule: str = "full"  # distilled (8 fixed sigmas, no CFG) | full (CFG + STG)
    steps: int | None = None  # default: 8 (distilled) / 30 (full)
    guidance_scale: float | None = None
    audio_guidance_scale: float | None = None
    stg_scale: float | None = None
    modality_scale: float | None = None
    stg_blocks: list[int] | None = field(default_factory=lambda: [28])
    offload: str = "none"  # none | model | sequential
    vae_tiling: bool = False
    max_sequence_length: int = 1024
    max_pixels: int | None = None  # generation-size cap (w*h); output is scaled to the plan
    max_frames: int = 505  # longest single generation (8k+1): the contract's 505-frame extend
    upsampler: Path | None = None  # latent upsampler dir: enables two-stage generation
    two_stage_min_pixels: int = 1920 * 1080  # two stages from this output area up
    stage2_sigmas: list[float] | None = None  # default: diffusers' STAGE_2_DISTILLED_SIGMA_VALUES
    stage2_lora: Path | None = None  # distilled LoRA applied in stage 2 of a full model
    hdr_lora: Path | None = None  # HDR IC-LoRA (video-to-video-hdr)
    hdr_embeds: Path | None = None  # safetensors with video_context / audio_context
    negative_prompt: str = ""
    seed: int | None = None  # fixed seed; default: derived from the job id
    cpu_threads: int | None = None  # torch.set_num_threads, for CPU runs

    @property
    def share_key(self) -> tuple[str, str, str, str, bool]:
        """Specs with equal keys share one loaded copy (VAE tiling is set on the shared VAE)."""
        return (str(self.path), self.dtype, self.device, self.offload, self.vae_tiling)


@dataclass(frozen=True)
class Registry:
    source: Path
    models: dict[str, ModelSpec]
    endpoint_models: dict[str, str]
    warnings: list[str] = field(default_factory=list)  # recipes diffusers does not vouch for

    def spec_for(self, endpoint: str, model: str | None) -> ModelSpec:
        name = model or self.endpoint_models.get(endpoint) or next(iter(self.models))
        spec = self.models.get(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def check_files(self) -> None:
        """Raise RegistryError naming every missing or incomplete weights path."""
        problems: list[str] = []
        for spec in self.models.values():
            problems += [f"{spec.name}: {p}" for p in weights_problems(spec.path)]
            if spec.upsampler is not None:
                problems += [
                    f"{spec.name}: upsampler {p}" for p in _component_problems(spec.upsampler)
                ]
            for label in ("stage2_lora", "hdr_lora", "hdr_embeds"):
                value = getattr(spec, label)
                if value is not None and not value.is_file():
                    problems.append(f"{spec.name}: {label} {value} does not exist")
        if problems:
            raise RegistryError(
                "LTX weights are missing or incomplete:\n  " + "\n  ".join(dict.fromkeys(problems))
            )
        refused: list[str] = []
        for spec in self.models.values():
            errors, warnings = checkpoint_recipe(spec)
            refused += errors
            self.warnings.extend(w for w in warnings if w not in self.warnings)
        if refused:
            raise RegistryError(
                "LTX model registry: unsupported recipe:\n  " + "\n  ".join(refused)
            )


def _component_problems(folder: Path) -> list[str]:
    if not folder.is_dir():
        return [f"{folder} is not a directory"]
    if not (folder / "config.json").is_file():
        return [f"{folder}/config.json is missing"]
    if not any(p.name.endswith(_WEIGHT_SUFFIXES) for p in folder.iterdir()):
        return [f"{folder} holds no weight files (*.safetensors)"]
    return []


def weights_problems(path: Path) -> list[str]:
    """What is missing from a diffusers-format pipeline directory (empty when complete)."""
    index = path / "model_index.json"
    if not path.is_dir():
        return [f"weights directory {path} does not exist"]
    if not index.is_file():
        return [f"{index} is missing (not a diffusers-format directory)"]
    try:
        components = json.loads(index.read_text())
    except ValueError as exc:
        return [f"{index} is not valid JSON ({exc})"]
    problems: list[str] = []
    for name, value in components.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        folder = path / name
        if name in _PLAIN_COMPONENTS:
            if not folder.is_dir() or not any(folder.iterdir()):
                problems.append(f"{folder} is missing or empty")
        else:
            problems += _component_problems(folder)
    return problems


def dev_checkpoint(path: Path) -> bool | None:
    """True for a full (dev) checkpoint, False for a distilled one, None when unknown.

    The dev checkpoints' scheduler shifts sigmas by sequence length
    (``use_dynamic_shifting``, ``shift_terminal`` 0.1); the distilled ones ship it
    with shifting off so that their fixed sigmas are used as given (diffusers' LTX-2
    docs). That flag is the only thing in a diffusers directory that tells them apart.
    """
    try:
        config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    except (OSError, ValueError):
        return None
    return bool(config.get("use_dynamic_shifting")) if isinstance(config, dict) else None


def checkpoint_recipe(spec: ModelSpec) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the spec's schedule against the checkpoint it names.

    Only warnings so far: the scheduler flag that tells a dev checkpoint from a
    distilled one is what diffusers' releases ship, but a conversion may set it
    otherwise, so a mismatch is reported, not refused.
    """
    dev = dev_checkpoint(spec.path)
    warnings: list[str] = []
    if dev is True and spec.schedule == "distilled":
        warnings.append(
            f"{spec.name}: schedule distilled on {spec.path}, which looks like a dev checkpoint "
            "(its scheduler shifts sigmas: use_dynamic_shifting true). diffusers' distilled "
            "recipe (DISTILLED_SIGMA_VALUES, no guidance) is for distilled weights"
        )
    if dev is False and spec.schedule == "full":
        warnings.append(
            f"{spec.name}: schedule full (30 guided steps) on {spec.path}, whose scheduler is a "
            "distilled checkpoint's (no sigma shifting); diffusers runs distilled weights with "
            "schedule distilled"
        )
    return [], warnings


def _recipe_problems(spec: ModelSpec) -> list[str]:
    """Registry-level refusals: combinations diffusers' LTX-2 pipelines cannot run right."""
    problems: list[str] = []
    name = spec.name
    if spec.dtype == "float16":
        problems.append(
            f"model {name}: dtype float16 is not supported: Gemma 3, the LTX-2 text encoder, "
            "overflows in float16 (empty or NaN prompt embeddings); use bfloat16"
        )
    if spec.dtype == "float32" and spec.dtype not in allowed_dtypes(spec.device):
        problems.append(
            f"model {name}: dtype float32 is for CPU test runs (device cpu) only; on "
            f"{spec.device} use bfloat16 (LTX-2.3 in float32 is about 140 GB)"
        )
    if spec.schedule == "full" and spec.upsampler is not None and spec.stage2_lora is None:
        problems.append(
            f"model {name}: a full-schedule model with an upsampler needs stage2_lora (the "
            "distilled LoRA, e.g. ltx-2.3-22b-distilled-lora-384.safetensors): diffusers' "
            "two-stage recipe runs stage 2's distilled sigmas with it"
        )
    if spec.schedule == "full" and (spec.hdr_lora is not None or spec.hdr_embeds is not None):
        problems.append(
            f"model {name}: hdr_lora/hdr_embeds need schedule distilled: diffusers' HDR recipe "
            "runs the distilled checkpoint with DISTILLED_SIGMA_VALUES and no guidance, and "
            "LTX2HDRPipeline cannot use connector embeddings with CFG or STG (they are batch 1 "
            "without an attention mask); serve video-to-video-hdr with a distilled model "
            "(endpoint_models)"
        )
    return problems


def _coerce(spec_fields: dict[str, Any], base: Path, name: str) -> ModelSpec:
    known = {f.name for f in fields(ModelSpec)}
    unknown = set(spec_fields) - known
    if unknown:
        raise RegistryError(f"model {name}: unknown option(s) {', '.join(sorted(unknown))}")
    if "path" not in spec_fields:
        raise RegistryError(f"model {name}: 'path' (the weights directory) is required")
    values = dict(spec_fields)
    for key in ("path", "upsampler", "stage2_lora", "hdr_lora", "hdr_embeds"):
        if values.get(key) is not None:
            p = Path(str(values[key])).expanduser()
            values[key] = p if p.is_absolute() else (base / p)
    spec = ModelSpec(name=name, **values)
    for key, allowed in (("schedule", SCHEDULES), ("offload", OFFLOADS), ("dtype", DTYPES)):
        if getattr(spec, key) not in allowed:
            raise RegistryError(f"model {name}: {key} must be one of {', '.join(allowed)}")
    if spec.max_frames < 9 or (spec.max_frames - 1) % 8:
        raise RegistryError(f"model {name}: max_frames must be 8k+1 and at least 9")
    problems = _recipe_problems(spec)
    if problems:
        raise RegistryError("\n".join(problems))
    return spec


def load_registry(path: Path | str) -> Registry:
    """Parse and validate the registry file (not the weights; see Registry.check_files)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RegistryError(f"LTX model registry {path} does not exist")
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, OSError) as exc:
        raise RegistryError(f"LTX model registry {path} could not be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data["models"]:
        raise RegistryError(f"LTX model registry {path} needs a non-empty 'models' table")
    defaults = data.get("defaults") or {}
    base = path.parent.resolve()
    models = {
        name: _coerce({**defaults, **(entry or {})}, base, name)
        for name, entry in data["models"].items()
    }
    endpoint_models = dict(data.get("endpoint_models") or {})
    for endpoint, name in endpoint_models.items():
        if name not in models:
            raise RegistryError(f"endpoint_models.{endpoint} names unknown model {name}")
    warnings = [
        f"{spec.name}: stage2_lora on a distilled model is not used by diffusers' "
        "distilled recipe (the weights are distilled already)"
        for spec in models.values()
        if spec.schedule == "distilled" and spec.stage2_lora is not None
    ]
    return Registry(path, models, endpoint_models, warnings)
