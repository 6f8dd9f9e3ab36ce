"""A chain of two edits with the shipped toy editor: the second edit keeps the first.

``scripts/demo.py --then`` on the embedded toy scene ("make the red cube blue", then "make the blue ball yellow"),
each edit run of relevance-edit building on its previous one, judged on the 12 held-out views of the last run.
An edit run that trained on the photos again (as Instruct-NeRF2NeRF and Watch Your Steps do) turns the cube back
to red within these steps.
"""

from __future__ import annotations

import pytest

from tests.relevance_nerf.conftest import demo_metrics

pytestmark = pytest.mark.slow

NERFACTO_ITERATIONS = 600
EDIT_ITERATIONS = 150
FIRST, SECOND = "make the red cube blue", "make the blue ball yellow"
MIN_SUCCESS = 2 / 3
"""Share of held-out views whose object has its edit's colour by the strict test, for each edit of the chain."""
MIN_PSNR_OUTSIDE_DB = 30.0
"""PSNR outside both objects against the render before the second edit."""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("chain")
    return demo_metrics(out, NERFACTO_ITERATIONS, EDIT_ITERATIONS, "--text", FIRST, "--then", SECOND)["chain"]


def test_after_the_second_edit_both_objects_have_their_edits_colours(report):
    first, second = report["relevance-edit"]["edits"]
    assert (first["instruction"], second["instruction"]) == (FIRST, SECOND)
    assert first["edit_success"] >= MIN_SUCCESS, first["object_colours"]  # the cube is still blue
    assert second["edit_success"] >= MIN_SUCCESS, second["object_colours"]


def test_the_second_edit_keeps_the_rest_of_the_scene(report):
    assert report["relevance-edit"]["psnr_outside_all_vs_before"] >= MIN_PSNR_OUTSIDE_DB
