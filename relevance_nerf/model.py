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
import torch.nn.functional as F
from jaxtyping import Bool, Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.fields.nerfacto_field import NerfactoField
from nerfstudio.model_components.losses import MSELoss
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from torch import Tensor
from torch.nn import Parameter

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


def coarse_pixel_centres(height: int, width: int, downscale: int) -> Float[Tensor, "h w 2"]:
    """(y, x) image coordinates, as nerfstudio's, of the pixel centres of a grid ``downscale`` times coarser than
    ``height`` x ``width`` and spanning the same image: where bilinear upsampling (``align_corners=False``) to
    ``height`` x ``width`` expects its values."""
    coarse = (max(round(height / downscale), 1), max(round(width / downscale), 1))
    rows = (torch.arange(coarse[0]) + 0.5) * (height / coarse[0])
    columns = (torch.arange(coarse[1]) + 0.5) * (width / coarse[1])
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
    edit_mask_threshold: float = 0.5
    """Threshold of the ``edit_mask`` output; the relevance-edit pipeline sets it (``set_edit``)."""


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

        The viewer shows this mask and the pipeline's edits use it (edits from pure noise, which need no colours,
        may take it from a coarser render: ``get_edit_mask_for_training_view``).
        """
        outputs = super().get_outputs_for_camera_ray_bundle(camera_ray_bundle)
        outputs[EDIT_MASK] = edit_mask(outputs[RELEVANCE], self.config.edit_mask_threshold).float()
        return outputs

    @torch.no_grad()
    def get_outputs_for_training_view(
        self, cameras: Cameras, index: int, window: tuple[int, int, int, int] | None = None
    ) -> dict[str, Tensor]:
        """Training view ``index`` of ``cameras`` as its training rays see it, in eval mode (no sampling jitter).

        ``get_outputs_for_camera`` gives the rays camera index 0, no camera-optimiser correction outside
        training, and the field a zero (or mean) appearance embedding. Here the rays carry ``index``, get the
        optimiser's correction of that view exactly as training applies it, and the field embeds ``index``.
        ``window`` (top, bottom, left, right) renders only those pixels (its ``edit_mask`` is the window's own).
        """
        rays = cameras.to(self.device).generate_rays(camera_indices=index, keep_shape=True)
        if window is not None:
            top, bottom, left, right = window
            rays = rays[top:bottom, left:right]
        return self._render_training_rays(rays)

    @torch.no_grad()
    def get_edit_mask_for_training_view(self, cameras: Cameras, index: int, downscale: int) -> Bool[Tensor, "h w 1"]:
        """The ``edit_mask`` of training view ``index`` with its relevance rendered at 1/``downscale`` of the
        view's resolution and upsampled bilinearly: ``downscale``² fewer rays where only the mask is needed.

        The rays pass through the centres of the coarse grid's pixels, where bilinear upsampling (half-pixel
        centres) puts their values back; ``downscale`` 1 is the full render's mask.
        """
        cameras = cameras.to(self.device)
        height, width = int(cameras.height[index]), int(cameras.width[index])
        coords = coarse_pixel_centres(height, width, downscale).to(self.device)
        rays = cameras.generate_rays(camera_indices=index, coords=coords, keep_shape=True)
        relevance = self._render_training_rays(rays)[RELEVANCE].permute(2, 0, 1)[None].float()
        upsampled = F.interpolate(relevance, size=(height, width), mode="bilinear", align_corners=False)
        return edit_mask(upsampled[0].permute(1, 2, 0), self.config.edit_mask_threshold)

    def _render_training_rays(self, rays: RayBundle) -> dict[str, Tensor]:
        """Render rays of one training view (camera indices set) as training sees them, in eval mode."""
        flat = rays.flatten()
        self.camera_optimizer.apply_to_raybundle(flat)
        was_training = self.training
        self.eval()
        self.field.training = True  # this flag alone (not the field's submodules) selects the rays' embedding
        try:
            return self.get_outputs_for_camera_ray_bundle(flat.reshape(rays.shape))
        finally:
            self.train(was_training)
