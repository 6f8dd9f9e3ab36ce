import os

import cv2
import numpy as np
import pytest

from editaction import ImageReadError, read_image, to_array, write_image
from editaction.atomic import atomic_directory, write_text_atomic


def write_raw(path, array):
    """Write with OpenCV directly (BGR order) to make test inputs."""
    assert cv2.imwrite(str(path), array)
    return path


@pytest.mark.parametrize(
    "shape,dtype",
    [
        ((20, 30, 3), np.uint8),
        ((20, 30, 4), np.uint8),
        ((20, 30), np.uint8),
        ((20, 30, 3), np.uint16),
        ((20, 30), np.uint16),
        ((20, 30, 4), np.uint16),
    ],
)
def test_round_trip_is_bit_identical(tmp_path, shape, dtype):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    image = read_image(write_raw(tmp_path / "in.png", raw))
    assert image.rgb.shape == (3, 20, 30) and image.rgb.min() >= 0 and image.rgb.max() <= 1
    out = tmp_path / "out.png"
    write_image(out, to_array(image.rgb, like=image))
    again = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert again.dtype == dtype
    if len(shape) == 2:  # gray comes back as RGB with equal channels
        assert np.array_equal(again[..., 0], raw) and np.array_equal(again[..., 2], raw)
    else:
        assert np.array_equal(again, raw)


def test_rgb_order_is_rgb(tmp_path):
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR
    image = read_image(write_raw(tmp_path / "red.png", bgr))
    assert image.rgb[0].min() == 1 and image.rgb[1:].max() == 0


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(bad)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_atomic_writes_get_ordinary_permissions_and_leave_no_temporary_file(tmp_path):
    umask = os.umask(0o022)
    try:
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3), dtype=np.uint8))
        write_text_atomic(tmp_path / "b.json", "{}")
    finally:
        os.umask(umask)
    assert {path.name for path in tmp_path.iterdir()} == {"a.png", "b.json"}
    for name in ("a.png", "b.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_atomic_directory_replaces_the_folder_whole_or_not_at_all(tmp_path):
    import torch
    from safetensors.torch import save_file

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    umask = os.umask(0o022)
    try:
        with atomic_directory(target) as staging:
            save_file({"w": torch.zeros(2)}, staging / "weights.safetensors")  # safetensors writes 0600
        with pytest.raises(RuntimeError), atomic_directory(target) as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    finally:
        os.umask(umask)
    assert {path.name for path in tmp_path.iterdir()} == {"model"}  # no staging folder left behind
    assert [path.name for path in target.iterdir()] == ["weights.safetensors"]
    assert target.stat().st_mode & 0o777 == 0o755
    assert (target / "weights.safetensors").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_the_output_is_written_upright(tmp_path, orientation):
    from PIL import ExifTags, Image, ImageOps

    stored = np.zeros((24, 40, 3), np.uint8)  # four flat quadrants: every flip and turn tells apart
    stored[:12, :20], stored[:12, 20:], stored[12:, :20] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    Image.fromarray(stored).save(path, quality=100, exif=exif)

    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    image = read_image(path)
    assert image.rgb.shape == (3, *upright.shape[:2])
    read = np.rint(image.rgb.permute(1, 2, 0).numpy() * 255)
    assert np.abs(read - upright).max() <= 8  # JPEG edges; a wrong turn is off by 255 on a quadrant

    write_image(tmp_path / "out.png", to_array(image.rgb, like=image))
    written = cv2.imread(str(tmp_path / "out.png"))[..., ::-1]
    assert written.shape == upright.shape and np.abs(written.astype(int) - upright).max() <= 8
