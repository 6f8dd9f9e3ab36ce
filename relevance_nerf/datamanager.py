"""Training data whose images can be replaced by edits, with the 2D relevance targets beside them.

nerfacto's default ``ParallelDataManager`` caches images in worker processes, where edits
made in the main process never arrive. This datamanager keeps all training images in
one in-memory batch (as ``VanillaDataManager`` caches them), samples rays from it, and
owns three per-view buffers: the untouched originals, the current (possibly edited)
images, and the relevance targets that supervise the relevance field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import (
    AnnotatedDataParserUnion,
    VanillaDataManager,
    VanillaDataManagerConfig,
)
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from torch import Tensor

from relevance_nerf.errors import RelevanceEditError
from relevance_nerf.model import RELEVANCE


@dataclass
class RelevanceEditDataManagerConfig(VanillaDataManagerConfig):
    _target: type = field(default_factory=lambda: RelevanceEditDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=NerfstudioDataParserConfig)


class RelevanceEditDataManager(VanillaDataManager):
    config: RelevanceEditDataManagerConfig

    def setup_train(self) -> None:
        super().setup_train()
        batch: dict[str, Tensor] = next(self.iter_train_image_dataloader)
        if not isinstance(batch["image"], Tensor):
            raise RelevanceEditError("relevance-edit needs training images of one size; this data set mixes sizes")
        # nerfstudio's cache loader shuffles the views; put view i at position i, as its camera is in the dataset.
        order = torch.argsort(batch["image_idx"])
        self.image_batch = {key: value[order] if isinstance(value, Tensor) else value for key, value in batch.items()}
        images = self.image_batch["image"]
        if images.shape[-1] != 3:
            raise RelevanceEditError(
                f"relevance-edit needs RGB training images; {self.config.data} has {images.shape[-1]} channels"
            )
        self.original_images = images.clone()

    @property
    def num_views(self) -> int:
        return self.original_images.shape[0]

    def original_image(self, index: int) -> Float[Tensor, "h w 3"]:
        """The view as read from disk; edits never touch it."""
        return self.original_images[index]

    def image(self, index: int) -> Float[Tensor, "h w 3"]:
        """The view as the NeRF currently trains on it."""
        return self.image_batch["image"][index]

    def set_image(self, index: int, image: Float[Tensor, "h w 3"]) -> None:
        buffer = self.image_batch["image"]
        buffer[index] = image.to(buffer.device, buffer.dtype)

    def has_relevance(self) -> bool:
        return RELEVANCE in self.image_batch

    def relevance(self, index: int) -> Float[Tensor, "h w 1"]:
        return self.image_batch[RELEVANCE][index]

    def set_relevance(self, index: int | slice, relevance: Float[Tensor, "*n h w 1"]) -> None:
        """Set targets of one view, or of all views at once (their first assignment creates the buffer)."""
        if not self.has_relevance():
            self.image_batch[RELEVANCE] = torch.zeros_like(self.original_images[..., :1])
        buffer = self.image_batch[RELEVANCE]
        buffer[index] = relevance.to(buffer.device, buffer.dtype)

    def next_train(self, step: int) -> tuple[RayBundle, dict]:
        """Rays from the current images; the batch carries ``relevance`` targets once they exist."""
        self.train_count += 1
        assert self.train_pixel_sampler is not None
        batch = self.train_pixel_sampler.sample(self.image_batch)
        return self.train_ray_generator(batch["indices"]), batch
