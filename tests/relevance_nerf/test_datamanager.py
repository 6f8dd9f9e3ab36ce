"""The training buffers: 8 bits per channel, float only for the sampled rays, edits and targets rounded to 1/255."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import tyro
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion
from nerfstudio.scripts import train as ns_train_script

from relevance_nerf.datamanager import RelevanceEditDataManager
from relevance_nerf.model import RELEVANCE
from tests.relevance_nerf.conftest import TEXT
from toyworld.method_configs import relevance_edit_tiny


@pytest.fixture
def datamanager(toy_scene) -> RelevanceEditDataManager:
    config = copy.deepcopy(relevance_edit_tiny.config.pipeline.datamanager)
    config.data = toy_scene
    return config.setup(device="cpu", test_mode="val")


def _nearest_level(values: torch.Tensor) -> torch.Tensor:
    return torch.round(values.clamp(0.0, 1.0) * 255.0) / 255.0


def test_buffers_hold_8_bits_per_channel_and_no_float_cache(datamanager):
    datamanager.set_relevance(slice(None), torch.rand(datamanager.num_views, 32, 32, 1))
    buffers = [datamanager.original_pixels, datamanager.image_batch["image"], datamanager.image_batch[RELEVANCE]]
    assert all(buffer.dtype == torch.uint8 for buffer in buffers)
    held = sum(tensor.nbytes for tensor in [datamanager.original_pixels, *datamanager.image_batch.values()])
    assert held / (datamanager.num_views * 32 * 32) <= 8
    assert not hasattr(datamanager, "train_image_dataloader")  # nerfstudio's float32 cache is never built


def test_sampled_rays_are_float_pixels_of_the_images_on_disk(datamanager):
    targets = torch.rand(datamanager.num_views, 32, 32, 1)
    datamanager.set_relevance(slice(None), targets)
    on_disk = torch.stack([datamanager.train_dataset[i]["image"] for i in range(datamanager.num_views)])
    _, batch = datamanager.next_train(0)
    view, y, x = batch["indices"].T
    assert batch["image"].dtype == batch[RELEVANCE].dtype == torch.float32
    assert torch.equal(batch["image"], on_disk[view, y, x])  # 8-bit photos: bit for bit what float32 gave
    assert torch.equal(batch[RELEVANCE], _nearest_level(targets)[view, y, x])


def test_set_image_stores_the_nearest_8_bit_value_and_keeps_the_original(datamanager):
    original = datamanager.original_image(2)
    edit = torch.rand(32, 32, 3) * 1.4 - 0.2  # also outside [0, 1]: clamped
    datamanager.set_image(2, edit)
    assert torch.equal(datamanager.image(2), _nearest_level(edit))
    assert (datamanager.image(2) - edit.clamp(0.0, 1.0)).abs().max() <= 0.5 / 255 + 1e-6
    datamanager.set_image(2, datamanager.image(2))  # a stored view round-trips bit for bit (restored edits)
    assert torch.equal(datamanager.image(2), _nearest_level(edit))
    assert torch.equal(datamanager.original_image(2), original)
    assert torch.equal(datamanager.image(1), datamanager.original_image(1))


def test_relevance_targets_are_stored_to_the_nearest_1_255(datamanager):
    targets = torch.rand(datamanager.num_views, 32, 32, 1)
    datamanager.set_relevance(slice(None), targets)
    assert torch.equal(datamanager.relevance(slice(None)), _nearest_level(targets))
    view = torch.rand(32, 32, 1)
    datamanager.set_relevance(3, view)
    assert torch.equal(datamanager.relevance(3), _nearest_level(view))
    assert torch.equal(datamanager.relevance(2), _nearest_level(targets[2]))


def test_sampling_from_a_subset_of_views_is_one_error_line(toy_scene, tiny_checkpoint, tmp_path, monkeypatch):
    """nerfstudio would re-cache a random subset, so an edit could land in another view's slot."""
    config = tyro.cli(
        AnnotatedBaseConfigUnion,
        args=[
            "relevance-edit-tiny", "--text", TEXT, "--pipeline.editor", str(tiny_checkpoint),
            "--pipeline.datamanager.train-num-images-to-sample-from", "10", "--max-num-iterations", "1",
            "--vis", "tensorboard", "--output-dir", str(tmp_path), "--data", str(toy_scene),
        ],
    )  # fmt: skip
    monkeypatch.setattr(ns_train_script, "launch", lambda **kwargs: kwargs["main_func"](0, 1, kwargs["config"]))
    with pytest.raises(SystemExit, match="^error: relevance-edit trains on all views"):
        ns_train_script.main(config)


def _scene_with_images(toy_scene: Path, out: Path, convert) -> tuple[Path, list[np.ndarray]]:
    """A copy of the toy scene whose photos are ``convert(rgb)`` written as PNG; returns it and the written arrays."""
    scene = out / "scene"
    shutil.copytree(toy_scene, scene)
    written = []
    for path in sorted((scene / "images").glob("*.png")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        array = convert(rgb)
        image = array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
        cv2.imwrite(str(path), image)
        written.append(array)
    return scene, written


def _setup(scene: Path) -> RelevanceEditDataManager:
    config = copy.deepcopy(relevance_edit_tiny.config.pipeline.datamanager)
    config.data = scene
    return config.setup(device="cpu", test_mode="val")


def _train_names(datamanager: RelevanceEditDataManager) -> list[str]:
    return [path.name for path in datamanager.train_dataset.image_filenames]


def test_rgba_photos_are_composited_over_black_as_nerfacto_blends_its_ground_truth(toy_scene, tmp_path):
    def with_alpha(rgb):
        alpha = np.full(rgb.shape[:2], 255, np.uint8)
        alpha[:, : rgb.shape[1] // 2] = 51  # the left half at 20% opacity
        return np.dstack([rgb, alpha])

    scene, written = _scene_with_images(toy_scene, tmp_path, with_alpha)
    datamanager = _setup(scene)
    rgba = {f"frame_{i:05d}.png": torch.from_numpy(a).float() / 255 for i, a in enumerate(written)}
    expected = torch.stack([rgba[name][..., :3] * rgba[name][..., 3:] for name in _train_names(datamanager)])
    assert datamanager.original_pixels.shape[-1] == 3
    assert torch.equal(datamanager.original_image(slice(None)), _nearest_level(expected))


def test_16_bit_grey_photos_keep_their_high_byte(toy_scene, tmp_path):
    def grey_16(rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16)
        return (grey << 8) | (np.arange(grey.size, dtype=np.uint16).reshape(grey.shape) % 256)  # any low byte

    scene, written = _scene_with_images(toy_scene, tmp_path, grey_16)
    datamanager = _setup(scene)
    high = {f"frame_{i:05d}.png": torch.from_numpy((a >> 8).astype(np.uint8)) for i, a in enumerate(written)}
    expected = torch.stack([high[name][..., None].expand(-1, -1, 3) for name in _train_names(datamanager)])
    assert torch.equal(datamanager.original_pixels, expected)
