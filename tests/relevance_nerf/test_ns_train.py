"""relevance-edit through the real ns-train entry point: both stages, checkpoints, resume, errors."""

from __future__ import annotations

import hashlib

import pytest
import torch

from relevance_nerf.edit_store import EditStore
from tests.relevance_nerf.conftest import TEXT, edit_args, ns_train, run_dir

pytestmark = pytest.mark.slow


def _digests(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.png"))}


def test_nerfacto_then_relevance_edit_write_checkpoints_and_edits(toy_scene, nerfacto_run, edit_run):
    assert list((nerfacto_run / "nerfstudio_models").glob("step-*.ckpt"))
    checkpoints = sorted((edit_run / "nerfstudio_models").glob("step-*.ckpt"))
    assert checkpoints and checkpoints[-1].name == "step-000000031.ckpt"  # 20 nerfacto steps + 12 edit steps
    edits = EditStore(edit_run)
    targets = edits.relevance_targets()
    assert targets.shape == (8, 32, 32, 1) and targets.dtype == torch.uint8  # 8 training views, 8 bits
    assert len(edits.view_indices()) == 6  # 2 views at steps 20, 24, 28: the preset edits during its warm-up too
    assert [link.instruction for link in edits.record().chain] == [TEXT]
    assert (edit_run / "config.yml").read_text().count(TEXT) >= 1


def test_original_images_on_disk_are_never_modified(toy_scene, tmp_path_factory, tiny_checkpoint, runs, nerfacto_run):
    before = _digests(toy_scene / "images")
    result = ns_train(*edit_args(toy_scene, runs, tiny_checkpoint, nerfacto_run, "untouched"), cwd=runs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _digests(toy_scene / "images") == before
    assert not list(toy_scene.rglob("edits"))


def test_resuming_an_edit_run_restores_its_edited_views(toy_scene, runs, edit_run, tiny_checkpoint):
    args = edit_args(toy_scene, runs, tiny_checkpoint, edit_run, "resumed")
    args[args.index("--max-num-iterations") + 1] = "1"  # restore, train one step, save
    result = ns_train(*args, cwd=runs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restored 6 edited views" in " ".join(result.stdout.split())
    resumed = EditStore(run_dir(runs, "relevance-edit-tiny", "resumed"))
    for index in EditStore(edit_run).view_indices():
        assert torch.equal(resumed.view(index), EditStore(edit_run).view(index))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--text": ""}, "the instruction is empty"),
        ({"--load-dir": "/nonexistent/nerfstudio_models"}, "holds no nerfstudio checkpoint"),
        ({"--pipeline.editor": "/nonexistent-editor"}, "/nonexistent-editor"),
    ],
)
def test_user_mistakes_end_with_one_error_line(toy_scene, runs, nerfacto_run, tiny_checkpoint, change, message):
    args = edit_args(toy_scene, runs, tiny_checkpoint, nerfacto_run, f"bad{len(message)}")
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    result = ns_train(*args, cwd=runs)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last
    assert "Traceback" not in result.stderr
