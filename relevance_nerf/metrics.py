"""Image metrics that need downloaded weights, built on first use and skipped when the weights are absent.

nerfacto builds torchmetrics' LPIPS in ``populate_modules``; that fetches AlexNet weights
from the internet, so the model could not even be built offline. Here LPIPS is built
only when first computed, only from weights already in torch's cache, and otherwise
skipped with one warning (its value is NaN and the model drops it from the metrics).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import torch
from torch import Tensor

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""torchvision's AlexNet file, the backbone of LPIPS (torchmetrics' default net)."""


def alexnet_weights_cached() -> bool:
    return (Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS).is_file()


class LazyLPIPS:
    """Callable like torchmetrics' LPIPS; not a module, so it adds nothing to checkpoints."""

    def __init__(self, normalize: bool = True):
        self.normalize = normalize
        self._metric = None
        self.available = alexnet_weights_cached()
        self._warned = False

    def __call__(self, predicted: Tensor, target: Tensor) -> Tensor:
        if not self.available:
            if not self._warned:
                warnings.warn(
                    f"LPIPS skipped: AlexNet weights ({ALEXNET_WEIGHTS}) are not in {torch.hub.get_dir()}/checkpoints "
                    "and nothing is downloaded",
                    stacklevel=2,
                )
                self._warned = True
            return torch.tensor(math.nan)
        if self._metric is None:
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            self._metric = LearnedPerceptualImagePatchSimilarity(normalize=self.normalize)
        return self._metric.to(predicted.device)(predicted, target)


@contextlib.contextmanager
def deferred_lpips() -> Iterator[None]:
    """While active, torchmetrics' LPIPS class is replaced by :class:`LazyLPIPS` (for nerfacto's constructor)."""
    with mock.patch("torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity", LazyLPIPS):
        yield
