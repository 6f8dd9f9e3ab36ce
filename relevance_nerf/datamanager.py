"""Training data whose images can be replaced by edits, with the 2D relevance targets beside them.

nerfacto's default ``ParallelDataManager`` caches images in worker processes, where edits
made in the main process never arrive. This datamanager loads every training view once,
in the main process, into three per-view 8-bit buffers: the untouched originals, the
current (possibly edited) images, and the relevance targets that supervise the relevance
field; rays are sampled from them. It builds no float cache of its own views
(``VanillaDataManager``'s ``CacheDataloader`` holds them all in float32), so the buffers
take 7 bytes per training pixel (3 + 3 + 1) where float32 copies took 40.

Only the sampled rays are converted to float in [0, 1]. Quantisation: 8-bit photos are read
as nerfstudio reads them and divided by 255, so the 8-bit originals give the loss exactly the
values it saw in float32. A 16-bit photo keeps its high byte, grey as colour (nerfstudio's
loader keeps the low byte of a grey one). A photo with alpha is composited as nerfacto's loss
sees it (``RelevanceEditDataset``) and rounded to the nearest 1/255. An edited view is stored
as 8 bits, as its PNG under ``edits/views`` is; relevance targets (an MSE target in [0, 1])
are rounded to the nearest 1/255 too.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from jaxtyping import Bool, Float, UInt8
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import (
    AnnotatedDataParserUnion,
    VanillaDataManager,
    VanillaDataManagerConfig,
)
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.data.utils.nerfstudio_collate import nerfstudio_collate
from nerfstudio.model_components.ray_generators import RayGenerator
from nerfstudio.utils.misc import get_dict_to_torch
from nerfstudio.utils.rich_utils import CONSOLE
from PIL import Image
from torch import Tensor

from relevance_nerf.errors import RelevanceEditError
from relevance_nerf.model import RELEVANCE

EARLIER_EDIT_LEVELS = 26
"""A pixel counts as changed by an earlier edit when some channel differs from the photo by more than this many of
255 levels (0.1, as ``toyworld.evaluation.CHANGE_THRESHOLD``): an edit regenerates all inside its mask, and the floor
around a recoloured object comes back within a few levels, while the object's new colour is far beyond."""
LEVELS = 255.0
"""8-bit images hold values k / 255 (nerfstudio's ``InputDataset.get_image_float32`` divides by 255)."""


def to_uint8(values: Float[Tensor, "*shape"]) -> UInt8[Tensor, "*shape"]:
    """Values in [0, 1] (clamped) rounded to the nearest k / 255, as k."""
    return (values.detach().float().clamp(0.0, 1.0) * LEVELS).round().to(torch.uint8)


def to_float(values: UInt8[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """k to k / 255 in float32, bit for bit as nerfstudio converts the 8-bit images it reads."""
    return values.float() / LEVELS


def read_uint8(path: os.PathLike | str, scale_factor: float = 1.0) -> UInt8[np.ndarray, "h w c"]:
    """An image file as 8-bit RGB or RGBA, scaled as nerfstudio's ``InputDataset.get_numpy_image`` scales it.

    8-bit RGB and RGBA are read as nerfstudio reads them, and so are 16-bit colour PNGs (PIL keeps their high
    byte); 16-bit grey keeps its high byte too, where nerfstudio's cast keeps the low one. Grey becomes RGB, grey
    with alpha RGBA, a palette its colours (nerfstudio would read the palette indices).
    """
    with Image.open(path) as image:
        if image.mode.startswith("I"):  # 16-bit grey (I;16, I;16B, ...; I from older PIL)
            image = Image.fromarray((np.asarray(image).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8), "L")
        if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
        elif image.mode not in ("RGB", "RGBA", "L"):
            image = image.convert("RGB")
        if scale_factor != 1.0:
            width, height = image.size
            size = (int(width * scale_factor), int(height * scale_factor))
            image = image.resize(size, resample=Image.Resampling.BILINEAR)
        array = np.array(image, dtype=np.uint8)
    return array[..., None].repeat(3, axis=2) if array.ndim == 2 else array


class RelevanceEditDataset(InputDataset):
    """nerfstudio's dataset, reading images with ``read_uint8`` and always giving three channels.

    A photo with alpha is composited over the dataparser's ``alpha_color`` (as nerfstudio does) or, where the
    dataparser sets none (nerfstudio-data), over black: the ground truth nerfacto's loss and metrics blend it
    with for its default background (``last_sample``). The editor and the edit buffers work on RGB.
    """

    def get_numpy_image(self, image_idx: int) -> UInt8[np.ndarray, "h w c"]:
        return read_uint8(self._dataparser_outputs.image_filenames[image_idx], self.scale_factor)

    def get_image_float32(self, image_idx: int) -> Float[Tensor, "h w 3"]:
        image = super().get_image_float32(image_idx)
        if image.shape[-1] == 4:  # no alpha colour: nerfacto blends the ground truth with black
            image = image[..., :3] * image[..., 3:]
        return image


@dataclass
class RelevanceEditDataManagerConfig(VanillaDataManagerConfig):
    _target: type = field(default_factory=lambda: RelevanceEditDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=NerfstudioDataParserConfig)
    load_threads: int = 16
    """Threads reading the training images, at most the CPUs less one (nerfstudio's CacheDataloader: 16 per GPU)."""


class RelevanceEditDataManager(VanillaDataManager[RelevanceEditDataset]):
    config: RelevanceEditDataManagerConfig
    image_batch: dict[str, Tensor]
    """What the pixel sampler samples: ``image`` (n, h, w, 3) uint8, ``relevance`` (n, h, w, 1) uint8 once set,
    ``image_idx`` and any mask; view i is camera i."""
    original_pixels: UInt8[Tensor, "n h w 3"]

    def setup_train(self) -> None:
        """Load every training view into the 8-bit buffers (instead of nerfstudio's float32 cache)."""
        if self.config.train_num_images_to_sample_from != -1:
            raise RelevanceEditError(
                "relevance-edit trains on all views at once (edits are written into them); "
                "drop --pipeline.datamanager.train-num-images-to-sample-from"
            )
        CONSOLE.print("Setting up training dataset...")
        dataset = self.train_dataset
        first = dataset[0]
        shape = first["image"].shape
        device = "cpu" if "image" in self.exclude_batch_keys_from_device else self.device
        images = torch.empty((len(dataset), *shape), dtype=torch.uint8, device=device)

        def load(index: int) -> dict:
            """View ``index`` into its row of ``images``; returns its other entries (index, mask, metadata)."""
            data = first if index == 0 else dataset[index]
            image = data.pop("image")
            if image.shape != shape:
                raise RelevanceEditError("relevance-edit needs training images of one size; this data set mixes sizes")
            images[index] = to_uint8(image)
            return data

        threads = max(1, min(self.config.load_threads, (os.cpu_count() or 2) - 1))
        with ThreadPoolExecutor(max_workers=threads) as executor:
            others = list(executor.map(load, range(len(dataset))))
        self.image_batch = get_dict_to_torch(
            nerfstudio_collate(others), device=self.device, exclude=self.exclude_batch_keys_from_device
        )
        self.image_batch["image"] = images
        self.original_pixels = images.clone()
        self.earlier_edits: Bool[Tensor, "n h w 1"] | None = None
        """Where the starting images differ visibly from the photos (``EARLIER_EDIT_LEVELS``): what earlier edits of a
        chain changed; None: nowhere."""
        self.train_pixel_sampler = self._get_pixel_sampler(dataset, self.config.train_num_rays_per_batch)
        self.train_ray_generator = RayGenerator(dataset.cameras.to(self.device))

    @property
    def num_views(self) -> int:
        return self.original_pixels.shape[0]

    def original_image(self, index: int | slice) -> Float[Tensor, "*n h w 3"]:
        """The view (or views) as the run started it: as read from disk, or as the edit it builds on left it
        (``set_start_pixels``). Edits never change it; the files on disk are never touched."""
        return to_float(self.original_pixels[index])

    def image(self, index: int | slice) -> Float[Tensor, "*n h w 3"]:
        """The view as the NeRF currently trains on it (a copy: change it with ``set_image``)."""
        return to_float(self.image_batch["image"][index])

    def image_pixels(self, index: int) -> UInt8[Tensor, "h w 3"]:
        """The view as the NeRF trains on it, as the 8-bit buffer holds it (on the host)."""
        return self.image_batch["image"][index].cpu()

    def set_image(self, index: int, image: Float[Tensor, "h w 3"]) -> None:
        """Write a view in [0, 1]; it is stored rounded to 8 bits."""
        buffer = self.image_batch["image"]
        buffer[index] = to_uint8(image.to(buffer.device))

    def set_image_pixels(self, index: int, pixels: UInt8[Tensor, "h w 3"]) -> None:
        buffer = self.image_batch["image"]
        buffer[index] = pixels.to(buffer.device)

    def set_start_pixels(self, index: int, pixels: UInt8[Tensor, "h w 3"]) -> None:
        """Start view ``index`` from ``pixels`` instead of its photo (a run that builds on an earlier edit); where
        they differ from it is recorded in ``earlier_edits``."""
        pixels = pixels.to(self.original_pixels.device)
        if self.earlier_edits is None:
            self.earlier_edits = torch.zeros_like(self.original_pixels[..., :1], dtype=torch.bool)
        change = (pixels.int() - self.original_pixels[index].int()).abs().amax(dim=-1, keepdim=True)
        self.earlier_edits[index] |= change > EARLIER_EDIT_LEVELS
        self.original_pixels[index] = pixels
        self.set_image_pixels(index, pixels)

    def restart(self) -> None:
        """Every view back to its starting image (a new instruction replaced the run's edit)."""
        self.image_batch["image"].copy_(self.original_pixels)

    def has_relevance(self) -> bool:
        return RELEVANCE in self.image_batch

    def relevance(self, index: int | slice) -> Float[Tensor, "*n h w 1"]:
        return to_float(self.image_batch[RELEVANCE][index])

    def relevance_pixels(self) -> UInt8[Tensor, "n h w 1"]:
        """All relevance targets as the 8-bit buffer holds them."""
        return self.image_batch[RELEVANCE]

    def set_relevance_pixels(self, targets: UInt8[Tensor, "n h w 1"]) -> None:
        self.image_batch[RELEVANCE] = targets.to(self.original_pixels.device, torch.uint8).clone()

    def set_relevance(self, index: int | slice, relevance: Float[Tensor, "*n h w 1"]) -> None:
        """Set targets of one view, or of all views at once (their first assignment creates the buffer)."""
        if not self.has_relevance():
            self.image_batch[RELEVANCE] = torch.zeros_like(self.original_pixels[..., :1])
        buffer = self.image_batch[RELEVANCE]
        buffer[index] = to_uint8(relevance.to(buffer.device))

    def next_train(self, step: int) -> tuple[RayBundle, dict]:
        """Rays from the current images; the batch carries ``relevance`` targets once they exist (float, [0, 1])."""
        self.train_count += 1
        assert self.train_pixel_sampler is not None
        batch = self.train_pixel_sampler.sample(self.image_batch)
        for key in ("image", RELEVANCE):
            if key in batch:
                batch[key] = to_float(batch[key])
        return self.train_ray_generator(batch["indices"]), batch
