"""The capture-like world: photos only on the user path, textures that never repeat, per-photo camera effects."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from toyworld.capture import (
    EXIF_FOCAL_35MM,
    EXIF_IFD,
    CaptureSpec,
    ValueNoise,
    camera_effects,
    held_out_indices,
    photo_name,
    read_truth,
    write_capture,
)


def test_every_third_photo_is_held_out_from_the_first():
    assert held_out_indices(CaptureSpec(photos=12, holdout_every=3)) == [0, 3, 6, 9]


def test_value_noise_does_not_repeat_along_the_ground():
    noise = ValueNoise(seed=0, base_frequency=3.0, octaves=4)
    u = np.linspace(-6, 6, 6000)
    line = noise(u, np.full_like(u, 0.3))
    for shift in (100, 333, 500, 1000, 2000):  # 0.2 to 4 world units: whole numbers of every octave's cells
        correlation = np.corrcoef(line[:-shift], line[shift:])[0, 1]
        assert abs(correlation) < 0.5, shift


def test_value_noise_is_fixed_to_the_world():
    a, b = ValueNoise(seed=3, base_frequency=1.0, octaves=2), ValueNoise(seed=3, base_frequency=1.0, octaves=2)
    points = np.array([0.1, 2.5, -4.0])
    assert np.array_equal(a(points, points), b(points, points))


def test_each_photo_gets_its_own_exposure_and_white_balance():
    grey = np.full((32, 32, 3), 0.5)
    spec = CaptureSpec(noise_sigma=0.0)
    rng = np.random.default_rng(0)
    first, second = camera_effects(grey, rng, spec), camera_effects(grey, rng, spec)
    assert not np.array_equal(first.mean(axis=(0, 1)), second.mean(axis=(0, 1)))
    ratios = first.mean(axis=(0, 1)) / second.mean(axis=(0, 1))
    assert np.ptp(ratios) > 0.005  # channels scaled differently: white balance, not only exposure


def test_sensor_noise_has_the_configured_spread():
    grey = np.full((64, 64, 3), 0.5)
    spec = CaptureSpec(noise_sigma=0.02, exposure_stops=0.0, white_balance=0.0)
    photo = camera_effects(grey, np.random.default_rng(1), spec) / 255
    assert photo.std() == pytest.approx(0.02, rel=0.15)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    spec = CaptureSpec(photos=4, holdout_every=2, width=64, height=48, supersample=1, props=2)
    return write_capture(tmp_path_factory.mktemp("capture") / "capture", spec), spec


def test_the_user_path_holds_photos_only(capture):
    out, spec = capture
    assert sorted(p.name for p in (out / "photos").iterdir()) == [photo_name(i) for i in range(4)]
    assert sorted(p.name for p in out.iterdir()) == ["photos", "truth"]
    with Image.open(out / "photos" / photo_name(0)) as photo:
        assert photo.format == "JPEG" and photo.size == (64, 48)
        assert photo.getexif().get_ifd(EXIF_IFD)[EXIF_FOCAL_35MM] == round(35 * spec.focal / 64)


def test_the_truth_holds_held_out_names_poses_and_masks(capture):
    out, _ = capture
    truth = read_truth(out)
    assert truth.held_out == [photo_name(0), photo_name(2)]
    assert sorted(truth.poses) == [photo_name(i) for i in range(4)]
    assert all(pose.shape == (4, 4) for pose in truth.poses.values())
    described = json.loads((out / "truth" / "capture.json").read_text())
    for obj in described["objects"]:
        assert truth.mask(obj["name"], photo_name(1)).shape == (48, 64)


def test_a_capture_folder_is_not_overwritten(capture):
    out, spec = capture
    with pytest.raises(FileExistsError):
        write_capture(out, spec)


@pytest.mark.parametrize("bad", [["--photos", "3"], ["--width", "32", "--height", "24"]], ids=["photos", "size"])
def test_make_capture_refuses_a_bad_spec_with_one_error_line(tmp_path, bad):
    command = [sys.executable, str(REPO / "scripts" / "make_capture.py"), "--out", str(tmp_path / "capture"), *bad]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and not (tmp_path / "capture").exists()
