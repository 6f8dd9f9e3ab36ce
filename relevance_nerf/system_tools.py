"""The system tools a real capture needs before ``ns-process-data`` can pose its photos.

nerfstudio's ``ns-process-data`` runs COLMAP and ffmpeg from PATH and imports open3d, which
loads the system library libusb-1.0 at import: without any of them it dies part-way, with a
traceback that does not say what to install. ``missing_tools`` finds all of them at once so a
capture run can stop before any work with one line naming each and the command that installs it.

python -m relevance_nerf.system_tools      # exit 0 when all are there, else one "error:" line
"""

from __future__ import annotations

import ctypes
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SystemTool:
    name: str
    """What the user is told is missing."""
    apt: str
    """Debian/Ubuntu package."""
    conda: str
    """conda-forge package."""
    present: Callable[[], bool]


def _on_path(program: str) -> Callable[[], bool]:
    return lambda: shutil.which(program) is not None


def _loadable(library: str) -> Callable[[], bool]:
    def load() -> bool:
        try:
            ctypes.CDLL(library)
        except OSError:
            return False
        return True

    return load


CAPTURE_TOOLS = (
    SystemTool("colmap", "colmap", "colmap", _on_path("colmap")),
    SystemTool("ffmpeg", "ffmpeg", "ffmpeg", _on_path("ffmpeg")),
    # open3d (imported by ns-process-data) links this exact soname.
    SystemTool("libusb-1.0 (for open3d)", "libusb-1.0-0", "libusb", _loadable("libusb-1.0.so.0")),
)


def missing_tools(tools: tuple[SystemTool, ...] = CAPTURE_TOOLS) -> list[SystemTool]:
    return [tool for tool in tools if not tool.present()]


def missing_message(missing: list[SystemTool]) -> str:
    """One line: what is missing and how to install it on Debian/Ubuntu and with conda."""
    names = ", ".join(tool.name for tool in missing)
    apt = " ".join(tool.apt for tool in missing)
    conda = " ".join(tool.conda for tool in missing)
    return (
        f"error: ns-process-data needs {names}, not found on this machine; install with "
        f"'sudo apt-get install -y {apt}' (Debian/Ubuntu) or 'conda install -c conda-forge {conda}'"
    )


def check_capture_tools(tools: tuple[SystemTool, ...] = CAPTURE_TOOLS) -> str | None:
    """None when every tool is there, else the one-line error."""
    missing = missing_tools(tools)
    return missing_message(missing) if missing else None


def main() -> int:
    error = check_capture_tools()
    if error is not None:
        print(error, file=sys.stderr)
        return 1
    print("colmap, ffmpeg and libusb-1.0 found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
