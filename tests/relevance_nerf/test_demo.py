"""scripts/demo.py and scripts/evaluate_scene.py end to end on a small scene: report, resume, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.relevance_nerf.conftest import ns_train

pytestmark = pytest.mark.slow


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / f"{name}.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def demo(toy_scene, tiny_checkpoint, tmp_path_factory):
    """A demo whose nerfacto stage was cut short at step 9 by an earlier, interrupted run."""
    out = tmp_path_factory.mktemp("demo")
    partial = ns_train(
        "nerfacto-tiny", "--data", str(toy_scene), "--output-dir", str(out), "--experiment-name", "nerfacto",
        "--timestamp", "run", "--max-num-iterations", "10", cwd=out,
    )  # fmt: skip
    assert partial.returncode == 0, partial.stderr[-2000:]
    args = ["--scene", str(toy_scene), "--out", str(out), "--editor", str(tiny_checkpoint), "--preset", "tiny",
            "--nerfacto-iterations", "20", "--edit-iterations", "6", "--clip", "none"]  # fmt: skip
    result = _script("demo", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, args, result


def test_demo_continues_a_cut_short_stage_and_writes_the_report(demo, toy_scene):
    out, _, result = demo
    assert "continuing from step 9" in result.stdout
    assert (out / "nerfacto" / "nerfacto-tiny" / "run" / "nerfstudio_models" / "step-000000019.ckpt").is_file()
    for run in ("relevance-edit", "baseline"):  # 20 nerfacto steps, then 6 edit steps
        assert (out / run / "relevance-edit-tiny" / "run" / "nerfstudio_models" / "step-000000025.ckpt").is_file()
    report = out / "report"
    summary = json.loads((report / "metrics.json").read_text())
    assert set(summary["metrics"]) == {"relevance-edit", "baseline (no mask)", "before edit"}
    assert summary["settings"]["baseline (no mask)"]["threshold"] == 0.0
    assert summary["settings"]["relevance-edit"]["threshold"] == 0.5
    assert summary["clip"] is None and "skipped" in summary["clip_note"]
    assert len(list((report / "strips").glob("*.png"))) == 4 and (report / "orbit.gif").is_file()
    assert "| relevance-edit |" in (report / "metrics.md").read_text()
    assert not list(toy_scene.rglob("*.ckpt"))  # nothing written into the user's scene


def test_rerunning_the_demo_skips_finished_stages(demo):
    out, args, _ = demo
    result = _script("demo", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("done earlier") == 3


def test_demo_refuses_other_settings_in_the_same_folder_and_missing_inputs(demo, tmp_path):
    out, args, _ = demo
    changed = [*args, "--text", "make the blue ball green"]
    for bad, message in [
        (changed, "holds a demo with other settings"),
        (["--scene", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], "no scene at"),
        (["--editor", str(tmp_path / "no-editor"), "--out", str(tmp_path / "o")], "model not found"),
        (["--text", " ", "--out", str(tmp_path / "o")], "instruction is empty"),
    ]:
        result = _script("demo", *bad)
        assert result.returncode == 1 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert json.loads((out / "demo.json").read_text())["text"] == "make the red cube blue"


def test_evaluate_scene_refuses_incomparable_runs_and_other_reports(demo, toy_scene):
    out, _, _ = demo
    edit, nerfacto = out / "relevance-edit" / "relevance-edit-tiny" / "run", out / "nerfacto" / "nerfacto-tiny" / "run"
    common = ["--scene", str(toy_scene), "--edit-run", str(edit), "--clip", "none"]
    result = _script("evaluate_scene", *common, "--baseline-run", str(nerfacto), "--out", str(out / "other"))
    assert result.returncode == 1 and "not comparable" in result.stderr
    result = _script("evaluate_scene", *common, "--out", str(out / "report"))
    assert result.returncode == 1 and "holds the report of other runs" in result.stderr
