"""Relevance maps: where an instruction wants to change an image (Watch Your Steps, sec. 3.1).

InstructPix2Pix predicts the noise of one noisy latent twice, with and without the
instruction; the per-pixel size of the difference is the relevance. These functions
turn that prediction gap into a map in [0, 1]; the editor supplies the two predictions,
either as noise at latent resolution (WYS) or as decoded clean images at pixel resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

NORMALISE_EPS = 1e-8
"""Keeps min-max normalisation finite on a constant map."""


def prediction_gap(
    with_text: Float[Tensor, "b c h w"], without_text: Float[Tensor, "b c h w"]
) -> Float[Tensor, "b 1 h w"]:
    """L1 distance over channels between the with- and without-instruction predictions."""
    return (with_text.float() - without_text.float()).abs().sum(dim=1, keepdim=True)


def predicted_clean_latents(
    noisy: Float[Tensor, "b c h w"], model_output: Float[Tensor, "b c h w"], alpha_cumprod: Tensor, prediction_type: str
) -> Float[Tensor, "b c h w"]:
    """The denoiser's estimate of the clean latent x0 from x_t and its output (Ho et al. 2020)."""
    if prediction_type == "epsilon":
        return (noisy - (1 - alpha_cumprod).sqrt() * model_output) / alpha_cumprod.sqrt()
    if prediction_type == "v_prediction":
        return alpha_cumprod.sqrt() * noisy - (1 - alpha_cumprod).sqrt() * model_output
    if prediction_type == "sample":
        return model_output
    raise ValueError(f"unknown scheduler prediction_type {prediction_type!r}")


def clamp_upper_outliers(values: Float[Tensor, "b 1 h w"], iqr_factor: float) -> Float[Tensor, "b 1 h w"]:
    """Clamp each map at Q3 + k * IQR, so a few extreme pixels do not squash the rest after scaling."""
    flat = values.flatten(1)
    q1 = torch.quantile(flat, 0.25, dim=1)
    q3 = torch.quantile(flat, 0.75, dim=1)
    upper = (q3 + iqr_factor * (q3 - q1)).view(-1, 1, 1, 1)
    return torch.minimum(values, upper)


def normalise(values: Float[Tensor, "b 1 h w"]) -> Float[Tensor, "b 1 h w"]:
    """Min-max scale each map to [0, 1]; a constant map becomes all zeros, never NaN."""
    flat = values.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return ((values - low) / (high - low + NORMALISE_EPS)).clamp(0.0, 1.0)


def relevance_from_gap(
    gap: Float[Tensor, "b 1 h w"], size: tuple[int, int], iqr_factor: float
) -> Float[Tensor, "b 1 H W"]:
    """Clamp outliers, normalise to [0, 1] and upsample the gap to ``size`` when it is coarser."""
    relevance = normalise(clamp_upper_outliers(gap, iqr_factor))
    if relevance.shape[-2:] != size:
        relevance = F.interpolate(relevance, size=size, mode="bilinear", align_corners=False)
    return relevance.clamp(0.0, 1.0)
