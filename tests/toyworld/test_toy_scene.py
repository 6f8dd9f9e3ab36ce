"""The toy 3D scene: masks match the renders, cameras look at the objects, seeds reproduce."""

import json

import cv2
import numpy as np
import pytest

from toyworld import COLOURS, SceneSpec, write_scene
from toyworld.scene import TARGET, camera_poses, focal_length, render_view

SMALL = SceneSpec(views=6, size=32, supersample=2)


def test_masks_cover_exactly_the_pixels_of_each_object():
    spec = SceneSpec(views=6, size=48)
    for c2w in camera_poses(spec)[:3]:
        rgb, masks = render_view(spec, c2w)
        direction = rgb.astype(np.float64) / np.maximum(np.linalg.norm(rgb, axis=-1, keepdims=True), 1e-9)
        for obj in spec.objects:
            albedo = np.array(COLOURS[obj.colour], dtype=np.float64)
            similarity = direction @ (albedo / np.linalg.norm(albedo))  # shading scales, never tints
            inside, outside = masks[obj.name], ~np.any(np.stack(list(masks.values())), axis=0)
            if inside.sum() >= 10:
                assert np.mean(similarity[inside] > 0.95) > 0.75, obj.name  # edge pixels are mixtures
            assert np.mean(similarity[outside] > 0.98) < 0.02, obj.name


def test_cameras_are_rigid_and_look_at_the_objects():
    spec = SceneSpec()
    for c2w in camera_poses(spec):
        rotation = c2w[:3, :3]
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        in_camera = rotation.T @ (TARGET - c2w[:3, 3])  # OpenGL: the target lies along -z at the image centre
        assert in_camera[2] < 0
        u = focal_length(spec) * in_camera[0] / -in_camera[2]
        assert abs(u) < 1e-6 * spec.size + 1e-6


def test_scene_folder_is_nerfstudio_data_with_held_out_views(tmp_path):
    transforms = json.loads(write_scene(tmp_path / "scene", SMALL).read_text())
    assert len(transforms["frames"]) == 6
    held_out = set(transforms["test_filenames"])
    assert held_out == set(transforms["val_filenames"]) == {"images/frame_00000.png", "images/frame_00003.png"}
    assert held_out.isdisjoint(transforms["train_filenames"])
    for frame in transforms["frames"]:
        image = cv2.imread(str(tmp_path / "scene" / frame["file_path"]))
        assert image.shape == (32, 32, 3)
        for obj in SMALL.objects:
            mask = cv2.imread(str(tmp_path / "scene" / "masks" / obj.name / frame["file_path"].split("/")[-1]), 0)
            assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 255}


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path):
    first, second, other = (tmp_path / name for name in ("a", "b", "c"))
    write_scene(first, SMALL)
    write_scene(second, SMALL)
    write_scene(other, SceneSpec(views=6, size=32, supersample=2, seed=1))
    image = "images/frame_00001.png"
    assert (first / image).read_bytes() == (second / image).read_bytes()
    assert (first / "transforms.json").read_bytes() == (second / "transforms.json").read_bytes()
    assert (first / image).read_bytes() != (other / image).read_bytes()


def test_refuses_to_overwrite_a_scene(tmp_path):
    write_scene(tmp_path, SMALL)
    with pytest.raises(FileExistsError):
        write_scene(tmp_path, SMALL)
