"""nerfstudio checkpoints: finding the latest in a run, and loading them under torch's safe unpickler.

``nerfstudio_models/step-<step>.ckpt`` is nerfstudio's layout; ``latest_step`` reads it.

torch >= 2.6 loads with ``weights_only=True`` by default, and nerfstudio 1.1.5's
checkpoints hold numpy scalars (learning rates in the scheduler state), which that
unpickler refuses. Allowing numpy's scalar and dtype reconstructors keeps loading safe
(they build numbers, never call arbitrary code) instead of falling back to full pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

NUMPY_SCALAR_GLOBALS = [np.core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]


def allow_numpy_scalars() -> None:
    torch.serialization.add_safe_globals(NUMPY_SCALAR_GLOBALS)


def latest_step(models_dir: Path) -> int | None:
    """The step of the newest ``step-*.ckpt`` in a ``nerfstudio_models`` folder; None when it holds none."""
    steps = [int(path.stem.split("-")[1]) for path in Path(models_dir).glob("step-*.ckpt")]
    return max(steps) if steps else None
