"""Loading LTX-2 weights into diffusers pipelines, once per worker process.

One ``LTX2Pipeline`` is loaded per distinct weights directory; the other
pipelines (image-to-video, condition, HDR) are built from its modules with
``from_pipe``, so they add no memory. Offloading hooks live on the shared
modules and therefore serve every pipeline, but only the base pipeline owns
them: its ``maybe_free_model_hooks`` (which moves every module back to the host)
runs at the end of its own calls only, so after a call of any other pipeline
the engine calls it itself (:meth:`LoadedModel.free`). Nothing is ever
downloaded: the hub is switched off before diffusers is imported and every load
is ``local_files_only``.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltxserve.engines.ltx.frames import allow_raw_output
from ltxserve.engines.ltx.registry import ModelSpec, Registry

log = logging.getLogger(__name__)

_HDR_COMPONENTS = (
    "scheduler",
    "vae",
    "audio_vae",
    "text_encoder",
    "tokenizer",
    "connectors",
    "transformer",
    "vocoder",
)


def offline() -> None:
    """Forbid hub access for this process (set before diffusers/transformers import)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@dataclass
class LoadedModel:
    """Resident pipelines for one weights directory (shared by every spec naming it)."""

    base: Any  # LTX2Pipeline
    device: str
    offload: str = "none"
    pipes: dict[str, Any] = field(default_factory=dict)
    # The checkpoint's scheduler (shifts sigmas when the checkpoint says so: dev weights) and
    # an unshifted copy for explicit sigma schedules (see generate.py).
    scheduler: Any = None
    fixed_scheduler: Any = None
    upsamplers: dict[str, Any] = field(default_factory=dict)  # path -> LatentUpsamplePipeline
    adapters: dict[str, str] = field(default_factory=dict)  # LoRA file -> adapter name
    active: tuple[str, ...] | None = None

    def pipe(self, kind: str) -> Any:
        return self.pipes[kind]

    def free(self) -> None:
        """Move every module back to the host after a pipeline call (``offload: model``).

        The image-to-video, condition and HDR pipelines and the upsampler share the
        base's modules but not its offload hooks, so their own end-of-call
        ``maybe_free_model_hooks`` does nothing: without this the transformer would
        stay on the GPU after a stage that returns latents, while the text encoder
        or the next job's modules load next to it.
        """
        if self.offload == "model":
            self.base.maybe_free_model_hooks()

    def upsampler(self, spec: ModelSpec) -> Any | None:
        return None if spec.upsampler is None else self.upsamplers[str(spec.upsampler)]

    def use_loras(self, *files: Path | None) -> None:
        """Switch exactly these LoRA files on (e.g. the HDR IC-LoRA) for the next run."""
        names = tuple(self.adapters[str(f)] for f in files if f is not None)
        if not self.adapters or names == self.active:
            return
        if names:
            self.base.enable_lora()
            self.base.set_adapters(list(names), [1.0] * len(names))
        else:
            self.base.disable_lora()
        self.active = names

    def attach(self, spec: ModelSpec, dtype: Any) -> None:
        """Load what this spec adds to the shared weights: LoRAs and a latent upsampler."""
        diffusers: Any = importlib.import_module("diffusers")
        ltx2: Any = importlib.import_module("diffusers.pipelines.ltx2")

        for lora in (spec.hdr_lora, spec.stage2_lora):
            if lora is not None and str(lora) not in self.adapters:
                name = f"lora{len(self.adapters)}"
                self.base.load_lora_weights(str(lora), adapter_name=name)
                self.adapters[str(lora)] = name
                self.active = None
        if spec.upsampler is not None and str(spec.upsampler) not in self.upsamplers:
            model = ltx2.LTX2LatentUpsamplerModel.from_pretrained(
                str(spec.upsampler), dtype=dtype, local_files_only=True
            )
            model.to(self.device)  # small; kept on the device even when the rest offloads
            self.upsamplers[str(spec.upsampler)] = diffusers.LTX2LatentUpsamplePipeline(
                vae=self.base.vae, latent_upsampler=model
            )
        self.use_loras()


def tile_vae(vae: Any) -> None:
    """Tile the video VAE in space and time.

    ``enable_tiling`` alone tiles width and height only; without the framewise flags
    the encoder and decoder activations grow with every frame of the clip (505 at
    most). diffusers' ``_encode`` tests ``use_framewise_decoding`` too, so both are set.
    """
    vae.enable_tiling()
    vae.use_framewise_encoding = True
    vae.use_framewise_decoding = True


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[name]


def load_model(spec: ModelSpec, *sharing: ModelSpec) -> LoadedModel:
    """Load ``spec``'s weights once, with the LoRAs and upsamplers of every spec sharing them.

    LoRAs are loaded before offloading is set up: ``load_lora_weights`` on an offloaded
    pipeline strips the hooks and re-applies them without the configured device.
    """
    offline()
    import torch

    diffusers: Any = importlib.import_module("diffusers")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging: Any = importlib.import_module("transformers.utils.logging")
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    if spec.cpu_threads:
        torch.set_num_threads(spec.cpu_threads)
    dtype = _torch_dtype(spec.dtype)
    if spec.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"model {spec.name}: device {spec.device} but CUDA is not available")
    log.info("loading %s from %s (%s, offload=%s)", spec.name, spec.path, spec.dtype, spec.offload)
    base = diffusers.LTX2Pipeline.from_pretrained(
        str(spec.path), dtype=dtype, local_files_only=True
    )
    loaded = LoadedModel(base, spec.device, spec.offload)
    loaded.scheduler = base.scheduler
    # diffusers' two-stage example: explicit sigmas (stage 2, the distilled schedule) go
    # through a copy that neither shifts by sequence length nor stretches to shift_terminal.
    loaded.fixed_scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        base.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    loaded.pipes = {  # built before offloading: they share (and then offload with) base's modules
        "t2v": base,
        "i2v": diffusers.LTX2ImageToVideoPipeline.from_pipe(base, dtype=dtype),
        "cond": diffusers.LTX2ConditionPipeline.from_pipe(base, dtype=dtype),
        "hdr": diffusers.LTX2HDRPipeline(**{k: base.components[k] for k in _HDR_COMPONENTS}),
    }
    for pipe in loaded.pipes.values():
        allow_raw_output(pipe)
    if spec.vae_tiling:
        tile_vae(base.vae)
    for each in (spec, *sharing):
        loaded.attach(each, dtype)
    if spec.offload == "model":
        base.enable_model_cpu_offload(device=spec.device)
    elif spec.offload == "sequential":
        base.enable_sequential_cpu_offload(device=spec.device)
    else:
        base.to(spec.device)
    for pipe in loaded.pipes.values():
        pipe.set_progress_bar_config(disable=True)
    return loaded


def load_all(registry: Registry) -> dict[str, tuple[ModelSpec, LoadedModel]]:
    """Load every configured model; specs with the same weights share one copy."""
    groups: dict[tuple[str, str, str, str, bool], list[ModelSpec]] = {}
    for spec in registry.models.values():
        groups.setdefault(spec.share_key, []).append(spec)
    loaded = {key: load_model(*specs) for key, specs in groups.items()}
    return {name: (spec, loaded[spec.share_key]) for name, spec in registry.models.items()}
