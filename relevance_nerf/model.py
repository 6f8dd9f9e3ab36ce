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
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.losses import MSELoss, scale_gradients_by_distance_squared
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from torch import Tensor
from torch.nn import Parameter

from relevance_nerf.metrics import deferred_lpips
from relevance_nerf.relevance_field import RelevanceHead, edit_mask, render_relevance

RELEVANCE = "relevance"
EDIT_MASK = "edit_mask"


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
    """Threshold of the ``edit_mask`` output (the pipeline keeps it equal to its edit threshold)."""


class RelevanceNerfactoModel(OfflineNerfactoModel):
    config: RelevanceNerfactoModelConfig

    def populate_modules(self) -> None:
        if self.config.predict_normals:
            raise ValueError("relevance-edit does not support predict_normals")
        super().populate_modules()
        self.relevance_field = RelevanceHead(
            self.field.geo_feat_dim, self.config.relevance_hidden_dim, self.config.relevance_num_layers
        )
        self.relevance_loss = MSELoss()

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        groups = super().get_param_groups()
        groups["relevance_field"] = list(self.relevance_field.parameters())
        return groups

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor | list]:
        """nerfacto's outputs plus ``relevance``; the field is queried in its two stages to reach its features."""
        if self.training:
            self.camera_optimizer.apply_to_raybundle(ray_bundle)
        ray_samples, weights_list, ray_samples_list = self.proposal_sampler(ray_bundle, density_fns=self.density_fns)
        density, geometry_features = self.field.get_density(ray_samples)
        field_outputs = self.field.get_outputs(ray_samples, density_embedding=geometry_features)
        field_outputs[FieldHeadNames.DENSITY] = density
        if self.config.use_gradient_scaling:
            field_outputs = scale_gradients_by_distance_squared(field_outputs, ray_samples)

        weights = ray_samples.get_weights(field_outputs[FieldHeadNames.DENSITY])
        weights_list.append(weights)
        ray_samples_list.append(ray_samples)

        outputs: dict[str, Tensor | list] = {
            "rgb": self.renderer_rgb(rgb=field_outputs[FieldHeadNames.RGB], weights=weights),
            "accumulation": self.renderer_accumulation(weights=weights),
            "expected_depth": self.renderer_expected_depth(weights=weights, ray_samples=ray_samples),
            RELEVANCE: render_relevance(self.relevance_field(geometry_features), weights),
        }
        with torch.no_grad():
            outputs["depth"] = self.renderer_depth(weights=weights, ray_samples=ray_samples)
        if self.training:
            outputs["weights_list"] = weights_list
            outputs["ray_samples_list"] = ray_samples_list
        for i in range(self.config.num_proposal_iterations):
            outputs[f"prop_depth_{i}"] = self.renderer_depth(weights=weights_list[i], ray_samples=ray_samples_list[i])
        return outputs

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
        """A full view; adds the binary ``edit_mask`` (it needs the whole view to normalise relevance)."""
        outputs = super().get_outputs_for_camera_ray_bundle(camera_ray_bundle)
        outputs[EDIT_MASK] = edit_mask(outputs[RELEVANCE], self.config.edit_mask_threshold).float()
        return outputs

    @torch.no_grad()
    def get_outputs_for_training_view(self, cameras: Cameras, index: int) -> dict[str, Tensor]:
        """Training view ``index`` of ``cameras`` as its training rays see it, in eval mode (no sampling jitter).

        ``get_outputs_for_camera`` gives the rays camera index 0, no camera-optimiser correction outside
        training, and the field a zero (or mean) appearance embedding. Here the rays carry ``index``, get the
        optimiser's correction of that view exactly as training applies it, and the field embeds ``index``.
        """
        rays = cameras.to(self.device).generate_rays(camera_indices=index, keep_shape=True)
        flat = rays.flatten()
        self.camera_optimizer.apply_to_raybundle(flat)
        was_training = self.training
        self.eval()
        self.field.training = True  # this flag alone (not the field's submodules) selects the rays' embedding
        try:
            return self.get_outputs_for_camera_ray_bundle(flat.reshape(rays.shape))
        finally:
            self.train(was_training)
