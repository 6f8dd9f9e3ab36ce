"""Lets nerfstudio's checkpoints load under torch's safe ``weights_only`` unpickler.

torch >= 2.6 loads with ``weights_only=True`` by default, and nerfstudio 1.1.5's
checkpoints hold numpy scalars (learning rates in the scheduler state), which that
unpickler refuses. Allowing numpy's scalar and dtype reconstructors keeps loading safe
(they build numbers, never call arbitrary code) instead of falling back to full pickle.
"""

from __future__ import annotations

import numpy as np
import torch

NUMPY_SCALAR_GLOBALS = [np.core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]


def allow_numpy_scalars() -> None:
    torch.serialization.add_safe_globals(NUMPY_SCALAR_GLOBALS)
