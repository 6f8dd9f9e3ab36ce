"""Edits that build on each other: a run started from an edit run of another instruction keeps that edit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from relevance_nerf.datamanager import EARLIER_EDIT_LEVELS
from relevance_nerf.edit_store import EditStore
from relevance_nerf.errors import RelevanceEditError
from tests.relevance_nerf.conftest import TEXT
from tests.relevance_nerf.test_pipeline import _pipeline, _rectangle, _render_masks

SECOND = "make the blue ball yellow"
THIRD = "make the green cone red"


def _edited_run(toy_scene, tiny_checkpoint, monkeypatch, run_dir, text=TEXT, resume_from=None, views=(0, 1, 2)):
    """A run of ``text`` that edits ``views`` under a fixed mask; returns its pipeline."""
    pipeline = _pipeline(toy_scene, tiny_checkpoint, text=text)
    pipeline.bind_run(run_dir, resume_from=resume_from)
    pipeline.compute_relevance_targets()
    _render_masks(pipeline, monkeypatch, {index: _rectangle(slice(4, 20), slice(8, 24)) for index in range(24)})
    for index in views:
        pipeline.edit_view(index)
    return pipeline


def test_a_new_instruction_started_from_an_edit_run_starts_from_its_edited_views(
    toy_scene, tiny_checkpoint, monkeypatch, tmp_path
):
    first = _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a")
    photos = first.datamanager.original_pixels.clone()
    edited = first.datamanager.image_batch["image"].clone()
    assert not torch.equal(edited[:3], photos[:3])

    second = _pipeline(toy_scene, tiny_checkpoint, text=SECOND)
    second.bind_run(tmp_path / "b", resume_from=tmp_path / "a")
    datamanager = second.datamanager
    assert torch.equal(datamanager.original_pixels, edited)  # the starting images: A's views as edited
    assert torch.equal(datamanager.image_batch["image"], edited)
    assert [(link.instruction, link.run) for link in second.chain] == [
        (TEXT, str((tmp_path / "a").resolve())),
        (SECOND, str((tmp_path / "b").resolve())),
    ]
    assert EditStore(tmp_path / "b").start_indices() == [0, 1, 2]  # only what differs from the photos is kept

    seen = []
    relevance_map = second.editor.relevance_map
    monkeypatch.setattr(
        second.editor, "relevance_map", lambda images, *a, **k: seen.append(images) or relevance_map(images, *a, **k)
    )
    second.compute_relevance_targets()  # B's relevance is computed on A's edited views
    computed = (torch.cat(seen) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.equal(computed, edited)

    _render_masks(second, monkeypatch, {3: _rectangle(slice(0, 8), slice(0, 8))})
    second.edit_view(3)  # outside its mask a view is its starting image, not the photo
    outside = ~_rectangle(slice(0, 8), slice(0, 8))[..., 0]
    assert torch.equal(datamanager.image_batch["image"][3][outside], edited[3][outside])


def test_a_chain_is_self_contained_resumes_as_the_same_link_and_any_earlier_run_is_an_undo(
    toy_scene, tiny_checkpoint, monkeypatch, tmp_path
):
    _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a")
    second = _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "b", SECOND, tmp_path / "a", (3, 4))
    starts, views = second.datamanager.original_pixels.clone(), second.datamanager.image_batch["image"].clone()
    shutil.rmtree(tmp_path / "a")  # the run it built on may go

    resumed = _pipeline(toy_scene, tiny_checkpoint, text=SECOND)
    resumed.bind_run(tmp_path / "b2", resume_from=tmp_path / "b")  # a cut-short run, continued
    assert torch.equal(resumed.datamanager.original_pixels, starts)
    assert torch.equal(resumed.datamanager.image_batch["image"], views)
    assert [link.instruction for link in resumed.chain] == [TEXT, SECOND] and resumed.edits_done == 2
    record = json.loads((tmp_path / "b2" / "edits" / "run.json").read_text())
    assert [link["instruction"] for link in record["chain"]] == [TEXT, SECOND]

    third = _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "c", THIRD, tmp_path / "b2", (5,))
    assert [link.instruction for link in third.chain] == [TEXT, SECOND, THIRD]
    assert torch.equal(third.datamanager.original_pixels[:5], views[:5])

    # undo: a new instruction from the first link's run leaves out what came after it
    undo = _pipeline(toy_scene, tiny_checkpoint, text=THIRD)
    undo.bind_run(tmp_path / "d", resume_from=tmp_path / "b2")
    assert torch.equal(undo.datamanager.original_pixels, views)


def test_a_new_instruction_in_the_viewer_restarts_from_the_runs_starting_images(
    toy_scene, tiny_checkpoint, monkeypatch, tmp_path
):
    _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a")
    second = _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "b", SECOND, tmp_path / "a", (3,))
    starts = second.datamanager.original_pixels.clone()
    second.viewer_instruction.value = "make the"  # typing applies nothing ...
    assert second.text == SECOND and not second.targets_stale
    second.viewer_instruction.value = THIRD
    second.apply_viewer_instruction()  # ... the button does
    assert second.text == THIRD and second.targets_stale
    assert torch.equal(second.datamanager.image_batch["image"], starts)
    assert EditStore(tmp_path / "b").view_indices() == []
    assert [link.instruction for link in EditStore(tmp_path / "b").record().chain] == [TEXT, THIRD]


def test_starting_from_a_nerfacto_run_edits_the_photos(toy_scene, tiny_checkpoint, tmp_path):
    (tmp_path / "nerfacto" / "nerfstudio_models").mkdir(parents=True)
    pipeline = _pipeline(toy_scene, tiny_checkpoint)
    photos = pipeline.datamanager.original_pixels.clone()
    pipeline.bind_run(tmp_path / "a", resume_from=tmp_path / "nerfacto")
    assert torch.equal(pipeline.datamanager.original_pixels, photos) and len(pipeline.chain) == 1


def test_a_parent_on_other_data_is_refused(toy_scene, tiny_checkpoint, monkeypatch, tmp_path):
    _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a")
    record = json.loads((tmp_path / "a" / "edits" / "run.json").read_text())
    record["data"] = str(tmp_path / "elsewhere")
    (tmp_path / "a" / "edits" / "run.json").write_text(json.dumps(record))
    second = _pipeline(toy_scene, tiny_checkpoint, text=SECOND)
    with pytest.raises(RelevanceEditError, match="elsewhere"):
        second.bind_run(tmp_path / "b", resume_from=tmp_path / "a")
    assert not (tmp_path / "b").exists()


def test_a_parent_cut_short_before_any_edit_is_refused(toy_scene, tiny_checkpoint, monkeypatch, tmp_path):
    _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a", views=())
    second = _pipeline(toy_scene, tiny_checkpoint, text=SECOND)
    with pytest.raises(RelevanceEditError, match="before it edited any view"):
        second.bind_run(tmp_path / "b", resume_from=tmp_path / "a")
    assert not (tmp_path / "b").exists()


def test_an_edit_run_of_an_older_version_is_refused(toy_scene, tiny_checkpoint, tmp_path):
    views = tmp_path / "old" / "edits" / "views"
    views.mkdir(parents=True)
    save_file({"image": torch.zeros(32, 32, 3)}, views / "00000.safetensors", metadata={"instruction": TEXT})
    pipeline = _pipeline(toy_scene, tiny_checkpoint, text=SECOND)
    with pytest.raises(RelevanceEditError, match="older relevance-edit"):
        pipeline.bind_run(tmp_path / "b", resume_from=tmp_path / "old")


def test_the_edit_store_holds_at_most_4_bytes_a_training_pixel(toy_scene, tiny_checkpoint, monkeypatch, tmp_path):
    """8-bit views (lossless PNG) and 8-bit relevance targets: what the buffers hold, no float copies."""
    views = tuple(range(8))
    pipeline = _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a", views=views)
    pixels = pipeline.datamanager.num_views * 32 * 32
    stored = sum(path.stat().st_size for path in (tmp_path / "a" / "edits").rglob("*") if path.is_file())
    assert stored <= 4 * pixels, stored / pixels


@pytest.mark.parametrize("keep", [True, False], ids=["keep-earlier-edits", "edit-anywhere"])
def test_a_later_edit_leaves_what_earlier_edits_changed_unless_told_otherwise(
    toy_scene, tiny_checkpoint, monkeypatch, tmp_path, keep
):
    first = _edited_run(toy_scene, tiny_checkpoint, monkeypatch, tmp_path / "a", views=(0,))
    difference = (first.datamanager.image_batch["image"][0].int() - first.datamanager.original_pixels[0].int()).abs()
    changed = difference.amax(dim=-1) > EARLIER_EDIT_LEVELS  # visibly: a few levels of regenerated floor do not count
    assert changed.any() and ((difference.amax(dim=-1) > 0) & ~changed).any()

    second = _pipeline(toy_scene, tiny_checkpoint, text=SECOND, keep_earlier_edits=keep)
    second.bind_run(tmp_path / "b", resume_from=tmp_path / "a")
    second.compute_relevance_targets()
    everywhere = torch.ones(32, 32, 1, dtype=torch.bool)
    everywhere[0, 0] = False  # differs from any rendered mask (_render_masks' check)
    _render_masks(second, monkeypatch, {0: everywhere})
    before = second.datamanager.image_batch["image"][0].clone()
    mask = second.edit_view(0)[..., 0]
    after = second.datamanager.image_batch["image"][0]
    assert torch.equal(mask, everywhere[..., 0] & ~changed) if keep else torch.equal(mask, everywhere[..., 0])
    assert torch.equal(after[changed], before[changed]) == keep  # the first edit's pixels, bit for bit, when kept
