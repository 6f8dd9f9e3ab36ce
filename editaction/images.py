"""Image files in and out: any bit depth and channel layout to float RGB, and atomic writes back.

The editor works on float RGB in [0, 1]. Reading keeps what it needs to write the
result in the input's own format: alpha is carried through unchanged and 8- or
16-bit depth is restored, so unedited pixels round-trip bit for bit. Photos are
turned upright by their EXIF orientation, and written upright without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from jaxtyping import Float
from PIL import ExifTags, Image
from torch import Tensor

from editaction.atomic import atomic_path


class ImageReadError(ValueError):
    """The file is missing, unreadable or not an image."""


@dataclass
class LoadedImage:
    """An image as the editor sees it, plus what is needed to write it back in kind."""

    rgb: Float[Tensor, "3 h w"]
    """Colour in [0, 1]; grayscale inputs are replicated to three channels."""
    alpha: np.ndarray | None
    """The untouched alpha channel, if the file had one."""
    dtype: np.dtype
    """Sample type of the file (uint8, uint16 or float32)."""

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.rgb.shape[-2:])


UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}
"""EXIF orientation -> the (h, w, ...) array transform that makes the image upright, as PIL.ImageOps.exif_transpose."""


def exif_orientation(path: Path) -> int:
    """The file's EXIF orientation tag (1, upright, when absent or unreadable); reads the header only."""
    try:
        with Image.open(path) as image:
            return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (OSError, ValueError):
        return 1


def _max_value(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read an 8/16-bit or float image with 1-4 channels; raise ``ImageReadError`` with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image not found: {path}")
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageReadError(f"cannot read image (unsupported or corrupt file): {path}")
    if array.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageReadError(f"unsupported sample type {array.dtype} in {path}")
    # OpenCV ignores EXIF orientation when reading unchanged (alpha, 16 bit), and PIL cannot hold every such array.
    array = UPRIGHT.get(exif_orientation(path), lambda a: a)(array)
    if array.ndim == 2:
        array = array[..., None]
    channels = array.shape[-1]
    alpha = None
    if channels == 1:
        rgb = np.repeat(array, 3, axis=-1)
    elif channels == 2:  # gray + alpha
        rgb, alpha = np.repeat(array[..., :1], 3, axis=-1), array[..., 1]
    elif channels in (3, 4):
        rgb = array[..., 2::-1]  # OpenCV stores BGR(A)
        alpha = array[..., 3] if channels == 4 else None
    else:
        raise ImageReadError(f"unsupported channel count {channels} in {path}")
    scale = _max_value(array.dtype)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb).astype(np.float32) / scale).permute(2, 0, 1)
    return LoadedImage(rgb=tensor.clamp(0.0, 1.0), alpha=alpha, dtype=array.dtype)


def to_array(rgb: Float[Tensor, "3 h w"], like: LoadedImage | None = None) -> np.ndarray:
    """Float RGB to an RGB(A) array in the sample type of ``like`` (uint8 when not given)."""
    dtype = like.dtype if like is not None else np.dtype(np.uint8)
    scale = _max_value(dtype)
    array = rgb.detach().float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy() * scale
    array = np.rint(array).astype(dtype) if np.issubdtype(dtype, np.integer) else array.astype(dtype)
    if like is not None and like.alpha is not None:
        array = np.concatenate([array, like.alpha[..., None].astype(dtype)], axis=-1)
    return array


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a gray, RGB or RGBA array atomically: a temporary file beside ``path``, then a rename."""
    if array.ndim == 2:
        bgr = array  # single-channel (masks)
    else:
        bgr = array[..., [2, 1, 0, 3]] if array.shape[-1] == 4 else array[..., ::-1]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(bgr)):
            raise OSError(f"cannot write image: {path}")


def relevance_to_rgb(relevance: Float[Tensor, "h w"], colormap: str = "inferno") -> np.ndarray:
    """Colour-map a [0, 1] relevance map to an 8-bit RGB array for viewing."""
    from matplotlib import colormaps

    colours = colormaps[colormap](relevance.detach().float().clamp(0, 1).cpu().numpy())[..., :3]
    return np.rint(colours * 255).astype(np.uint8)
