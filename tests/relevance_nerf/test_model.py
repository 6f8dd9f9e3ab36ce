"""The edit model is nerfacto plus a relevance head: same outputs and state-dict keys as nerfacto, head detached."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.fields.nerfacto_field import NerfactoField

from relevance_nerf.model import (
    RELEVANCE,
    OfflineNerfactoModel,
    OfflineNerfactoModelConfig,
    RelevanceNerfactoModel,
    RelevanceNerfactoModelConfig,
)
from toyworld.method_configs import TINY_MODEL

VIEWS = 4
# nerfacto-tiny, with what the toy preset switches off switched on: a camera optimiser (applied to the rays in
# training) and gradient scaling.
SETTINGS = dict(TINY_MODEL, camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"), use_gradient_scaling=True)
NERFACTO_ONLY = ("relevance_field.",)


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
        for parameter in [*model.field.mlp_base.parameters(), *model.relevance_field.parameters()]:
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
    return torch.sum(weights * model.relevance_field.mlp(features), dim=-2)


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
    assert all(p.grad.abs().sum() > 0 for p in model.relevance_field.parameters())
    model.zero_grad(set_to_none=True)


def test_nerfacto_checkpoints_load_into_the_edit_model(models):
    """The field keeps nerfacto's module paths, so ``--load-dir`` of a nerfacto run loads every nerfacto weight."""
    _, nerfacto = models
    edit = _build(RelevanceNerfactoModelConfig)
    state = {key: value + 1 if value.is_floating_point() else value for key, value in nerfacto.state_dict().items()}
    missing, unexpected = edit.load_state_dict(state, strict=False)
    assert unexpected == [] and missing and all(key.startswith(NERFACTO_ONLY) for key in missing)
    assert all(torch.equal(edit.state_dict()[key], value) for key, value in state.items())
