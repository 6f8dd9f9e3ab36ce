"""Settings of the 2D editor: plain dataclasses, validated on construction.

Defaults are the published ones (Watch Your Steps, InstructPix2Pix); each field
names its source. Invalid values raise ``ValueError`` with a one-line message the
CLIs show as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

RelevanceSpace = Literal["latent", "pixel"]


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")


@dataclass(frozen=True)
class RelevanceConfig:
    """How a relevance map is estimated from the text-versus-no-text noise gap."""

    timestep_fraction: float = 0.8
    """Noise level of the probe, as a fraction of the scheduler's training timesteps (WYS: 0.8)."""
    noise_samples: int = 1
    """Noise draws averaged per map; more lowers variance (WYS code: 1)."""
    iqr_factor: float = 1.5
    """Upper outliers are clamped at Q3 + k * IQR (WYS: 1.5 in 2D, 2.0 in 3D)."""
    space: RelevanceSpace = "latent"
    """Where the two predictions are compared. latent (WYS): their noise, at latent resolution, upsampled.
    pixel: their clean-image estimates decoded by the VAE, at image resolution; sharper edges where an
    object spans few latent cells, for two VAE decodes per noise draw."""

    def __post_init__(self) -> None:
        _check_range("relevance timestep_fraction", self.timestep_fraction, 0.0, 1.0)
        if self.noise_samples < 1:
            raise ValueError(f"relevance noise_samples must be at least 1, got {self.noise_samples}")
        if self.iqr_factor < 0:
            raise ValueError(f"relevance iqr_factor must be non-negative, got {self.iqr_factor:g}")
        if self.space not in get_args(RelevanceSpace):
            spaces = ", ".join(get_args(RelevanceSpace))
            raise ValueError(f"relevance space must be one of {spaces}, got {self.space!r}")


EditSchedule = Literal["truncate", "spread"]


@dataclass(frozen=True)
class EditConfig:
    """How an InstructPix2Pix edit is run and where it is allowed to change the image."""

    steps: int = 100
    """DDIM denoising steps (IP2P and WYS 2D: 100; IN2N/WYS 3D: 20)."""
    text_guidance: float = 7.5
    """Classifier-free guidance on the instruction, s_T (IP2P: 7.5)."""
    image_guidance: float = 1.5
    """Classifier-free guidance on the input image, s_I (IP2P: 1.0-1.5; IN2N: 1.5)."""
    threshold: float = 0.5
    """Relevance at or above this is edited (WYS: 0.5). 0 edits everywhere: plain IP2P."""
    strength: float = 1.0
    """Noise level the edit starts from, as a fraction of the scheduler's timesteps (1: pure noise, as IP2P)."""
    schedule: EditSchedule = "truncate"
    """How a strength below 1 is run: "truncate" runs the last ``steps * strength`` of ``steps`` DDIM steps from
    the noised input (diffusers' img2img); "spread" runs all ``steps`` over [0, strength * T] (Instruct-NeRF2NeRF)."""
    crop_margin: float | None = None
    """Edit only the bounding box of the thresholded relevance, widened on each side by this fraction of its longer
    side (context for the editor), instead of the whole view: fewer latent cells when the region is small, and more
    of the working resolution spent on it when the view is larger than that. None: the whole view (IP2P, WYS)."""

    def __post_init__(self) -> None:
        if self.schedule not in get_args(EditSchedule):
            raise ValueError(f"schedule must be one of {', '.join(get_args(EditSchedule))}, got {self.schedule!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        _check_range("threshold", self.threshold, 0.0, 1.0)
        _check_range("text guidance", self.text_guidance, 0.0, 100.0)
        _check_range("image guidance", self.image_guidance, 0.0, 100.0)
        if self.crop_margin is not None and self.crop_margin < 0:
            raise ValueError(f"crop margin must be non-negative, got {self.crop_margin:g}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength:g}")
