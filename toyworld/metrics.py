"""Measures of an edit against the toy world's ground truth (used by the 2D and 3D evaluations).

Images are (3, H, W) float tensors in [0, 1]; masks are (H, W) booleans. Toy objects are
an albedo times a grey shading, so their colour is compared at equal brightness (RGB divided
by its mean), which shading does not change.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from toyworld.palette import COLOURS


def _unit(rgb: Tensor) -> Tensor:
    return rgb / rgb.norm(dim=0, keepdim=True).clamp_min(1e-8)


def palette_direction(colour: str) -> Float[Tensor, 3]:
    return _unit(torch.tensor(COLOURS[colour], dtype=torch.float32))


def mean_chroma(image: Float[Tensor, "3 h w"], mask: Bool[Tensor, "h w"]) -> Float[Tensor, 3]:
    """Unit RGB direction of the mean colour inside ``mask``."""
    return _unit(image[:, mask].mean(dim=1))


def _degrees(cosine: Tensor) -> float:
    return math.degrees(math.acos(float(cosine.clamp(-1.0, 1.0))))


GREY = "grey"
"""Class of an object with too little colour to name: grey, white, black, washed out."""
OTHER = "other"
"""Class of a colour between palette hues, e.g. the orange of a half-done red-to-yellow edit."""
NOT_VISIBLE = "not visible"
"""Class of an object whose mask is empty."""
HUE_TOLERANCE_DEGREES = 20.0
"""Most an object's hue may differ from its palette colour's. Ground-truth recolours of 1,500 training-layout pairs
differ by at most 14.5 degrees (green objects, whose edge pixels mix in the floor and sky; objects under 25 pixels
can differ more: 3 of 800 new-layout pairs and 1 of the 3D scene's 318 views fail); a 50/50 blend of two palette
colours is at least 23.8 degrees from either (red and yellow: orange)."""
MIN_RELATIVE_CHROMA = 0.4
"""Least chroma, as a fraction of the palette colour's, for an object to count as coloured: between the 0.59 that
ground-truth recolours of 1,500 training-layout pairs keep at least and the 0.13-0.21 of colours 70% washed out."""
_EQUAL_BRIGHTNESS_PLANE = torch.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / torch.tensor([[2**0.5], [6**0.5]])
"""Orthonormal axes of the plane of colours with the same mean as grey (1, 1, 1)."""


def equal_brightness(rgb: Float[Tensor, " 3 *n"]) -> Float[Tensor, " 2 *n"]:
    """Colours at the brightness of (1, 1, 1), as offsets from neutral grey: length is chroma, angle is hue."""
    return _EQUAL_BRIGHTNESS_PLANE @ (rgb / rgb.mean(dim=0, keepdim=True).clamp_min(1e-8) - 1)


def hue_error_degrees(rgb: Float[Tensor, 3], colour: str) -> float:
    """Angle between the hues of an RGB colour and a palette colour, at equal brightness."""
    offset, reference = equal_brightness(rgb.float()), equal_brightness(palette_rgb(colour))
    return _degrees(offset @ reference / (offset.norm() * reference.norm()).clamp_min(1e-8))


def relative_chroma(rgb: Float[Tensor, 3], colour: str) -> float:
    """Chroma of an RGB colour at equal brightness, as a fraction of a palette colour's (1: as saturated)."""
    return float(equal_brightness(rgb.float()).norm() / equal_brightness(palette_rgb(colour)).norm())


def palette_rgb(colour: str) -> Float[Tensor, 3]:
    return torch.tensor(COLOURS[colour], dtype=torch.float32) / 255


COLOUR_CLASSES = (*COLOURS, GREY, OTHER)
"""What ``colour_classes`` numbers: the palette colours, then ``GREY`` and ``OTHER``."""


def colour_classes(pixels: Float[Tensor, "3 n"]) -> Int[Tensor, " n"]:
    """Each pixel's index in ``COLOUR_CLASSES``: its nearest palette hue at equal brightness, ``GREY`` with too
    little of that colour's chroma, ``OTHER`` more than ``HUE_TOLERANCE_DEGREES`` off it."""
    offsets = equal_brightness(pixels.float())
    palette = equal_brightness(torch.stack([palette_rgb(name) for name in COLOURS], dim=1))
    lengths = offsets.norm(dim=0)[None] * palette.norm(dim=0)[:, None]
    cosine, nearest = (palette.T @ offsets / lengths.clamp_min(1e-8)).max(dim=0)
    classes = torch.where(cosine >= math.cos(math.radians(HUE_TOLERANCE_DEGREES)), nearest, COLOUR_CLASSES.index(OTHER))
    chroma = offsets.norm(dim=0) / palette.norm(dim=0)[nearest]
    return torch.where(chroma < MIN_RELATIVE_CHROMA, COLOUR_CLASSES.index(GREY), classes)


def colour_class(rgb: Float[Tensor, 3]) -> str:
    """The palette colour of an RGB colour at equal brightness: ``GREY`` with too little chroma, ``OTHER`` off-hue."""
    return COLOUR_CLASSES[int(colour_classes(rgb[:, None])[0])]


def recolour_class(image: Float[Tensor, "3 h w"], mask: Bool[Tensor, "h w"]) -> str:
    """The colour class (``colour_class``) of the mean colour inside ``mask``; ``NOT_VISIBLE`` when it is empty."""
    return colour_class(image[:, mask].mean(dim=1)) if mask.any() else NOT_VISIBLE


def recolour_succeeded(edited: Float[Tensor, "3 h w"], mask: Bool[Tensor, "h w"], target_colour: str) -> bool:
    """The object's mean colour is the requested palette colour: its hue, with most of its chroma."""
    return recolour_class(edited, mask) == target_colour


AFTER_EDIT = ("target", "source", GREY, "other")
"""What a recolour made of its object (``after_edit``)."""


def after_edit(colour_class: str, source: str, target: str) -> str:
    """``AFTER_EDIT`` of a ``source``-coloured object asked to be ``target`` whose colour is now ``colour_class``."""
    return {target: "target", source: "source", GREY: GREY}.get(colour_class, "other")


def mean_squared_error(a: Tensor, b: Tensor, mask: Tensor | None = None) -> float:
    """Mean squared difference over the pixels of ``mask`` (all pixels without one)."""
    difference = (a - b).pow(2)
    return float(difference[:, mask].mean() if mask is not None else difference.mean())


def psnr_of_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error of images in [0, 1]; inf when it is 0."""
    return math.inf if mse == 0 else -10 * math.log10(mse)


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> float:
    """PSNR in dB over the pixels of ``mask`` (all pixels without one); inf when identical."""
    return psnr_of_mse(mean_squared_error(a, b, mask))


def ssim(a: Float[Tensor, "3 h w"], b: Float[Tensor, "3 h w"], mask: Bool[Tensor, "h w"] | None = None) -> float:
    """Mean SSIM (11-pixel Gaussian window) over the pixels of ``mask`` (all pixels without one)."""
    _, similarity = structural_similarity_index_measure(
        a[None].float(), b[None].float(), data_range=1.0, return_full_image=True
    )
    similarity = similarity[0].mean(dim=0)
    return float(similarity[mask].mean() if mask is not None else similarity.mean())


def chroma_spread(chromas: Float[Tensor, "n 3"]) -> float:
    """Mean angle in degrees between each view's object chroma and their common mean: 0 when all views agree."""
    centre = _unit(chromas.mean(dim=0))
    return sum(_degrees(chroma @ centre) for chroma in chromas) / len(chromas)


def iou(predicted: Tensor, truth: Tensor) -> float:
    union = (predicted | truth).sum()
    return 1.0 if union == 0 else float((predicted & truth).sum() / union)


def colour_centroid_x(image: Float[Tensor, "3 h w"], colour: str, min_similarity: float = 0.97) -> float | None:
    """Mean column of the pixels whose chroma matches ``colour`` (None when there are none)."""
    similarity = torch.einsum("chw,c->hw", _unit(image), palette_direction(colour))
    saturated = image.amax(dim=0) - image.amin(dim=0) > 0.15  # the floor and sky are near grey
    columns = torch.nonzero(saturated & (similarity > min_similarity))[:, 1]
    return None if len(columns) == 0 else float(columns.float().mean())


def moved_towards(before: Tensor, after: Tensor, colour: str, direction: str, min_pixels: float = 2.0) -> bool:
    """The object's colour centroid moved at least ``min_pixels`` towards ``direction`` ('left' or 'right')."""
    start, end = colour_centroid_x(before, colour), colour_centroid_x(after, colour)
    if start is None or end is None:
        return False
    shift = end - start
    return shift <= -min_pixels if direction == "left" else shift >= min_pixels
