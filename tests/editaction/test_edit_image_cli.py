"""scripts/edit_image.py and editaction.edit_image behind it: the happy path end to end, one-line errors."""

import dataclasses
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tyro

from editaction import Editor
from editaction.edit_image import EditImageArgs, main
from tests.conftest import REPO
from toyworld import TOY_SETTINGS


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), rng.integers(0, 256, (36, 44, 4), dtype=np.uint8))  # odd size, with alpha
    return path


def run_cli(*argv):
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "edit_image.py"), *map(str, argv)],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},  # this checkout's packages
        timeout=300,
    )


def test_happy_path_writes_edit_relevance_and_mask(photo, tiny_checkpoint, tmp_path):
    before = photo.read_bytes()
    out = tmp_path / "out"
    done = run_cli(
        "--image",
        photo,
        "--text",
        "make it blue",
        "--model",
        tiny_checkpoint,
        "--out",
        out,
        "--steps",
        "4",
        "--threshold",
        "0.5",
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    edited = cv2.imread(str(out / "photo_edited.png"), cv2.IMREAD_UNCHANGED)
    original = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(out / "photo_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    relevance = cv2.imread(str(out / "photo_relevance.png"))
    assert edited.shape == original.shape and relevance.shape == (36, 44, 3)
    assert 0 < mask.mean() < 1
    assert np.array_equal(edited[~mask], original[~mask])  # alpha too
    assert np.array_equal(edited[..., 3], original[..., 3])
    assert photo.read_bytes() == before


def run_main(capsys, *argv):
    """``main`` on the arguments as the script parses them (every caller passes ``--model``)."""
    code = main(tyro.cli(EditImageArgs, args=list(map(str, argv))))
    return code, capsys.readouterr().err


def test_no_relevance_edits_everywhere(capsys, photo, tiny_checkpoint, tmp_path):
    code, err = run_main(
        capsys,
        "--image",
        photo,
        "--text",
        "make it blue",
        "--model",
        tiny_checkpoint,
        "--out",
        tmp_path / "o",
        "--steps",
        "3",
        "--no-relevance",
    )
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "o" / "photo_mask.png")).min() == 255
    assert not (tmp_path / "o" / "photo_relevance.png").exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--image", "{tmp}/missing.png", "--text", "x"], "image not found"),
        (["--image", "{tmp}/corrupt.png", "--text", "x"], "cannot read image"),
        (["--image", "{photo}", "--text", "  "], "--text is empty"),
        (["--image", "{photo}", "--text", "x", "--model", "{tmp}"], "not a diffusers checkpoint"),
        (["--image", "{photo}", "--text", "x", "--threshold", "1.5"], "threshold must be in"),
        (["--image", "{photo}", "--text", "x", "--text-guidance", "-2"], "text guidance must be in"),
        (["--image", "{photo}", "--text", "x", "--image-guidance", "1000"], "image guidance must be in"),
        (["--image", "{photo}", "--text", "x", "--iqr-factor", "-1"], "iqr_factor must be non-negative"),
        (["--image", "{photo}", "--text", "x", "--resolution", "-1"], "edit resolution must be"),
    ],
)
def test_bad_input_is_one_line_error(capsys, photo, tiny_checkpoint, tmp_path, argv, message):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG broken")
    argv = [a.format(tmp=tmp_path, photo=photo) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_checkpoint)]
    code, err = run_main(capsys, *argv, "--out", tmp_path / "out", "--steps", "2")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_large_image_is_edited_at_the_resolution_and_written_at_its_own_size(
    capsys, tiny_checkpoint, tmp_path, vae_input_sizes
):
    path = tmp_path / "large.png"
    cv2.imwrite(str(path), np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    argv = ["--image", path, "--text", "make it blue", "--model", tiny_checkpoint, "--steps", "2"]
    code, err = run_main(capsys, *argv, "--out", tmp_path / "o", "--resolution", "64")
    assert code == 0, err
    assert vae_input_sizes and all(max(size) == 64 for size in vae_input_sizes)  # 64x43, padded to 64x48
    original = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    edited = cv2.imread(str(tmp_path / "o" / "large_edited.png"), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(tmp_path / "o" / "large_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert edited.shape == original.shape and mask.shape == (200, 300)
    assert cv2.imread(str(tmp_path / "o" / "large_relevance.png")).shape == (200, 300, 3)
    assert 0 < mask.mean() < 1
    assert np.array_equal(edited[~mask], original[~mask])


def test_refuses_to_overwrite_outputs(capsys, photo, tiny_checkpoint, tmp_path):
    common = ["--image", photo, "--text", "make it red", "--model", tiny_checkpoint, "--steps", "2"]
    assert run_main(capsys, *common, "--out", tmp_path / "o")[0] == 0
    stamp = (tmp_path / "o" / "photo_edited.png").read_bytes()
    code, err = run_main(capsys, *common, "--out", tmp_path / "o", "--seed", "5")
    assert code == 2 and "--overwrite" in err
    assert (tmp_path / "o" / "photo_edited.png").read_bytes() == stamp
    assert run_main(capsys, *common, "--out", tmp_path / "o", "--seed", "5", "--overwrite")[0] == 0
    assert (tmp_path / "o" / "photo_edited.png").read_bytes() != stamp


def test_unset_flags_take_the_editors_recommended_settings_and_given_ones_win(
    capsys, photo, tiny_checkpoint, tmp_path, monkeypatch
):
    seen = {}
    edit, relevance_map = Editor.edit, Editor.relevance_map

    def record_edit(self, *args, config=None, **kwargs):
        seen["edit"] = config
        return edit(self, *args, config=dataclasses.replace(config, steps=2), **kwargs)

    def record_map(self, *args, config=None, **kwargs):
        seen["relevance"] = config
        return relevance_map(self, *args, config=config, **kwargs)

    monkeypatch.setattr(Editor, "edit", record_edit)
    monkeypatch.setattr(Editor, "relevance_map", record_map)
    common = ["--image", photo, "--text", "make it blue", "--model", tiny_checkpoint]
    assert run_main(capsys, *common, "--out", tmp_path / "a")[0] == 0
    assert seen == {"edit": TOY_SETTINGS.image.edit, "relevance": TOY_SETTINGS.image.relevance}
    argv = [*common, "--out", tmp_path / "b", "--text-guidance", "4", "--iqr-factor", "3", "--steps", "5"]
    assert run_main(capsys, *argv)[0] == 0
    assert seen["edit"] == dataclasses.replace(TOY_SETTINGS.image.edit, text_guidance=4.0, steps=5)
    assert seen["relevance"] == dataclasses.replace(TOY_SETTINGS.image.relevance, iqr_factor=3.0)
