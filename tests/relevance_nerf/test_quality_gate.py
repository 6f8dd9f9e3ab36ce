"""The 3D quality gate: relevance-edit with the shipped toy editor really edits, and only where it should.

A short ``scripts/demo.py`` on the embedded toy scene (nerfacto-tiny, then relevance-edit-tiny and the
Instruct-NeRF2NeRF baseline from it; about 4.5 min on 2 CPU cores), judged on the 12 held-out views by the strict
recolour test and by PSNR outside the object against the pre-edit render. Seeds and torch threads are fixed;
the figures are in docs/results.md.
"""

from __future__ import annotations

import pytest

from tests.relevance_nerf.conftest import demo_metrics

pytestmark = pytest.mark.slow

# 24 training views, 12 held out: with fewer views nerfacto-tiny needs more steps to shape the cube.
NERFACTO_ITERATIONS = 600
EDIT_ITERATIONS = 150
MIN_SUCCESS = 2 / 3
"""Share of held-out views whose object has the requested colour by the strict test."""
MIN_PSNR_MARGIN_DB = 5.0
"""relevance-edit's PSNR outside the object (vs the pre-edit render) above the baseline's."""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    return demo_metrics(tmp_path_factory.mktemp("gate"), NERFACTO_ITERATIONS, EDIT_ITERATIONS)["metrics"]


def test_relevance_edit_recolours_the_named_object_in_held_out_views(report):
    edit = report["relevance-edit"]
    assert edit["edit_success"] >= MIN_SUCCESS, edit["object_colours"]


def test_relevance_edit_keeps_the_rest_of_the_scene_better_than_the_unmasked_baseline(report):
    edit, baseline = report["relevance-edit"], report["baseline (no mask)"]
    margin = edit["psnr_outside_vs_before"] - baseline["psnr_outside_vs_before"]
    assert margin >= MIN_PSNR_MARGIN_DB, (edit["psnr_outside_vs_before"], baseline["psnr_outside_vs_before"])
