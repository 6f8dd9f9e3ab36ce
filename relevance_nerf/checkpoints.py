"""nerfstudio checkpoints: finding the latest in a run, and loading them under torch's safe unpickler.

``nerfstudio_models/step-<step>.ckpt`` is nerfstudio's layout; ``latest_step`` reads it.
``model_mismatch`` says why a checkpoint's model does not fit a pipeline's: nerfstudio loads
with ``strict=False``, so such a checkpoint would otherwise start a partly untrained field.

torch >= 2.6 loads with ``weights_only=True`` by default, and nerfstudio 1.1.5's
checkpoints hold numpy scalars (learning rates in the scheduler state), which that
unpickler refuses. Allowing numpy's scalar and dtype reconstructors keeps loading safe
(they build numbers, never call arbitrary code) instead of falling back to full pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

MODEL_PREFIX = "_model."  # nerfstudio's pipelines hold their model as ``_model``
METRIC_PREFIXES = ("_model.lpips.",)
"""Untrained metric modules: nerfacto's LPIPS (fixed AlexNet weights) is in ``ns-train nerfacto`` checkpoints,
while this project's models build it lazily, outside their state (relevance_nerf/metrics.py)."""

try:  # numpy 2 renamed its core (np.core warns there)
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:
    from numpy.core.multiarray import scalar as _numpy_scalar

NUMPY_SCALAR_GLOBALS = [_numpy_scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]


def allow_numpy_scalars() -> None:
    torch.serialization.add_safe_globals(NUMPY_SCALAR_GLOBALS)


def latest_step(models_dir: Path) -> int | None:
    """The step of the newest ``step-*.ckpt`` in a ``nerfstudio_models`` folder; None when it holds none."""
    steps = [int(path.stem.split("-")[1]) for path in Path(models_dir).glob("step-*.ckpt")]
    return max(steps) if steps else None


def model_mismatch(
    pipeline_state: Mapping[str, Tensor], checkpoint_state: Mapping[str, Tensor], optional: tuple[str, ...] = ()
) -> str | None:
    """Why the model tensors of a checkpoint's pipeline state do not fit a pipeline's, in a few words; None if they do.

    Every model tensor of the checkpoint must exist in the pipeline with the same shape, and every model tensor
    of the pipeline must be in the checkpoint. Tensors whose names start with one of ``optional`` may be absent
    from either.
    """
    ours = {key: value for key, value in pipeline_state.items() if key.startswith(MODEL_PREFIX)}
    theirs = {  # nerfstudio's load_pipeline drops the "module." of multi-GPU runs the same way
        key.removeprefix("module."): value
        for key, value in checkpoint_state.items()
        if key.removeprefix("module.").startswith(MODEL_PREFIX)
    }
    problems = {
        "differing shapes": [key for key in theirs if key in ours and theirs[key].shape != ours[key].shape],
        "missing": [key for key in ours if key not in theirs and not key.startswith(optional)],
        "not in this model": [key for key in theirs if key not in ours and not key.startswith(optional)],
    }
    return ", ".join(f"{what}: {len(keys)} (first: {keys[0]})" for what, keys in problems.items() if keys) or None
