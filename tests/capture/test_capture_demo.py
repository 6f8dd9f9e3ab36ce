"""The capture path end to end at CI size: photos -> ns-process-data (COLMAP) -> nerfacto -> edits -> report, video."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

TOOLS = all(shutil.which(tool) for tool in ("colmap", "ffmpeg"))


def _capture_demo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / "capture_demo.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)


def test_a_missing_tool_stops_the_demo_before_any_work_with_one_error_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    result = _capture_demo("--out", str(tmp_path / "demo"), env=env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "colmap" in last and "apt-get install" in last
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.skipif(not TOOLS, reason="colmap and ffmpeg are needed (.ci/run installs them)")
def test_the_capture_demo_poses_the_photos_edits_and_reports(tmp_path):
    out = tmp_path / "capture-demo"
    # The demo's capture (36 photos of 512x384: COLMAP needs that many features to register them all) of the layout
    # it reports, with short trainings.
    args = ["--out", str(out), "--layout", "3001", "--photos", "36", "--width", "512", "--height", "384",
            "--nerfacto-iterations", "300", "--edit-iterations", "40", "--render-seconds", "1"]  # fmt: skip
    result = _capture_demo(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "report" / "metrics.json").read_text())
    assert summary["colmap"]["registered"] >= 0.9 * 36
    assert summary["poses_all"]["rotation_median_deg"] < 5
    assert set(summary["metrics"]) == {"relevance-edit", "baseline (no mask)", "before edit"}
    assert (out / "report" / "edited.mp4").stat().st_size > 0
    assert len(list((out / "report" / "strips").iterdir())) == len(json.loads(
        (out / "processed" / "transforms.json").read_text())["test_filenames"])  # fmt: skip
    # Run again: every stage is found done.
    again = _capture_demo(*args)
    assert again.returncode == 0 and "done earlier" in again.stdout
