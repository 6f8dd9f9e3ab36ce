"""Small InstructPix2Pix-architecture checkpoints built offline, for tests, demos and benchmarks.

No machine of this project can download weights, so the project makes its own: the
same diffusers and transformers classes as ``timbrooks/instruct-pix2pix`` with small
(or, for benchmarks, real-size) configs, and the real CLIP tokenizer rebuilt from the
BPE vocabulary that the ``open_clip_torch`` wheel ships.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

CLIP_CONTEXT_LENGTH = 77  # CLIP ViT-L/14 text positions, as in SD 1.5
CLIP_MERGES = 49152 - 256 - 2  # BPE merges CLIP keeps (openai/CLIP simple_tokenizer.py)


def _open_clip_vocabulary_file() -> Path:
    spec = importlib.util.find_spec("open_clip")  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise RuntimeError("the CLIP vocabulary comes from open_clip_torch: pip install --no-deps open_clip_torch")
    return Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte maps to a printable character."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def build_clip_tokenizer() -> CLIPTokenizer:
    """The 49,408-token CLIP tokenizer of Stable Diffusion 1.5, built offline."""
    lines = gzip.open(_open_clip_vocabulary_file()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : CLIP_MERGES + 1]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [symbol + "</w>" for symbol in alphabet] + ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_CONTEXT_LENGTH)


@dataclass(frozen=True)
class IP2PArchitecture:
    """Sizes of an InstructPix2Pix model; the defaults are a tiny one for CPU tests."""

    unet_channels: tuple[int, ...] = (32, 64)
    unet_layers_per_block: int = 2
    unet_attention_head_dim: int | tuple[int, ...] = 8
    vae_channels: tuple[int, ...] = (32, 32, 32, 32)  # four levels: stride 8, as SD's VAE
    vae_layers_per_block: int = 1
    text_hidden: int = 32
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 37
    prediction_type: str = "epsilon"
    """What the UNet predicts (the scheduler config's ``prediction_type``): IP2P's ``epsilon`` or ``v_prediction``."""

    @property
    def cross_attention_dim(self) -> int:
        return self.text_hidden


SD15_ARCHITECTURE = IP2PArchitecture(
    # Stable Diffusion 1.5 / InstructPix2Pix sizes (CompVis v1-inference.yaml, diffusers configs).
    unet_channels=(320, 640, 1280, 1280),
    unet_attention_head_dim=8,
    vae_channels=(128, 256, 512, 512),
    vae_layers_per_block=2,
    text_hidden=768,
    text_layers=12,
    text_heads=12,
    text_intermediate=3072,
)


def build_unet(arch: IP2PArchitecture) -> UNet2DConditionModel:
    levels = len(arch.unet_channels)
    return UNet2DConditionModel(
        block_out_channels=arch.unet_channels,
        layers_per_block=arch.unet_layers_per_block,
        in_channels=8,  # noisy latent (4) + image latent (4)
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        cross_attention_dim=arch.cross_attention_dim,
        attention_head_dim=arch.unet_attention_head_dim,
        norm_num_groups=min(32, arch.unet_channels[0]),
    )


def build_vae(arch: IP2PArchitecture) -> AutoencoderKL:
    levels = len(arch.vae_channels)
    return AutoencoderKL(
        block_out_channels=arch.vae_channels,
        layers_per_block=arch.vae_layers_per_block,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=4,
        norm_num_groups=min(32, arch.vae_channels[0]),
    )


def build_text_encoder(arch: IP2PArchitecture, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.text_hidden,
        intermediate_size=arch.text_intermediate,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        max_position_embeddings=CLIP_CONTEXT_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def build_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    # Stable Diffusion 1.5's noise schedule (scheduler_config.json of the released weights).
    return DDIMScheduler(
        prediction_type=prediction_type,
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_pipeline(
    arch: IP2PArchitecture = IP2PArchitecture(), seed: int = 0
) -> StableDiffusionInstructPix2PixPipeline:
    """A randomly initialised InstructPix2Pix pipeline of the given sizes (deterministic per seed)."""
    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer()
    return StableDiffusionInstructPix2PixPipeline(
        vae=build_vae(arch),
        text_encoder=build_text_encoder(arch, tokenizer),
        tokenizer=tokenizer,
        unet=build_unet(arch),
        scheduler=build_scheduler(arch.prediction_type),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_pipeline(pipe: StableDiffusionInstructPix2PixPipeline, directory: str | Path) -> Path:
    """Save as a diffusers checkpoint directory with safetensors weights."""
    directory = Path(directory)
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory
