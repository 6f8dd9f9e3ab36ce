"""Editing at a working resolution: the editor sees a shrunken copy, the result comes back at full size.

InstructPix2Pix is trained at 256 px and works up to about 512 px; larger images edit
slowly, worse, or run out of memory. The editor therefore works on a copy whose long
side is at most ``resolution`` (antialiased bilinear, aspect ratio kept; the editor pads
to the VAE's stride itself), and the edit is brought back to the input's size: the
edited image by bilinear upsampling, the edit mask by thresholding its bilinear upsample
at one half (a smooth boundary through the mask's half-way contour, where nearest
upsampling would draw staircases one edit pixel wide), and outside that mask the
full-size input is kept bit for bit. A binary mask is resized the same way both ways (its
resized coverage reaching one half), so a mask thresholded once at the edit's threshold
is never thresholded at it again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from editaction.masking import composite

MASK_LEVEL = 0.5
"""A pixel of a resized binary mask is in it when its resized coverage (bilinear, antialiased when shrinking) reaches
this."""


def check_resolution(resolution: int) -> None:
    """``resolution`` is a long side in pixels, or 0 for the image's own size."""
    if resolution < 0:
        raise ValueError(
            f"edit resolution must be a long side in pixels, or 0 for the image's own size; got {resolution}"
        )


def working_size(size: tuple[int, int], resolution: int) -> tuple[int, int]:
    """The (h, w) an image of ``size`` is edited at: long side shrunk to ``resolution``, aspect ratio kept.

    Images no larger than ``resolution``, and every image when it is 0, are edited at their own
    size: upsampling adds no detail, only time.
    """
    check_resolution(resolution)
    height, width = size
    longest = max(height, width)
    if resolution == 0 or longest <= resolution:
        return height, width
    scale = resolution / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(images: Float[Tensor, "b c h w"], size: tuple[int, int]) -> Float[Tensor, "b c H W"]:
    """Bilinear resize, antialiased when shrinking; ``images`` itself when it already has ``size``. A boolean mask
    stays a boolean mask: the resized coverage reaching ``MASK_LEVEL``."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if images.dtype == torch.bool:
        return resize(images.float(), size) >= MASK_LEVEL
    return F.interpolate(images.float(), size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def restore_size(
    edited: Float[Tensor, "b 3 h w"], mask: Bool[Tensor, "b 1 h w"], original: Float[Tensor, "b 3 H W"]
) -> tuple[Float[Tensor, "b 3 H W"], Bool[Tensor, "b 1 H W"]]:
    """An edit made at a working size, at ``original``'s size: ``original`` bit for bit outside the upsampled mask."""
    size = tuple(original.shape[-2:])
    full_mask = resize(mask.bool(), size)
    return composite(resize(edited, size).float(), original.float(), full_mask), full_mask
