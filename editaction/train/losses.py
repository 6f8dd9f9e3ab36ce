"""The EditAction objective (arXiv 2412.04558, sec. 3): static + action + regularisation terms."""

from __future__ import annotations

import torch.nn.functional as F
from diffusers import SchedulerMixin
from jaxtyping import Float
from torch import Tensor


def per_sample_error(
    prediction: Float[Tensor, "b c h w"],
    target: Float[Tensor, "b c h w"],
    weights: Float[Tensor, "b 1 h w"] | None = None,
) -> Float[Tensor, " b"]:
    """e(c): mean squared noise-prediction error over C, H, W, one value per sample, optionally weighted per cell."""
    squared = (prediction.float() - target.float()).pow(2)
    if weights is not None:
        squared = squared * weights
    return squared.mean(dim=(1, 2, 3))


def changed_region_weights(
    edited: Float[Tensor, "b 3 H W"],
    source: Float[Tensor, "b 3 H W"],
    latent_size: tuple[int, int],
    weight: float,
    tolerance: float,
) -> Float[Tensor, "b 1 h w"]:
    """``weight`` on each latent cell that holds a pixel the edit changed by more than ``tolerance``, 1 elsewhere."""
    changed = ((edited.float() - source.float()).abs().amax(dim=1, keepdim=True) > tolerance).float()
    changed = F.adaptive_max_pool2d(changed, latent_size)
    return 1 + (weight - 1) * changed


PREDICTION_TYPES = ("epsilon", "v_prediction")
"""The UNet targets ``prediction_target`` knows (diffusers' scheduler ``prediction_type`` values)."""


def prediction_target(
    scheduler: SchedulerMixin, latents: Float[Tensor, "b c h w"], noise: Float[Tensor, "b c h w"], timesteps: Tensor
) -> Float[Tensor, "b c h w"]:
    """What the UNet learns to predict for ``latents`` noised with ``noise``: the noise itself (IP2P's ``epsilon``)
    or the velocity (``v_prediction``), as the scheduler's config says."""
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported scheduler prediction_type {prediction_type!r} ({', '.join(PREDICTION_TYPES)})")


def action_loss(error_right: Float[Tensor, " b"], error_negative: Float[Tensor, " b"]) -> Float[Tensor, " b"]:
    """Diffusion as classifier: -log softmax of -e over {right, negative} = softplus(e_T - e_T').

    Lowering it means fitting the right instruction *better* than the negative one.
    """
    return F.softplus(error_right - error_negative)


def regularisation_loss(prediction: Float[Tensor, "b c h w"], reference: Float[Tensor, "b c h w"]) -> Float[Tensor, ""]:
    """Squared distance to the frozen starting UNet's prediction (a DPOK-style KL bound)."""
    return (prediction.float() - reference.float()).pow(2).mean()


def total_loss(
    static: Tensor, action: Tensor | None, regularisation: Tensor | None, lambda_action: float, lambda_reg: float
) -> Tensor:
    """L = L_static + lambda_action * L_action + lambda_reg * L_reg (absent terms count as 0)."""
    loss = static
    if action is not None:
        loss = loss + lambda_action * action
    if regularisation is not None:
        loss = loss + lambda_reg * regularisation
    return loss
