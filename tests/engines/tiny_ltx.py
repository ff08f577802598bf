"""A tiny, randomly initialised LTX-2 model built entirely in code (nothing from a hub).

``build_tiny_ltx(directory)`` writes a complete diffusers-format LTX-2 weights
directory (the layout of the real ``Lightricks/LTX-2`` diffusers repos: one
sub-folder per component plus ``model_index.json``) and a ``latent_upsampler``
folder for the two-stage path. The engine then loads it through exactly the
same registry path as real weights.

Shapes mirror the real model where the engine depends on them: the video VAE
compresses 32x in space and 8x in time (so frame counts are 8k+1 and sizes
multiples of 32), the audio VAE works on 16 kHz mel frames with a hop of 160,
and the vocoder's upsampling matches its declared output rate. Everything else
is as small as the modules allow, so one denoising step takes milliseconds.

The scheduler is the real checkpoints' (``LTX23_DEV_SCHEDULER``: dynamic shifting
on, ``shift_terminal`` 0.1), so explicit sigma schedules are exposed to the same
shifting as on real weights; ``distilled_copy`` gives the distilled checkpoints'
unshifted one. ``build_lora`` writes a small LoRA for the tiny transformer in the
format ``load_lora_weights`` reads (the stage-2 distilled LoRA, the HDR IC-LoRA),
``build_hdr_embeds`` the HDR IC-LoRA's precomputed connector embeddings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

VOCAB = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<img>",
    "a",
    "the",
    "of",
    "and",
    "in",
    "on",
    "with",
    "cat",
    "dog",
    "robot",
    "city",
    "night",
    "sunset",
    "camera",
    "slowly",
    "moves",
    "forward",
    "dolly",
    "static",
    "shot",
    "video",
    "music",
    "sea",
    "bird",
]
MAX_SEQUENCE_LENGTH = 16

# scheduler/scheduler_config.json of the LTX-2.3 dev checkpoint (diffusers/LTX-2.3-Diffusers).
# Sources: diffusers' scripts/convert_ltx2_to_diffusers.py (the scheduler it saves with a
# converted full pipeline), diffusers' tiny LTX-2.3 checkpoint builder ("match LTX-2.3's
# scheduler params":
# use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, shift_terminal=0.1,
# base_image_seq_len=1024, max_image_seq_len=4096) and diffusers' LTX-2 docs
# (docs/source/en/api/pipelines/ltx2.md: the full transformer runs with dynamic shifting and
# shift_terminal=0.1; the two-stage example swaps in an unshifted copy, use_dynamic_shifting=False
# and shift_terminal=None, for STAGE_2_DISTILLED_SIGMA_VALUES). The other keys are
# FlowMatchEulerDiscreteScheduler's defaults, as the checkpoint's file has them.
LTX23_DEV_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.95,
    "max_shift": 2.05,
    "base_image_seq_len": 1024,
    "max_image_seq_len": 4096,
    "shift_terminal": 0.1,
    "invert_sigmas": False,
    "time_shift_type": "exponential",
    "stochastic_sampling": False,
}
# The distilled checkpoints ship the scheduler with shifting off, "so that its sigma schedule
# is used exactly as given" (same docs page, LTX-2.5 / distilled sections).
LTX23_DISTILLED_SCHEDULER: dict[str, Any] = {
    **LTX23_DEV_SCHEDULER,
    "use_dynamic_shifting": False,
    "shift_terminal": None,
}


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=MAX_SEQUENCE_LENGTH,
        padding_side="left",
    )


def _text_encoder() -> Any:
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config={
            "vocab_size": len(VOCAB),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 64,
            "sliding_window": 16,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 4,
        },
        mm_tokens_per_image=4,
        image_token_index=4,
        boi_token_index=2,
        eoi_token_index=1,
    )
    return Gemma3ForConditionalGeneration(config).eval()


def build_components(seed: int = 0) -> dict[str, Any]:
    """All LTX2Pipeline components, tiny and random (deterministic for ``seed``)."""
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(seed)
    text_encoder = _text_encoder()
    hidden = text_encoder.config.text_config.hidden_size
    layers = text_encoder.config.text_config.num_hidden_layers
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=1,
        caption_channels=hidden,
        rope_double_precision=False,
        rope_type="split",
    )
    connectors = LTX2TextConnectors(
        caption_channels=hidden,
        text_proj_in_factor=layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1, 1, 1),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    # 100 mel frames/s x (5 * 4 * 4) = 8000 samples/s: consistent with the declared rate.
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins,
        hidden_channels=8,
        out_channels=2,
        upsample_kernel_sizes=[10, 8, 8],
        upsample_factors=[5, 4, 4],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=8000,
    )
    return {
        "transformer": transformer,
        "vae": vae,
        "audio_vae": audio_vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(**LTX23_DEV_SCHEDULER),
        "text_encoder": text_encoder,
        "tokenizer": _tokenizer(),
        "connectors": connectors,
        "vocoder": vocoder,
    }


def build_upsampler(seed: int = 0) -> Any:
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel

    torch.manual_seed(seed)
    return LTX2LatentUpsamplerModel(
        in_channels=8,
        mid_channels=32,
        num_blocks_per_stage=1,
        dims=3,
        spatial_upsample=True,
        temporal_upsample=False,
        use_rational_resampler=False,
    )


def build_tiny_ltx(directory: Path | str, seed: int = 0, upsampler: bool = True) -> Path:
    """Save a tiny LTX-2 pipeline in diffusers format to ``directory``; return it."""
    from diffusers import LTX2Pipeline

    directory = Path(directory)
    pipe = LTX2Pipeline(**build_components(seed))
    pipe.save_pretrained(directory, safe_serialization=True)
    if upsampler:
        build_upsampler(seed).save_pretrained(
            directory / "latent_upsampler", safe_serialization=True
        )
    return directory


def distilled_copy(weights: Path | str, directory: Path | str) -> Path:
    """The same tiny weights as a "distilled checkpoint": its scheduler does not shift."""
    directory = Path(directory)
    shutil.copytree(weights, directory)
    config = directory / "scheduler" / "scheduler_config.json"
    data = json.loads(config.read_text())
    data.update(use_dynamic_shifting=False, shift_terminal=None)
    config.write_text(json.dumps(data, indent=2))
    return directory


def build_lora(weights: Path | str, path: Path | str, seed: int = 1, rank: int = 2) -> Path:
    """A random LoRA for the tiny transformer in ``weights``, saved where ``path`` says.

    Written with diffusers' own ``save_lora_weights`` (peft layout), as the Lightricks
    LoRA files are read; ``lora_B`` is random rather than zero so the adapter changes
    the transformer's output.
    """
    from diffusers import LTX2Pipeline, LTX2VideoTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    path = Path(path)
    torch.manual_seed(seed)
    transformer = LTX2VideoTransformer3DModel.from_pretrained(
        str(Path(weights) / "transformer"), local_files_only=True
    )
    transformer.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights=False,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    LTX2Pipeline.save_lora_weights(
        path.parent,
        weight_name=path.name,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
    )
    return path


def build_hdr_embeds(weights: Path | str, path: Path | str) -> Path:
    """Connector embeddings of the empty prompt, as the HDR IC-LoRA ships them precomputed.

    ``video_context`` / ``audio_context`` (batch 1, like the released file), for
    ``LTX2HDRPipeline(connector_video_embeds=..., connector_audio_embeds=...)``.
    """
    from diffusers import LTX2Pipeline
    from safetensors.torch import save_file

    path = Path(path)
    pipe = LTX2Pipeline.from_pretrained(str(weights), local_files_only=True)
    with torch.no_grad():
        embeds, mask, _, _ = pipe.encode_prompt(
            "", do_classifier_free_guidance=False, max_sequence_length=MAX_SEQUENCE_LENGTH
        )
        video, audio, _ = pipe.connectors(embeds, mask, padding_side="left")
    save_file({"video_context": video.contiguous(), "audio_context": audio.contiguous()}, str(path))
    return path
