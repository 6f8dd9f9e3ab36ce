"""The capture path names every missing system tool in one error line, with the commands that install them."""

from __future__ import annotations

import subprocess
import sys

from relevance_nerf.system_tools import CAPTURE_TOOLS, SystemTool, check_capture_tools


def test_all_tools_present_is_no_error():
    assert check_capture_tools((SystemTool("x", "x", "x", lambda: True),)) is None


def test_missing_tools_are_one_error_line_with_apt_and_conda_commands():
    tools = (
        SystemTool("colmap", "colmap", "colmap", lambda: False),
        SystemTool("ffmpeg", "ffmpeg", "ffmpeg", lambda: True),
        SystemTool("libusb-1.0 (for open3d)", "libusb-1.0-0", "libusb", lambda: False),
    )
    message = check_capture_tools(tools)
    assert message.startswith("error: ") and "\n" not in message
    assert "colmap" in message and "libusb-1.0 (for open3d)" in message and "ffmpeg," not in message
    assert "sudo apt-get install -y colmap libusb-1.0-0" in message
    assert "conda install -c conda-forge colmap libusb" in message


def test_the_capture_tools_are_colmap_ffmpeg_and_libusb():
    assert [tool.apt for tool in CAPTURE_TOOLS] == ["colmap", "ffmpeg", "libusb-1.0-0"]


def test_the_command_exits_non_zero_with_one_line_when_tools_are_off_path(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "relevance_nerf.system_tools"],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "colmap" in lines[0] and "ffmpeg" in lines[0]
