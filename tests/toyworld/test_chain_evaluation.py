"""Judging a chain of edits: each edit's object by its own instruction, on exact renders of known outcomes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from relevance_nerf.errors import RelevanceEditError
from tests.toyworld.test_evaluation import SPEC, _renders, scene  # noqa: F401  (the module's scene fixture)
from toyworld.evaluation import chain_table, load_scene_truth, measure_chain

FIRST, SECOND = "make the red cube blue", "make the blue ball yellow"


def _recoloured(**colours: str):
    return replace(SPEC, objects=tuple(replace(o, colour=colours.get(o.name, o.colour)) for o in SPEC.objects))


@pytest.fixture(scope="module")
def truths(scene):  # noqa: F811
    return [load_scene_truth(scene, FIRST), load_scene_truth(scene, SECOND, [FIRST])]


def test_an_instruction_names_its_object_by_its_colour_after_the_earlier_edits(scene):  # noqa: F811
    truth = load_scene_truth(scene, "make the blue cube green", ["make the red cube blue"])
    assert truth.object_name == "red_cube" and truth.edit.target_colour == "green"
    with pytest.raises(RelevanceEditError, match="no blue cube"):
        load_scene_truth(scene, "make the blue cube green")  # without the first edit there is none
    with pytest.raises(RelevanceEditError, match="no red cube to recolour"):
        load_scene_truth(scene, SECOND, ["make the red cube blue", "make the red cube green"])


def test_both_edits_done_pass_and_every_known_failure_fails(truths):
    after_first = _renders(truths[0], _recoloured(red_cube="blue"), with_relevance=False)
    both = measure_chain(
        truths, _renders(truths[0], _recoloured(red_cube="blue", blue_ball="yellow"), False), after_first
    )
    assert [edit.edit_success for edit in both.edits] == [1.0, 1.0] and both.psnr_outside_all_vs_before >= 60

    cases = {
        "the second edit undid the first": _recoloured(blue_ball="yellow"),
        "unedited": _recoloured(),
        "the first edit only": _recoloured(red_cube="blue"),
        "the wrong object": _recoloured(red_cube="blue", green_cube="yellow"),
    }
    results = {
        name: measure_chain(truths, _renders(truths[0], spec, False), after_first) for name, spec in cases.items()
    }
    assert results["the second edit undid the first"].edits[0].edit_success == 0.0
    assert results["unedited"].edits[0].edit_success == 0.0 and results["unedited"].edits[1].edit_success == 0.0
    assert results["the first edit only"].edits[1].edit_success == 0.0
    wrong = results["the wrong object"]
    assert wrong.edits[1].edit_success == 0.0 and wrong.psnr_outside_all_vs_before < 30  # outside both objects

    table = chain_table({"both": both, "undone": results["the second edit undid the first"]})
    assert f"| {FIRST!r} success | {SECOND!r} success |" in table.splitlines()[0]
    assert table.splitlines()[-1].startswith("| undone | 0% | 100% |")
