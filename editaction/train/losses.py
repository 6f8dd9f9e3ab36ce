"""The EditAction objective (arXiv 2412.04558, sec. 3): static + action + regularisation terms."""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def per_sample_error(prediction: Float[Tensor, "b c h w"], target: Float[Tensor, "b c h w"]) -> Float[Tensor, " b"]:
    """e(c): mean squared noise-prediction error over C, H, W, one value per sample."""
    return (prediction.float() - target.float()).pow(2).mean(dim=(1, 2, 3))


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
