"""The 3D quality gate: relevance-edit with the shipped toy editor really edits, and only where it should.

A short ``scripts/demo.py`` on the embedded toy scene (nerfacto-tiny, then relevance-edit-tiny and the
Instruct-NeRF2NeRF baseline from it; about 4.5 min on 2 CPU cores), judged on the 12 held-out views by the strict
recolour test and by PSNR outside the object against the pre-edit render. Seeds and torch threads are fixed;
the spread of five runs is in README.md ("Set up and run").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from toyworld import SceneSpec, write_scene

pytestmark = pytest.mark.slow

# 24 training views, 12 held out. With 12 training views nerfacto-tiny had not shaped the cube after 900 steps
# (grey in every held-out view before the edit); with 24, 600 steps show it red in all of them.
NERFACTO_ITERATIONS = 600
EDIT_ITERATIONS = 150
MIN_SUCCESS = 2 / 3
"""Share of held-out views whose object has the requested colour by the strict test (issue 14)."""
MIN_PSNR_MARGIN_DB = 5.0
"""relevance-edit's PSNR outside the object (vs the pre-edit render) above the baseline's (issue 14)."""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gate")
    scene = write_scene(out / "scene", SceneSpec()).parent
    command = [
        sys.executable, str(REPO / "scripts" / "demo.py"), "--scene", str(scene), "--out", str(out / "demo"),
        "--preset", "tiny", "--nerfacto-iterations", str(NERFACTO_ITERATIONS),
        "--edit-iterations", str(EDIT_ITERATIONS), "--seed", "0", "--clip", "none",
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "demo" / "report" / "metrics.json").read_text())["metrics"]


def test_relevance_edit_recolours_the_named_object_in_held_out_views(report):
    edit = report["relevance-edit"]
    assert edit["edit_success"] >= MIN_SUCCESS, edit["object_colours"]


def test_relevance_edit_keeps_the_rest_of_the_scene_better_than_the_unmasked_baseline(report):
    edit, baseline = report["relevance-edit"], report["baseline (no mask)"]
    margin = edit["psnr_outside_vs_before"] - baseline["psnr_outside_vs_before"]
    assert margin >= MIN_PSNR_MARGIN_DB, (edit["psnr_outside_vs_before"], baseline["psnr_outside_vs_before"])
