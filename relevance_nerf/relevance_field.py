"""The relevance field: a small view-independent head that says how much each 3D point concerns the edit.

Watch Your Steps trains a full copy of the nerfacto field for this (a second hash grid
and colour MLP, about twice the field's cost). Relevance needs no view dependence and
no geometry of its own, so here it is a two-layer MLP on the main field's *detached*
geometry features, rendered with the main field's *detached* weights: the relevance
loss can neither bend the geometry nor the colours, and costs a fraction of a field.
The edit model holds the head as ``relevance_head``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from editaction.masking import binarize
from editaction.relevance import normalise


class RelevanceHead(nn.Module):
    """Geometry features of a sample -> relevance in [0, 1]."""

    def __init__(self, in_dim: int, hidden_dim: int = 32, num_layers: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
            width = hidden_dim
        layers += [nn.Linear(width, 1), nn.Sigmoid()]
        self.mlp = nn.Sequential(*layers)

    def forward(self, geometry_features: Float[Tensor, "*bs feat"]) -> Float[Tensor, "*bs 1"]:
        """Relevance of each sample; features of any float dtype (tinycudann gives fp16) are cast to the head's."""
        weight_dtype = next(self.mlp.parameters()).dtype
        return self.mlp(geometry_features.detach().to(weight_dtype))


def render_relevance(
    relevance: Float[Tensor, "*bs samples 1"], weights: Float[Tensor, "*bs samples 1"]
) -> Float[Tensor, "*bs 1"]:
    """Expected relevance along each ray; the weights are detached so relevance cannot move geometry."""
    return torch.sum(weights.detach() * relevance, dim=-2)


def edit_mask(
    relevance: Float[Tensor, "h w 1"], threshold: float, size: tuple[int, int] | None = None
) -> Bool[Tensor, "H W 1"]:
    """The binary edit mask of one rendered view: relevance min-max normalised over the view, then thresholded.

    Normalising per view (as WYS does) makes the threshold independent of how far the
    field's scale has converged; threshold 0 selects every pixel (the unmasked baseline).
    Relevance rendered on a coarser grid (``grid_pixel_centres``) is first upsampled bilinearly to ``size``,
    the view's: a smooth mask boundary instead of the grid's staircase.
    """
    scaled = normalise(relevance.permute(2, 0, 1)[None].float())
    if size is not None and tuple(size) != tuple(scaled.shape[-2:]):
        scaled = F.interpolate(scaled, size=tuple(size), mode="bilinear", align_corners=False)
    return binarize(scaled, threshold)[0].permute(1, 2, 0)
