"""The 3D evaluation: ground truth of a toy scene, metrics on known renders, the report, clear errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from relevance_nerf.errors import RelevanceEditError
from toyworld import SceneSpec, write_scene
from toyworld.evaluation import (
    CHANGE_THRESHOLD,
    RenderedView,
    load_scene_truth,
    measure,
    metrics_json,
    metrics_table,
)
from toyworld.metrics import changed_pixels, precision_recall
from toyworld.report import write_report
from toyworld.scene import camera_poses, render_view

TEXT = "make the red cube blue"
SPEC = SceneSpec(views=12, size=32)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("eval") / "scene", SPEC).parent


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def _renders(truth, spec: SceneSpec, with_relevance: bool) -> dict[str, RenderedView]:
    """Exact renders of ``spec`` from the held-out cameras (the scene's every 3rd camera)."""
    poses = camera_poses(spec)
    renders = {}
    for view in truth.views:
        rgb, _ = render_view(spec, poses[int(view.name[6:11])])
        relevance = view.object_mask.float() if with_relevance else None
        renders[view.name] = RenderedView(_tensor(rgb), relevance)
    return renders


def test_ground_truth_is_the_held_out_views_and_the_named_object(scene):
    truth = load_scene_truth(scene, TEXT)
    assert [view.name for view in truth.views] == [f"frame_{i:05d}.png" for i in range(0, 12, 3)]
    assert truth.object_name == "red_cube" and truth.edit.target_colour == "blue"
    assert all(view.object_mask.any() for view in truth.views)


def test_a_perfect_edit_scores_perfectly_and_no_edit_fails(scene):
    truth = load_scene_truth(scene, TEXT)
    edited_objects = tuple(replace(o, colour="blue") if o.name == "red_cube" else o for o in SPEC.objects)
    unedited_renders = _renders(truth, SPEC, with_relevance=False)
    perfect = measure(truth, _renders(truth, replace(SPEC, objects=edited_objects), True), before=unedited_renders)
    assert perfect.edit_success == 1.0
    assert perfect.edit_precision == 1.0 and perfect.edit_recall > 0.95  # 0.97: edge pixels, mostly floor, change less
    assert perfect.psnr_outside >= 60 and perfect.ssim_outside > 0.9  # the floor and other objects are untouched
    assert set(perfect.object_colours.values()) == {"blue"} and perfect.hue_spread < 5.0  # edges mix in the floor

    unedited = measure(truth, unedited_renders)
    assert unedited.edit_success == 0.0 and unedited.edit_precision is None and unedited.edit_recall is None
    assert set(unedited.object_colours.values()) == {"red"}
    assert list(perfect.object_colours) == [view.name for view in truth.views if view.object_mask.sum() >= 16]

    table = metrics_table({"perfect": perfect, "unedited": unedited})
    assert table.splitlines()[-2].endswith("| 1.00 | " + format(perfect.edit_recall, ".2f") + " |")
    assert table.splitlines()[-1].endswith("| n/a | n/a |")  # no render before the edit: unavailable, not 0
    summary = json.loads(json.dumps(metrics_json({"perfect": perfect, "unedited": unedited})))
    assert summary["perfect"]["edit_success"] == 1.0 and summary["perfect"]["edit_precision"] == 1.0
    assert summary["unedited"]["edit_precision"] is None and summary["unedited"]["changed_pixels"] is None


def test_nothing_changed_leaves_precision_undefined(scene):
    truth = load_scene_truth(scene, TEXT)
    renders = _renders(truth, SPEC, with_relevance=False)
    still = measure(truth, renders, before=renders)
    assert math.isnan(still.edit_precision) and still.edit_recall == 0.0 and still.changed_pixels == 0
    assert metrics_table({"still": still}).endswith("| - | 0.00 |")
    assert json.loads(json.dumps(metrics_json({"still": still})))["still"]["edit_precision"] is None


OBJECT = torch.zeros(4, 4, dtype=torch.bool)
OBJECT[1:3, 1:3] = True  # 4 of 16 pixels


def _changed(where: torch.Tensor) -> torch.Tensor:
    """Which pixels ``changed_pixels`` finds when an image is recoloured at ``where``."""
    before = torch.full((3, 4, 4), 0.5)
    after = before.clone()
    after[2, where] += 2 * CHANGE_THRESHOLD
    after[0, ~where] += CHANGE_THRESHOLD / 2  # a drift below the threshold does not count
    return changed_pixels(after, before, CHANGE_THRESHOLD)


@pytest.mark.parametrize(
    "where, expected",
    [
        (OBJECT, (1.0, 1.0)),  # exactly the object
        (torch.ones(4, 4, dtype=torch.bool), (4 / 16, 1.0)),  # everywhere, as the unmasked baseline: its area share
        (~OBJECT, (0.0, 0.0)),  # only outside the object
    ],
)
def test_precision_and_recall_of_known_changes(where, expected):
    assert torch.equal(_changed(where), where)
    assert precision_recall(_changed(where), OBJECT) == expected


def test_no_change_has_undefined_precision_and_zero_recall():
    precision, recall = precision_recall(_changed(torch.zeros(4, 4, dtype=torch.bool)), OBJECT)
    assert math.isnan(precision) and recall == 0.0


def test_an_edit_that_spills_outside_the_object_loses_preservation(scene):
    truth = load_scene_truth(scene, TEXT)
    renders = _renders(truth, SPEC, with_relevance=False)
    spilled = {
        name: replace(r, rgb=r.rgb * torch.tensor([0.3, 0.5, 1.0])[:, None, None]) for name, r in renders.items()
    }
    assert measure(truth, spilled).psnr_outside < measure(truth, renders).psnr_outside - 10


def test_clear_errors_for_scenes_instructions_and_runs(scene, tmp_path):
    with pytest.raises(RelevanceEditError, match="no scene at"):
        load_scene_truth(tmp_path / "missing", TEXT)
    with pytest.raises(RelevanceEditError, match="recolour instructions"):
        load_scene_truth(scene, "turn it into a painting")
    with pytest.raises(RelevanceEditError, match="has no yellow ball"):
        load_scene_truth(scene, "make the yellow ball red")
    truth = load_scene_truth(scene, TEXT)
    with pytest.raises(RelevanceEditError, match="no render of held-out views"):
        measure(truth, {})


def test_report_holds_strips_gif_and_tables(scene, tmp_path):
    truth = load_scene_truth(scene, TEXT)
    renders = {"relevance-edit": _renders(truth, SPEC, True), "baseline": _renders(truth, SPEC, False)}
    rows = {label: measure(truth, r) for label, r in renders.items()}
    out = write_report(tmp_path / "report", truth, renders, metrics_table(rows), {"metrics": metrics_json(rows)},
                       gif_runs=("relevance-edit", "baseline"))  # fmt: skip
    strips = sorted((out / "strips").glob("*.png"))
    assert [p.name for p in strips] == [v.name for v in truth.views]
    from PIL import Image

    strip = Image.open(strips[0])
    # photo, relevance-edit, its relevance, baseline, object mask: five 64 px tiles with labels above
    assert strip.height == 2 * 32 + 14 and strip.width == 5 * 64 + 4 * 4
    gif = Image.open(out / "orbit.gif")
    assert gif.n_frames == len(truth.views)
    assert "| relevance-edit |" in (out / "metrics.md").read_text()
    assert not math.isnan(json.loads((out / "metrics.json").read_text())["metrics"]["baseline"]["psnr_outside"])
