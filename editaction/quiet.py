"""Upstream deprecation warnings that the project's commands do not print.

torch and nerfstudio warn about nerfstudio's own use of deprecated torch APIs, which no user setting can change.
Each filter names one message, its category and the upstream module that warns, so the same message from
anywhere else, and every warning about the user's input, still shows. ``editaction`` installs the filters when it
is imported, before any project module imports nerfstudio; ``environment`` hands them to a child process
(``ns-train`` warns before it loads the plugin).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping

UPSTREAM_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    ("`torch.jit.script` is deprecated", FutureWarning, "torch.jit._script"),
    ("`torch.cuda.amp.custom_fwd(args...)` is deprecated", FutureWarning, "nerfstudio.field_components.activations"),
    ("`torch.cuda.amp.custom_bwd(args...)` is deprecated", FutureWarning, "nerfstudio.field_components.activations"),
    ("`torch.cuda.amp.GradScaler(args...)` is deprecated", FutureWarning, "nerfstudio.engine.trainer"),
    ("Using a non-tuple sequence for multidimensional indexing", UserWarning, "nerfstudio.cameras.cameras"),
    ("Converting a tensor with requires_grad=True to a scalar", UserWarning, "nerfstudio.utils.writer"),
)
"""(start of the message, category, module that warns): each known upstream warning, matched exactly."""


def quiet_upstream_warnings() -> None:
    """Ignore the ``UPSTREAM_WARNINGS`` in this process; every other warning keeps its action."""
    for message, category, module in UPSTREAM_WARNINGS:
        warnings.filterwarnings("ignore", re.escape(message), category, re.escape(module) + r"\Z")


def pythonwarnings() -> str:
    """The same filters in ``PYTHONWARNINGS``' syntax (literal message start, exact module), for a child process."""
    return ",".join(f"ignore:{message}:{category.__name__}:{module}" for message, category, module in UPSTREAM_WARNINGS)


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``pythonwarnings()`` added to its ``PYTHONWARNINGS``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONWARNINGS"] = ",".join(part for part in (env.get("PYTHONWARNINGS"), pythonwarnings()) if part)
    return env
