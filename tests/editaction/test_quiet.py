"""The project's commands print no known upstream deprecation warning; the same from a user's code still shows."""

from __future__ import annotations

import subprocess
import sys

from editaction.quiet import environment, pythonwarnings
from tests.conftest import REPO


def _warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "DeprecationWarning" in line or "FutureWarning" in line]


def _stderr(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_a_script_that_loads_nerfstudio_prints_no_upstream_deprecation_warning():
    stderr = _stderr([sys.executable, "scripts/evaluate_scene.py", "--help"])
    assert _warning_lines(stderr) == []


def test_a_child_process_gets_the_filters_before_nerfstudio_is_imported():
    """``ns-train`` imports nerfstudio's models before it loads the plugin: the demos hand it the filters."""
    stderr = _stderr([sys.executable, "-c", "import nerfstudio.configs.method_configs"], env=environment())
    assert _warning_lines(stderr) == []


def test_the_environment_keeps_the_users_own_warning_options():
    env = environment({"PYTHONWARNINGS": "error::DeprecationWarning"})
    assert env["PYTHONWARNINGS"] == "error::DeprecationWarning," + pythonwarnings()
    assert environment({})["PYTHONWARNINGS"] == pythonwarnings()


def test_the_same_warnings_from_the_users_code_still_show():
    """The filters name the upstream module that warns: a user's own deprecated indexing or warning is not hidden."""
    code = (
        "import warnings, torch, editaction, relevance_nerf\n"
        "torch.zeros(3, 3)[[slice(None), 0]]\n"
        "warnings.warn('`torch.jit.script` is deprecated in this user script', FutureWarning)\n"
    )
    stderr = _stderr([sys.executable, "-c", code])
    assert "UserWarning: Using a non-tuple sequence for multidimensional indexing" in stderr
    assert "FutureWarning: `torch.jit.script` is deprecated in this user script" in stderr
