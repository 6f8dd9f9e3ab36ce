"""The nerfstudio viewer on a finished edit run, driven in headless Chromium: scene loads, relevance is offered."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NS_VIEWER = str(Path(sys.executable).parent / "ns-viewer")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, viewer: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert viewer.poll() is None, "ns-viewer exited before serving the page"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"ns-viewer did not open port {port} within {timeout:.0f} s")


def _viewport(screenshot: Path) -> np.ndarray:
    """The 3D view (left of the control panel) as float RGB."""
    image = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.float32)
    return image[80:, : image.shape[1] * 2 // 3]


def _offered_outputs(page, output_type, timeout: float = 90.0) -> list[str]:
    """Open the output-type list until it holds the model's outputs (filled in after the first render)."""
    deadline = time.monotonic() + timeout
    while True:
        output_type.click()
        page.get_by_role("option").first.wait_for(timeout=10_000)
        offered = page.get_by_role("option").all_inner_texts()
        if "rgb" in offered or time.monotonic() > deadline:
            return offered
        page.keyboard.press("Escape")
        page.wait_for_timeout(2_000)


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        message = "Chromium is missing (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def test_viewer_offers_and_shows_the_relevance_output(edit_run, toy_scene, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    log = (tmp_path / "viewer.log").open("w")
    viewer = subprocess.Popen(
        [NS_VIEWER, "--load-config", str(edit_run / "config.yml"), "--viewer.websocket-port", str(port),
         "--viewer.websocket-host", "127.0.0.1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=edit_run.parents[3],
    )  # fmt: skip
    try:
        _wait_for_port(port, viewer)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"http://127.0.0.1:{port}", timeout=60_000)
            page.get_by_text("Connected").wait_for(timeout=60_000)
            output_type = page.get_by_label("Output type")
            output_type.wait_for(timeout=60_000)
            page.wait_for_timeout(5_000)  # the first frames of the scene
            page.screenshot(path=tmp_path / "rgb.png")

            offered = _offered_outputs(page, output_type)
            assert "relevance" in offered and "edit_mask" in offered, offered
            page.get_by_role("option", name="relevance", exact=True).click()
            assert output_type.input_value() == "relevance"
            page.wait_for_timeout(5_000)
            page.screenshot(path=tmp_path / "relevance.png")
            browser.close()
    finally:
        viewer.terminate()
        viewer.wait(timeout=30)
        log.close()

    rgb, relevance = _viewport(tmp_path / "rgb.png"), _viewport(tmp_path / "relevance.png")
    assert rgb.std() > 2.0, "the 3D view is blank: the scene did not render"
    assert np.abs(rgb - relevance).mean() > 2.0, "choosing the relevance output did not change the view"
