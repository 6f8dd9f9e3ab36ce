"""Starting from a checkpoint: one that does not fit the model (preset, data set, camera optimiser) is refused."""

from __future__ import annotations

import copy
from pathlib import Path
from unittest import mock

import pytest
import torch
import torchvision
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.method_configs import method_configs
from nerfstudio.data.scene_box import SceneBox
from torch import Tensor

from relevance_nerf.checkpoints import METRIC_PREFIXES, model_mismatch
from relevance_nerf.method_configs import nerfacto_offline, relevance_edit
from relevance_nerf.trainer import RelevanceEditTrainer
from tests.relevance_nerf.conftest import TEXT
from toyworld import SceneSpec, write_scene
from toyworld.method_configs import nerfacto_tiny, relevance_edit_tiny

HEAD = ("_model.relevance_head.",)
ALEXNET = torchvision.models.alexnet
BOX = SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))


def _model_state(model_config, views: int = 12, **changes) -> dict[str, Tensor]:
    """The model part of a pipeline state dict, for a model trained on ``views`` images."""
    config = copy.deepcopy(model_config)
    for key, value in changes.items():
        setattr(config, key, value)
    model = config.setup(scene_box=BOX, num_train_data=views, metadata={})
    return {f"_model.{key}": value for key, value in model.state_dict().items()}


@pytest.fixture(scope="module")
def edit_model() -> dict[str, Tensor]:
    return _model_state(relevance_edit_tiny.config.pipeline.model)


def test_a_nerfacto_tiny_checkpoint_of_the_same_data_fits(edit_model):
    assert model_mismatch(edit_model, _model_state(nerfacto_tiny.config.pipeline.model), optional=HEAD) is None


def test_nerfstudios_nerfacto_and_nerfacto_offline_checkpoints_fit_relevance_edit():
    full = _model_state(relevance_edit.config.pipeline.model)
    assert model_mismatch(full, _model_state(nerfacto_offline.config.pipeline.model), optional=HEAD) is None
    with mock.patch("torchvision.models.alexnet", lambda *args, **kwargs: ALEXNET(weights=None)):  # no download
        nerfacto = _model_state(method_configs["nerfacto"].pipeline.model)
    assert any(key.startswith(METRIC_PREFIXES) for key in nerfacto)  # its LPIPS network is in its checkpoints
    assert model_mismatch(full, nerfacto, optional=HEAD + METRIC_PREFIXES) is None


@pytest.mark.parametrize(
    ("checkpoint", "problem"),
    [
        (
            lambda: _model_state(nerfacto_tiny.config.pipeline.model, views=6),
            "differing shapes: 1 (first: _model.field.embedding_appearance.embedding.weight)",
        ),
        (lambda: _model_state(nerfacto_offline.config.pipeline.model), "differing shapes: "),
        (
            lambda: _model_state(
                nerfacto_tiny.config.pipeline.model, camera_optimizer=CameraOptimizerConfig(mode="SO3xR3")
            ),
            "not in this model: 1 (first: _model.camera_optimizer.pose_adjustment)",
        ),
    ],
    ids=["other-data-set", "other-preset", "camera-optimiser"],
)
def test_checkpoints_of_other_models_are_named_as_such(edit_model, checkpoint, problem):
    assert problem in model_mismatch(edit_model, checkpoint(), optional=HEAD)


def test_only_the_optional_tensors_may_be_missing(edit_model):
    plain = _model_state(nerfacto_tiny.config.pipeline.model)
    assert model_mismatch(edit_model, plain) == "missing: 4 (first: _model.relevance_head.mlp.0.weight)"
    del plain["_model.field.mlp_head.layers.0.bias"]
    assert model_mismatch(edit_model, plain, optional=HEAD) == "missing: 1 (first: _model.field.mlp_head.layers.0.bias)"


def _save_nerfacto_tiny(scene: Path, folder: Path, **model_changes) -> Path:
    """A nerfacto-tiny checkpoint of ``scene`` in nerfstudio's format (untrained: only its layout matters)."""
    config = copy.deepcopy(nerfacto_tiny.config.pipeline)
    config.datamanager.data = scene
    for key, value in model_changes.items():
        setattr(config.model, key, value)
    pipeline = config.setup(device="cpu", test_mode="val")
    folder.mkdir(parents=True)
    state = {"step": 9, "pipeline": pipeline.state_dict(), "optimizers": {}, "schedulers": {}, "scalers": {}}
    torch.save(state, folder / "step-000000009.ckpt")
    return folder


def _trainer(toy_scene: Path, tiny_checkpoint: Path, load_dir: Path, output_dir: Path) -> RelevanceEditTrainer:
    """The trainer of ``ns-train relevance-edit-tiny --load-dir ...``, set up as ns-train does."""
    config = copy.deepcopy(relevance_edit_tiny.config)
    config.text, config.pipeline.editor, config.load_dir = TEXT, str(tiny_checkpoint), load_dir
    config.pipeline.datamanager.data, config.output_dir = toy_scene, output_dir
    config.vis, config.machine.device_type = "tensorboard", "cpu"
    config.set_timestamp()
    config.set_experiment_name()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def test_ns_train_refuses_a_checkpoint_of_another_data_set(toy_scene, tiny_checkpoint, tmp_path):
    other_scene = write_scene(tmp_path / "other", SceneSpec(views=6, size=16, supersample=1)).parent
    load_dir = _save_nerfacto_tiny(other_scene, tmp_path / "other-run" / "nerfstudio_models")
    with pytest.raises(SystemExit, match=f"error: --load-dir {load_dir} does not match this model .*differing shapes"):
        _trainer(toy_scene, tiny_checkpoint, load_dir, tmp_path / "runs")


def test_ns_train_refuses_a_checkpoint_with_tensors_this_model_lacks(toy_scene, tiny_checkpoint, tmp_path):
    """nerfstudio's strict=False would drop them silently (here: a camera optimiser the preset turns off)."""
    load_dir = _save_nerfacto_tiny(
        toy_scene, tmp_path / "base" / "nerfstudio_models", camera_optimizer=CameraOptimizerConfig(mode="SO3xR3")
    )
    with pytest.raises(SystemExit, match="does not match this model .*not in this model: 1"):
        _trainer(toy_scene, tiny_checkpoint, load_dir, tmp_path / "runs")


def test_ns_train_starts_from_a_nerfacto_tiny_checkpoint_of_the_same_data(toy_scene, tiny_checkpoint, tmp_path):
    load_dir = _save_nerfacto_tiny(toy_scene, tmp_path / "base" / "nerfstudio_models")
    trainer = _trainer(toy_scene, tiny_checkpoint, load_dir, tmp_path / "runs")
    saved = torch.load(load_dir / "step-000000009.ckpt", weights_only=True)["pipeline"]
    assert trainer._start_step == 10
    assert torch.equal(
        trainer.pipeline.state_dict()["_model.field.mlp_head.layers.0.weight"],
        saved["_model.field.mlp_head.layers.0.weight"],
    )
