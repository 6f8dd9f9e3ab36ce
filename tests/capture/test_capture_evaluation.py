"""Judging a capture: ns-process-data's names mapped back, the held-out split, poses after a similarity alignment."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from toyworld.capture_evaluation import (
    pose_errors,
    processed_names,
    rotation_angle_degrees,
    umeyama,
    write_split,
)


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = math.radians(degrees)
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_processed_names_follow_the_sorted_originals_from_one():
    assert processed_names(["IMG_1010.jpg", "IMG_1002.jpg", "IMG_1003.jpg"]) == {
        "IMG_1002.jpg": "frame_00001.jpg",
        "IMG_1003.jpg": "frame_00002.jpg",
        "IMG_1010.jpg": "frame_00003.jpg",
    }


def test_umeyama_recovers_a_known_similarity():
    points = np.random.default_rng(0).normal(size=(10, 3))
    rotation, scale, translation = _rotation([1, 2, 3], 40), 2.5, np.array([0.3, -1.0, 4.0])
    found_scale, found_rotation, found_translation = umeyama(points, scale * points @ rotation.T + translation)
    assert found_scale == pytest.approx(2.5)
    np.testing.assert_allclose(found_rotation, rotation, atol=1e-9)
    np.testing.assert_allclose(found_translation, translation, atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    points = np.random.default_rng(1).normal(size=(6, 3))
    _, rotation, _ = umeyama(points, points * np.array([1, 1, -1]))
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def _poses(count: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    poses = {}
    for index in range(count):
        pose = np.eye(4)
        pose[:3, :3] = _rotation(rng.normal(size=3), rng.uniform(0, 180))
        pose[:3, 3] = rng.normal(size=3) * 2
        poses[f"IMG_{index}.jpg"] = pose
    return poses


def test_poses_in_another_similarity_frame_have_no_error():
    truth = _poses(8)
    rotation, scale, translation = _rotation([0, 1, 1], 75), 0.3, np.array([5.0, 1.0, -2.0])
    estimated = {}
    for name, pose in truth.items():
        moved = np.eye(4)
        moved[:3, :3] = rotation @ pose[:3, :3]
        moved[:3, 3] = scale * rotation @ pose[:3, 3] + translation
        estimated[name] = moved
    errors = pose_errors(estimated, truth, scene_radius=2.0)
    assert errors.registered == 8
    assert max(errors.rotation_degrees.values()) == pytest.approx(0.0, abs=1e-5)
    assert max(errors.position_percent.values()) == pytest.approx(0.0, abs=1e-6)


def test_a_turned_camera_reads_its_angle_and_a_missing_one_is_not_registered():
    truth = _poses(6)
    estimated = {name: pose.copy() for name, pose in list(truth.items())[:5]}
    estimated["IMG_0.jpg"][:3, :3] = estimated["IMG_0.jpg"][:3, :3] @ _rotation([0, 0, 1], 2.0)
    errors = pose_errors(estimated, truth, scene_radius=1.0)
    assert (errors.registered, errors.photos) == (5, 6)
    assert errors.rotation_degrees["IMG_0.jpg"] == pytest.approx(2.0, abs=1e-6)
    assert rotation_angle_degrees(np.eye(3), _rotation([1, 0, 0], 30)) == pytest.approx(30.0)


def test_the_split_lists_registered_frames_only(tmp_path):
    frames = [{"file_path": f"images/frame_0000{i}.jpg", "transform_matrix": np.eye(4).tolist()} for i in (1, 2, 4)]
    (tmp_path / "transforms.json").write_text(json.dumps({"frames": frames}))
    mapping = processed_names(["a.jpg", "b.jpg", "c.jpg", "d.jpg"])  # c.jpg -> frame_00003: not registered
    split = write_split(tmp_path, mapping, held_out=["a.jpg", "c.jpg"])
    assert split == {
        "train_filenames": ["images/frame_00002.jpg", "images/frame_00004.jpg"],
        "val_filenames": ["images/frame_00001.jpg"],
        "test_filenames": ["images/frame_00001.jpg"],
    }
    assert json.loads((tmp_path / "transforms.json").read_text())["test_filenames"] == ["images/frame_00001.jpg"]


def test_a_split_without_held_out_frames_is_refused(tmp_path):
    frames = [{"file_path": "images/frame_00002.jpg", "transform_matrix": np.eye(4).tolist()}]
    (tmp_path / "transforms.json").write_text(json.dumps({"frames": frames}))
    with pytest.raises(ValueError, match="held-out"):
        write_split(tmp_path, processed_names(["a.jpg", "b.jpg"]), held_out=["a.jpg"])
