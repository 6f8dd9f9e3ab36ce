"""Edit masks: from relevance to the binary masks that confine an edit, in pixel and latent space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor


def binarize(relevance: Float[Tensor, "b 1 h w"], threshold: float) -> Bool[Tensor, "b 1 h w"]:
    """Pixels whose relevance reaches ``threshold`` may change; threshold 0 selects every pixel."""
    return relevance >= threshold


def to_latent_mask(mask: Bool[Tensor, "b 1 H W"], latent_size: tuple[int, int]) -> Bool[Tensor, "b 1 h w"]:
    """A latent cell is edited when any pixel it covers is, so the pixel mask never reaches unedited latents."""
    return F.adaptive_max_pool2d(mask.float(), latent_size) > 0


def composite(
    edited: Float[Tensor, "b c h w"], original: Float[Tensor, "b c h w"], mask: Bool[Tensor, "b 1 h w"]
) -> Float[Tensor, "b c h w"]:
    """Take ``edited`` inside the mask and ``original`` bit for bit outside it."""
    return torch.where(mask, edited, original)
