"""A toy scene, a short nerfacto-tiny run and a short relevance-edit-tiny run, made once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toyworld import SceneSpec, write_scene

NS_TRAIN = str(Path(sys.executable).parent / "ns-train")
TEXT = "make the red cube blue"
DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def demo_metrics(out: Path, nerfacto_iterations: int, edit_iterations: int, *options: str) -> dict:
    """``metrics.json`` of a short CPU demo on the embedded toy scene (seed 0, torch on 2 threads)."""
    scene = write_scene(out / "scene", SceneSpec()).parent
    command = [
        sys.executable, str(DEMO), "--scene", str(scene), "--out", str(out / "demo"), "--preset", "tiny",
        "--nerfacto-iterations", str(nerfacto_iterations), "--edit-iterations", str(edit_iterations),
        "--seed", "0", "--clip", "none", *options,
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "demo" / "report" / "metrics.json").read_text())


def ns_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the real ``ns-train`` entry point (offline, CPU, tensorboard instead of the viewer)."""
    return subprocess.run(
        [NS_TRAIN, args[0], "--vis", "tensorboard", "--machine.device-type", "cpu", *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


def run_dir(output_dir: Path, method: str, timestamp: str) -> Path:
    return output_dir / "scene" / method / timestamp


@pytest.fixture(scope="session")
def toy_scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("data") / "scene", SceneSpec(views=12, size=32)).parent


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def nerfacto_run(toy_scene, runs) -> Path:
    result = ns_train(
        "nerfacto-tiny", "--data", str(toy_scene), "--output-dir", str(runs), "--timestamp", "base",
        "--max-num-iterations", "20", "--steps-per-save", "10", cwd=runs,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir(runs, "nerfacto-tiny", "base")


def edit_args(toy_scene: Path, runs: Path, editor: Path, load_dir: Path, timestamp: str) -> list[str]:
    return [
        "relevance-edit-tiny", "--text", TEXT, "--pipeline.editor", str(editor),
        "--load-dir", str(load_dir / "nerfstudio_models"), "--output-dir", str(runs),
        "--timestamp", timestamp, "--max-num-iterations", "12", "--steps-per-save", "6",
        "--pipeline.relevance-warmup-steps", "4", "--pipeline.edit-rate", "4", "--pipeline.edit.steps", "4",
        "nerfstudio-data", "--data", str(toy_scene),  # the dataparser subcommand, as users write it
    ]  # fmt: skip


@pytest.fixture(scope="session")
def edit_run(toy_scene, runs, nerfacto_run, tiny_checkpoint) -> Path:
    result = ns_train(*edit_args(toy_scene, runs, tiny_checkpoint, nerfacto_run, "edit"), cwd=runs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir(runs, "relevance-edit-tiny", "edit")
