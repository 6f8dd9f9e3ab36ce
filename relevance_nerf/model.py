"""nerfacto with a relevance output, and nerfacto that builds offline.

``OfflineNerfactoModel`` is nerfacto whose LPIPS metric is built lazily (see
``metrics.py``): the CPU preset ``nerfacto-tiny`` uses it, and so does the edit model,
so both build without network and their checkpoints load into each other.
``RelevanceNerfactoModel`` adds the relevance head, its rendered ``relevance`` output,
the binary ``edit_mask`` of full views (the viewer shows both) and the relevance loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.fields.nerfacto_field import NerfactoField
from nerfstudio.model_components.losses import MSELoss
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from torch import Tensor
from torch.nn import Parameter

from editaction.config import EditConfig
from relevance_nerf.metrics import deferred_lpips
from relevance_nerf.relevance_field import RelevanceHead, edit_mask, render_relevance

RELEVANCE = "relevance"
EDIT_MASK = "edit_mask"
RELEVANCE_HEAD = "relevance_head"
"""The model's attribute holding the ``RelevanceHead``, and its optimiser param group."""
LEGACY_HEAD_NAME = "relevance_field"
"""Their name in edit runs saved before the rename (their checkpoints and configs still load)."""


def current_head_key(key: str, prefix: str = "") -> str:
    """``key`` with the head's legacy name after ``prefix`` (the name itself or a key below it) made current."""
    legacy = f"{prefix}{LEGACY_HEAD_NAME}"
    if key == legacy or key.startswith(f"{legacy}."):
        return f"{prefix}{RELEVANCE_HEAD}{key[len(legacy) :]}"
    return key


def grid_pixel_centres(height: int, width: int, grid: tuple[int, int]) -> Float[Tensor, "rows columns 2"]:
    """(y, x) image coordinates, as nerfstudio's, of the pixel centres of a ``grid`` (rows, columns) spanning a
    ``height`` x ``width`` image: where bilinear resizing (``align_corners=False``) between the two sizes puts a
    pixel's value. A grid of the image's own size gives its pixel centres."""
    rows = (torch.arange(grid[0]) + 0.5) * (height / grid[0])
    columns = (torch.arange(grid[1]) + 0.5) * (width / grid[1])
    return torch.stack(torch.meshgrid(rows, columns, indexing="ij"), dim=-1)


@dataclass
class OfflineNerfactoModelConfig(NerfactoModelConfig):
    """nerfacto, buildable without network (LPIPS built on first use, skipped without cached weights)."""

    _target: type = field(default_factory=lambda: OfflineNerfactoModel)


class OfflineNerfactoModel(NerfactoModel):
    config: OfflineNerfactoModelConfig

    def populate_modules(self) -> None:
        with deferred_lpips():
            super().populate_modules()

    def get_image_metrics_and_images(self, outputs, batch):
        metrics, images = super().get_image_metrics_and_images(outputs, batch)
        if math.isnan(metrics.get("lpips", 0.0)):
            del metrics["lpips"]
        return metrics, images


@dataclass
class RelevanceNerfactoModelConfig(OfflineNerfactoModelConfig):
    """nerfacto plus a relevance field supervised by 2D relevance maps."""

    _target: type = field(default_factory=lambda: RelevanceNerfactoModel)
    relevance_hidden_dim: int = 32
    """Width of the relevance head."""
    relevance_num_layers: int = 2
    relevance_loss_mult: float = 1.0
    """Weight of the MSE between rendered and 2D relevance (WYS: 1)."""


class GeometryKeepingNerfactoField(NerfactoField):
    """nerfacto's field that keeps the samples, densities and geometry features of its last ``get_density``.

    nerfstudio's ``Field.forward`` returns the features to nobody; the relevance head reads them from here.
    The edit model swaps its field's class to this one, so the module tree and state-dict keys stay nerfacto's.
    """

    kept: tuple[RaySamples, Tensor, Tensor] | None = None

    def get_density(self, ray_samples: RaySamples) -> tuple[Tensor, Tensor]:
        density, geometry_features = super().get_density(ray_samples)
        self.kept = (ray_samples, density, geometry_features)
        return density, geometry_features


class RelevanceNerfactoModel(OfflineNerfactoModel):
    config: RelevanceNerfactoModelConfig
    field: GeometryKeepingNerfactoField
    edit_mask_threshold: float = EditConfig.threshold
    """Threshold of the ``edit_mask`` output: the pipeline's edit threshold, which only it sets (``set_edit``)."""

    def populate_modules(self) -> None:
        if self.config.predict_normals:
            raise ValueError("relevance-edit does not support predict_normals")
        super().populate_modules()
        if type(self.field) is not NerfactoField:
            raise TypeError(f"relevance-edit extends nerfacto's NerfactoField, not {type(self.field).__name__}")
        self.field.__class__ = GeometryKeepingNerfactoField
        self.relevance_head = RelevanceHead(
            self.field.geo_feat_dim, self.config.relevance_hidden_dim, self.config.relevance_num_layers
        )
        self.relevance_loss = MSELoss()

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        groups = super().get_param_groups()
        groups[RELEVANCE_HEAD] = list(self.relevance_head.parameters())
        return groups

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor | list]:
        """nerfacto's outputs plus ``relevance``: the head on the field's last samples, rendered with their weights.

        The weights are recomputed from the kept densities (nerfacto returns its own only in training); they are
        the same values, and both features and weights are detached for the head.
        """
        outputs = super().get_outputs(ray_bundle)
        assert self.field.kept is not None
        ray_samples, density, geometry_features = self.field.kept
        self.field.kept = None  # do not hold the batch's graph past this call
        weights = ray_samples.get_weights(density.detach())
        outputs[RELEVANCE] = render_relevance(self.relevance_head(geometry_features), weights)
        return outputs

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args) -> None:
        """Checkpoints of earlier edit runs hold the head under its legacy name: load them under the current one."""
        for key in list(state_dict):
            current = current_head_key(key, prefix)
            if current != key:
                state_dict[current] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:
        loss_dict = super().get_loss_dict(outputs, batch, metrics_dict)
        if RELEVANCE in batch:  # present once the 2D relevance targets exist
            target = batch[RELEVANCE].to(self.device)
            loss_dict["relevance_loss"] = self.config.relevance_loss_mult * self.relevance_loss(
                target, outputs[RELEVANCE]
            )
        return loss_dict

    @torch.no_grad()
    def get_outputs_for_camera_ray_bundle(self, camera_ray_bundle: RayBundle) -> dict[str, Tensor]:
        """A full view; adds the binary ``edit_mask`` (it needs the whole view to normalise relevance).

        The viewer shows this mask; the pipeline's edits threshold the relevance of views they render on a
        coarser grid after upsampling it to the view's size instead (``edit_mask``'s ``size``).
        """
        outputs = super().get_outputs_for_camera_ray_bundle(camera_ray_bundle)
        outputs[EDIT_MASK] = edit_mask(outputs[RELEVANCE], self.edit_mask_threshold).float()
        return outputs

    @torch.no_grad()
    def get_outputs_for_training_view(
        self,
        cameras: Cameras,
        index: int,
        window: tuple[int, int, int, int] | None = None,
        grid: tuple[int, int] | None = None,
    ) -> dict[str, Tensor]:
        """Training view ``index`` of ``cameras`` as its training rays see it, in eval mode (no sampling jitter).

        ``get_outputs_for_camera`` gives the rays camera index 0, no camera-optimiser correction outside
        training, and the field a zero (or mean) appearance embedding. Here the rays carry ``index``, get the
        optimiser's correction of that view exactly as training applies it, and the field embeds ``index``.
        ``window`` (top, bottom, left, right) renders only those pixels (its ``edit_mask`` is the window's own);
        ``grid`` (rows, columns) renders one ray through each pixel centre of a grid of that size spanning the
        view instead of one per pixel: the view as an image of that size (``grid_pixel_centres``).
        """
        cameras = cameras.to(self.device)
        coords = None
        if grid is not None:
            coords = grid_pixel_centres(int(cameras.height[index]), int(cameras.width[index]), grid)
        rays = cameras.generate_rays(
            camera_indices=index, coords=None if coords is None else coords.to(self.device), keep_shape=True
        )
        if window is not None:
            top, bottom, left, right = window
            rays = rays[top:bottom, left:right]
        flat = rays.flatten()
        self.camera_optimizer.apply_to_raybundle(flat)
        was_training = self.training
        self.eval()
        self.field.training = True  # this flag alone (not the field's submodules) selects the rays' embedding
        try:
            return self.get_outputs_for_camera_ray_bundle(flat.reshape(rays.shape))
        finally:
            self.train(was_training)
