"""The edit model is nerfacto plus a relevance head: same outputs and state-dict keys as nerfacto, head detached."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.fields.nerfacto_field import NerfactoField

from relevance_nerf.method_configs import nerfacto_optimizers
from relevance_nerf.model import (
    LEGACY_HEAD_NAME,
    RELEVANCE,
    RELEVANCE_HEAD,
    OfflineNerfactoModel,
    OfflineNerfactoModelConfig,
    RelevanceNerfactoModel,
    RelevanceNerfactoModelConfig,
)
from relevance_nerf.trainer import RelevanceEditOptimizers
from toyworld.method_configs import TINY_MODEL

VIEWS = 4
# nerfacto-tiny, with what the toy preset switches off switched on: a camera optimiser (applied to the rays in
# training) and gradient scaling.
SETTINGS = dict(TINY_MODEL, camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"), use_gradient_scaling=True)
NERFACTO_ONLY = ("relevance_head.",)


def _build(config_class: type) -> OfflineNerfactoModel:
    config = config_class(**SETTINGS)
    return config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=VIEWS)


@pytest.fixture(scope="module")
def models() -> tuple[RelevanceNerfactoModel, OfflineNerfactoModel]:
    """The edit model (a pose correction, random geometry and head) and nerfacto strictly loaded with its weights."""
    torch.manual_seed(0)
    model = _build(RelevanceNerfactoModelConfig)
    with torch.no_grad():
        adjustment = model.camera_optimizer.pose_adjustment
        adjustment.copy_(torch.linspace(-0.1, 0.1, adjustment.numel()).reshape(adjustment.shape))
        for parameter in [*model.field.mlp_base.parameters(), *model.relevance_head.parameters()]:
            parameter.normal_(0.0, 1.0)  # features, and so relevance, that vary along and across rays
    nerfacto = _build(OfflineNerfactoModelConfig)
    shared = {key: value for key, value in model.state_dict().items() if not key.startswith(NERFACTO_ONLY)}
    nerfacto.load_state_dict(shared, strict=True)
    return model, nerfacto


def _rays(count: int = 64) -> RayBundle:
    generator = torch.Generator().manual_seed(1)
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    return RayBundle(
        origins=-2.0 * directions + 0.2 * torch.randn(count, 3, generator=generator),
        directions=directions,
        pixel_area=torch.full((count, 1), 1e-4),
        camera_indices=torch.randint(0, VIEWS, (count, 1), generator=generator),
    )


def _outputs(model: OfflineNerfactoModel, training: bool) -> dict:
    model.train(training)
    torch.manual_seed(2)  # the proposal sampler jitters its samples in training
    return model(_rays())  # a fresh bundle: training applies the pose correction to it in place


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_outputs_are_nerfactos_bit_for_bit(models, training):
    model, nerfacto = models
    outputs, expected = _outputs(model, training), _outputs(nerfacto, training)
    assert set(outputs) == set(expected) | {RELEVANCE}
    for key in ("rgb", "depth", "expected_depth", "accumulation", "prop_depth_0", "prop_depth_1"):
        assert torch.equal(outputs[key], expected[key]), key
    if training:
        assert all(map(torch.equal, outputs["weights_list"], expected["weights_list"]))
    assert outputs["accumulation"].min() > 0.1  # the weights are not trivially zero


def _by_hand(model: RelevanceNerfactoModel, outputs: dict, training: bool) -> torch.Tensor:
    """The head on the final samples' geometry features, summed with nerfacto's final weights."""
    if training:
        ray_samples, weights = outputs["ray_samples_list"][-1], outputs["weights_list"][-1]
    else:  # nerfacto returns no weights in eval; its eval sampling is deterministic
        bundle = model.collider(_rays())
        ray_samples, _, _ = model.proposal_sampler(bundle, density_fns=model.density_fns)
        weights = ray_samples.get_weights(NerfactoField.get_density(model.field, ray_samples)[0])
    _, features = NerfactoField.get_density(model.field, ray_samples)
    return torch.sum(weights * model.relevance_head.mlp(features), dim=-2)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_relevance_is_the_head_on_the_features_rendered_with_the_weights(models, training):
    model, _ = models
    outputs = _outputs(model, training)
    with torch.no_grad():
        expected = _by_hand(model, outputs, training)
    assert outputs[RELEVANCE].shape == (64, 1)
    assert torch.equal(outputs[RELEVANCE], expected)
    assert expected.std() > 1e-3  # rays differ: a wrong pairing of weights and features would show
    assert model.field.kept is None  # the batch's graph is not held past the call


def test_the_relevance_loss_trains_the_head_only(models):
    model, _ = models
    model.zero_grad(set_to_none=True)
    _outputs(model, training=True)[RELEVANCE].sum().backward()
    others = [name for name, p in model.named_parameters() if p.grad is not None and not name.startswith("relevance")]
    assert others == []  # neither geometry, colour, proposals nor poses
    assert all(p.grad.abs().sum() > 0 for p in model.relevance_head.parameters())
    model.zero_grad(set_to_none=True)


def test_nerfacto_checkpoints_load_into_the_edit_model(models):
    """The field keeps nerfacto's module paths, so ``--load-dir`` of a nerfacto run loads every nerfacto weight."""
    _, nerfacto = models
    edit = _build(RelevanceNerfactoModelConfig)
    state = {key: value + 1 if value.is_floating_point() else value for key, value in nerfacto.state_dict().items()}
    missing, unexpected = edit.load_state_dict(state, strict=False)
    assert unexpected == [] and missing and all(key.startswith(NERFACTO_ONLY) for key in missing)
    assert all(torch.equal(edit.state_dict()[key], value) for key, value in state.items())


def _legacy(names: dict) -> dict:
    """``names`` as edit runs saved them before the head's rename."""
    return {key.replace(RELEVANCE_HEAD, LEGACY_HEAD_NAME, 1): value for key, value in names.items()}


@pytest.mark.parametrize("prefix", ["", "_model."], ids=["model", "nested"])
def test_checkpoints_of_earlier_edit_runs_load_their_head(models, prefix):
    model, _ = models
    state = _legacy(model.state_dict())
    assert len(state) == len(model.state_dict()) and any(key.startswith(f"{LEGACY_HEAD_NAME}.") for key in state)
    resumed = _build(RelevanceNerfactoModelConfig)
    root = torch.nn.ModuleDict({prefix[:-1]: resumed}) if prefix else resumed
    root.load_state_dict({f"{prefix}{key}": value for key, value in state.items()}, strict=True)
    assert all(torch.equal(resumed.state_dict()[key], value) for key, value in model.state_dict().items())


def test_optimiser_state_and_config_of_earlier_edit_runs_load():
    """An earlier run's config.yml (``--load-config``) and its checkpoint's optimiser and scheduler states."""
    model = _build(RelevanceNerfactoModelConfig)
    earlier = RelevanceEditOptimizers(_legacy(nerfacto_optimizers(100, with_relevance=True)), model.get_param_groups())
    _outputs(model, training=True)[RELEVANCE].sum().backward()
    earlier.optimizer_step_all()
    earlier.scheduler_step_all(0)
    saved = {
        part: _legacy({k: v.state_dict() for k, v in getattr(earlier, part).items()})
        for part in ("optimizers", "schedulers")
    }

    resumed = RelevanceEditOptimizers(nerfacto_optimizers(100, with_relevance=True), model.get_param_groups())
    resumed.load_optimizers(saved["optimizers"])
    resumed.load_schedulers(saved["schedulers"])
    head = resumed.optimizers[RELEVANCE_HEAD].state_dict()["state"]
    assert head and all(
        torch.equal(head[i]["exp_avg"], state["exp_avg"])
        for i, state in saved["optimizers"][LEGACY_HEAD_NAME]["state"].items()
    )
    assert resumed.schedulers[RELEVANCE_HEAD].state_dict() == saved["schedulers"][LEGACY_HEAD_NAME]
