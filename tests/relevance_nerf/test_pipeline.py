"""The relevance-edit pipeline in process: masked edits, restore, test mode without editor, outputs, CLI text."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import tyro
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion
from nerfstudio.scripts import train as ns_train_script
from nerfstudio.utils.eval_utils import eval_setup

import relevance_nerf.pipeline
from editaction import Editor
from editaction.editor import crop_box
from editaction.settings import EditOptions, RelevanceOptions
from relevance_nerf.edit_store import EditStore
from relevance_nerf.model import EDIT_MASK, RELEVANCE, grid_pixel_centres
from relevance_nerf.pipeline import EditPlan, RelevanceEditPipeline
from relevance_nerf.relevance_field import edit_mask
from tests.relevance_nerf.conftest import TEXT
from toyworld import TOY_SETTINGS
from toyworld.method_configs import relevance_edit_tiny

THRESHOLD = 0.5


def _pipeline(toy_scene, tiny_checkpoint, **changes) -> RelevanceEditPipeline:
    config = copy.deepcopy(relevance_edit_tiny.config.pipeline)
    config.datamanager.data = toy_scene
    config.text, config.editor = TEXT, str(tiny_checkpoint)
    config.edit = EditOptions(steps=4, text_guidance=7.5, image_guidance=1.5, threshold=THRESHOLD)
    # the toy editor's scene settings: a test checkpoint carries none of its own
    config.relevance = RelevanceOptions(**dataclasses.asdict(TOY_SETTINGS.scene.relevance))
    config.strength_range = TOY_SETTINGS.scene.strength_range
    for key, value in changes.items():
        setattr(config, key, value)
    return config.setup(device="cpu", test_mode="val")


@pytest.fixture(scope="module")
def pipeline(toy_scene, tiny_checkpoint):
    pipeline = _pipeline(toy_scene, tiny_checkpoint)
    pipeline.compute_relevance_targets()
    return pipeline


def _rectangle(rows: slice, columns: slice, size: int = 32) -> torch.Tensor:
    mask = torch.zeros(size, size, 1, dtype=torch.bool)
    mask[rows, columns] = True
    return mask


def _render_masks(pipeline: RelevanceEditPipeline, monkeypatch, masks: dict[int, torch.Tensor]) -> None:
    """Views render the given edit masks (an untrained relevance head renders a near-constant map, whose
    normalised mask is noise), each different from the model's own."""
    render_for_edit = pipeline.render_for_edit

    def with_mask(index, colours):
        mask, rgb = render_for_edit(index, colours)
        assert not torch.equal(mask, masks[index])
        return masks[index], rgb

    monkeypatch.setattr(pipeline, "render_for_edit", with_mask)


def _record_edit_inputs(pipeline: RelevanceEditPipeline, monkeypatch) -> list[torch.Tensor]:
    """The images of each editor call, recorded as the pipeline's edits make them."""
    inputs = []
    edit = pipeline.editor.edit

    def recording(images, *args, **kwargs):
        inputs.append(images)
        return edit(images, *args, **kwargs)

    monkeypatch.setattr(pipeline.editor, "edit", recording)
    return inputs


def _record_render_shapes(pipeline: RelevanceEditPipeline, monkeypatch) -> list[tuple[int, ...]]:
    """The ray-bundle shape of each render the model makes (a whole view or a window of it)."""
    shapes = []
    render = pipeline.model.get_outputs_for_camera_ray_bundle

    def recording(bundle):
        shapes.append(tuple(bundle.shape))
        return render(bundle)

    monkeypatch.setattr(pipeline.model, "get_outputs_for_camera_ray_bundle", recording)
    return shapes


def test_edit_changes_the_training_image_only_inside_the_rendered_mask(pipeline, monkeypatch):
    """The model owns the edit mask (the viewer shows it): edits take it from the render, never recompute it."""
    masks = {index: _rectangle(slice(4 * index, 12 + 4 * index), slice(8, 24 + index)) for index in range(3)}
    _render_masks(pipeline, monkeypatch, masks)
    datamanager = pipeline.datamanager
    for index, expected in masks.items():
        before = datamanager.image(index).clone()
        original = datamanager.original_image(index).clone()
        mask = pipeline.edit_view(index)
        after = datamanager.image(index)
        assert torch.equal(mask, expected)
        changed = (after != before).any(dim=-1)
        assert not changed[~mask[..., 0]].any()  # bit for bit outside
        assert changed[mask[..., 0]].any()  # the random editor changes inside
        assert torch.equal(datamanager.original_image(index), original)


def test_a_view_outside_its_latest_mask_is_the_original_photo(toy_scene, tiny_checkpoint, monkeypatch):
    """An edit under a looser mask (a warm-up's 2D map) does not outlive the view's next, tighter edit."""
    pipeline = _pipeline(toy_scene, tiny_checkpoint)
    pipeline.compute_relevance_targets()
    loose, tight = _rectangle(slice(4, 28), slice(4, 28)), _rectangle(slice(10, 20), slice(10, 20))
    masks = {0: loose}
    _render_masks(pipeline, monkeypatch, masks)
    datamanager = pipeline.datamanager
    original = datamanager.original_image(0).clone()
    pipeline.edit_view(0)
    assert (datamanager.image(0) != original).any(dim=-1)[loose[..., 0] & ~tight[..., 0]].any()
    masks[0] = tight
    pipeline.edit_view(0)
    after = datamanager.image(0)
    assert torch.equal(after[~tight[..., 0]], original[~tight[..., 0]])  # the loose edit is gone, bit for bit
    assert (after != original).any(dim=-1)[tight[..., 0]].any()


def test_a_view_edited_again_is_conditioned_on_its_photo_without_encoding_it_again(
    toy_scene, tiny_checkpoint, monkeypatch, vae_input_sizes
):
    pipeline = _pipeline(toy_scene, tiny_checkpoint)
    _render_masks(pipeline, monkeypatch, {0: _rectangle(slice(4, 28), slice(4, 28))})
    encodes = []
    for _ in range(2):
        vae_input_sizes.clear()
        pipeline.edit_view(0)
        encodes.append(len(vae_input_sizes))
    assert encodes == [2, 1]  # its photo and the training image the edit starts from, then that image alone


def test_views_edited_together_take_one_editor_call_and_each_changes_only_inside_its_own_mask(
    toy_scene, tiny_checkpoint, monkeypatch
):
    pipeline = _pipeline(toy_scene, tiny_checkpoint, views_per_edit=3, editor_batch_size=2, edit_during_warmup=False)
    pipeline._before_step(0)  # the relevance targets; edits start after the warm-up
    masks = {index: _rectangle(slice(2 * index, 10 + 3 * index), slice(4, 20 + index)) for index in range(24)}
    _render_masks(pipeline, monkeypatch, masks)
    inputs = _record_edit_inputs(pipeline, monkeypatch)
    datamanager = pipeline.datamanager
    due = pipeline.plan_edit_step().views
    assert due == pipeline.view_order[:3] and pipeline.edits_done == 0
    before = {index: datamanager.image(index).clone() for index in due}
    pipeline._before_step(pipeline.edits_start)
    # views_per_edit views, editor_batch_size per editor call
    assert [len(images) for images in inputs] == [2, 1] and pipeline.edits_done == 3
    for index in due:
        changed = (datamanager.image(index) != before[index]).any(dim=-1)
        assert changed[masks[index][..., 0]].any() and not changed[~masks[index][..., 0]].any()


def test_the_tiny_presets_warm_up_edits_two_views_in_one_call_each_under_its_own_2d_map(
    toy_scene, tiny_checkpoint, monkeypatch
):
    pipeline = _pipeline(toy_scene, tiny_checkpoint)  # the preset's schedule: 2 views per step, edits during warm-up
    assert pipeline.config.views_per_edit == 2 and pipeline.config.edit_during_warmup
    inputs = _record_edit_inputs(pipeline, monkeypatch)
    datamanager, order = pipeline.datamanager, pipeline.view_order
    before = datamanager.image(slice(None)).clone()
    pipeline._before_step(0)  # the relevance targets, then the first edit step, in the warm-up
    assert pipeline.warming_up and [len(images) for images in inputs] == [2] and pipeline.edits_done == 2
    changed = (datamanager.image(slice(None)) != before).any(dim=-1)
    for index in order[:2]:
        own = edit_mask(datamanager.relevance(index), THRESHOLD)[..., 0]
        assert changed[index][own].any() and not changed[index][~own].any()
    assert not changed[order[2:]].any()


def test_a_view_whose_strong_edit_stopped_changing_settles_and_later_turns_pass_it_over(
    toy_scene, tiny_checkpoint, monkeypatch
):
    pipeline = _pipeline(toy_scene, tiny_checkpoint, settle_tolerance=0.02, views_per_edit=1)
    pipeline.compute_relevance_targets()
    masks = {index: _rectangle(slice(4, 20), slice(8, 24)) for index in range(24)}
    _render_masks(pipeline, monkeypatch, masks)
    order, datamanager = pipeline.view_order, pipeline.datamanager
    edit = pipeline.editor.edit
    # views 0 and 2 in the order: edits that leave the training image as it is; view 1: one that changes it by 0.1
    results = {index: datamanager.image(index) for index in order[:3]}
    results[order[1]] = (results[order[1]] + 0.1).clamp(0, 1)

    def edit_to(images, *args, **kwargs):
        result = edit(images, *args, **kwargs)
        result.images[0] = results[pipeline.next_view()].permute(2, 0, 1)
        return result

    monkeypatch.setattr(pipeline.editor, "edit", edit_to)
    pipeline.strength_range = (0.6, 0.6)
    pipeline.edit_view(order[0])
    pipeline.edit_view(order[1])
    pipeline.strength_range = (0.3, 0.3)  # a weak edit changes little by design: it settles nothing
    pipeline.edit_view(order[2])
    assert pipeline.settled == {order[0]}
    pipeline.edits_done = 0  # the order comes round again: the settled first view's turn is passed over
    assert pipeline.plan_edit_step() == EditPlan([order[1]], passed=1) and pipeline.edits_done == 0  # a query

    pipeline.set_edit(text_guidance=2.0)  # new edit settings: every view is edited again
    assert not pipeline.settled
    pipeline.settled = set(order)
    assert pipeline.plan_edit_step().views == []  # all settled: no more edits
    pipeline.set_text("make the blue ball red")
    assert not pipeline.settled


def test_unset_edit_options_take_the_editors_scene_settings_and_set_ones_win(toy_scene, tiny_checkpoint):
    config = copy.deepcopy(relevance_edit_tiny.config.pipeline)
    config.datamanager.data, config.text, config.editor = toy_scene, TEXT, str(tiny_checkpoint)
    config.edit = EditOptions(image_guidance=2.5, threshold=0.4)
    pipeline = config.setup(device="cpu", test_mode="test")  # no editor needed to resolve the settings
    scene = TOY_SETTINGS.scene
    assert pipeline.edit_config == dataclasses.replace(scene.edit, image_guidance=2.5, threshold=0.4)
    assert pipeline.relevance_config == scene.relevance and pipeline.strength_range == scene.strength_range
    assert pipeline.model.edit_mask_threshold == 0.4  # what the viewer's mask shows is what gets edited
    pipeline.set_edit(threshold=0.7)
    assert pipeline.model.edit_mask_threshold == 0.7 and pipeline.edit_config.threshold == 0.7


def test_settle_tolerance_editor_batch_size_and_mask_downscale_are_checked():
    config = relevance_edit_tiny.config.pipeline
    with pytest.raises(ValueError, match="settle_tolerance must be non-negative"):
        dataclasses.replace(config, settle_tolerance=-0.1)
    for name in ("editor_batch_size", "views_per_edit", "mask_downscale"):
        with pytest.raises(ValueError, match=f"{name} must be at least 1"):
            dataclasses.replace(config, **{name: 0})


def test_threshold_zero_edits_the_whole_view_as_instruct_nerf2nerf(toy_scene, tiny_checkpoint):
    pipeline = _pipeline(toy_scene, tiny_checkpoint)
    pipeline.set_edit(threshold=0.0)
    pipeline.compute_relevance_targets()
    assert bool(pipeline.edit_view(0).all())


def test_threshold_zero_computes_no_relevance_until_the_threshold_is_raised(
    toy_scene, tiny_checkpoint, monkeypatch, tmp_path
):
    """Instruct-NeRF2NeRF's setting edits from the first step without 2D relevance (its saved views have none, and
    a resumed run restores them); a threshold raised later (the viewer's slider) computes the targets before the
    next step and starts the field's warm-up."""
    pipeline = _pipeline(toy_scene, tiny_checkpoint, views_per_edit=1)
    pipeline.set_edit(threshold=0.0)
    pipeline.bind_run(tmp_path)
    calls = []
    relevance_map = pipeline.editor.relevance_map
    monkeypatch.setattr(pipeline.editor, "relevance_map", lambda *a, **k: calls.append(1) or relevance_map(*a, **k))
    pipeline._before_step(0)
    assert pipeline.edits_done == 1 and not calls and not pipeline.datamanager.has_relevance()
    store = EditStore(tmp_path)
    ((index,),) = [store.view_indices()]
    assert store.relevance_targets() is None
    resumed = _pipeline(toy_scene, tiny_checkpoint)
    resumed.bind_run(tmp_path / "resumed", resume_from=tmp_path)
    assert torch.equal(resumed.datamanager.image_pixels(index), store.view(index))
    assert not resumed.datamanager.has_relevance()
    pipeline.set_edit(threshold=THRESHOLD)
    pipeline._before_step(1)
    assert calls and pipeline.datamanager.has_relevance() and pipeline.warming_up


def test_the_editor_works_at_the_edit_resolution_and_results_come_back_at_the_view_size(
    toy_scene, tiny_checkpoint, vae_input_sizes, monkeypatch
):
    pipeline = _pipeline(toy_scene, tiny_checkpoint, edit_resolution=16)
    # edges on the 2-pixel grid of the 16 px working size: shrunk, thresholded and upsampled, it comes back as is
    expected = _rectangle(slice(4, 28), slice(2, 18))
    _render_masks(pipeline, monkeypatch, {0: expected})
    sizes = vae_input_sizes
    pipeline.compute_relevance_targets()
    assert sizes and set(sizes) == {(16, 16)}  # the 32 px views, at long side 16
    assert pipeline.datamanager.image_batch[RELEVANCE].shape == (pipeline.datamanager.num_views, 32, 32, 1)

    sizes.clear()
    before = pipeline.datamanager.image(0).clone()
    mask = pipeline.edit_view(0)[..., 0]
    assert sizes and set(sizes) == {(16, 16)}  # the edit, at the working size
    assert torch.equal(mask, expected[..., 0])
    after = pipeline.datamanager.image(0)
    assert torch.equal(after[~mask], before[~mask]) and not torch.equal(after[mask], before[mask])


def test_an_empty_edit_mask_skips_the_editor_but_takes_the_turn(toy_scene, tiny_checkpoint, monkeypatch, tmp_path):
    pipeline = _pipeline(toy_scene, tiny_checkpoint)
    last = pipeline.model.relevance_head.mlp[-2]
    last.weight.data.zero_()
    last.bias.data.fill_(-1e4)  # relevance 0 everywhere: no pixel reaches the threshold
    datamanager = pipeline.datamanager
    height, width = datamanager.original_image(0).shape[:2]
    datamanager.set_relevance(slice(None), torch.zeros(datamanager.num_views, height, width, 1))

    def refuse(*args, **kwargs):
        raise AssertionError("the editor must not run for an empty mask")

    monkeypatch.setattr(pipeline.editor, "edit", refuse)
    monkeypatch.setattr(pipeline.editor, "relevance_map", refuse)
    pipeline.bind_run(tmp_path / "run")
    images = datamanager.image_batch["image"].clone()
    first, second = pipeline.next_view(), pipeline.view_order[1]
    assert not pipeline.edit_view(first).any()
    assert torch.equal(datamanager.image_batch["image"], images)
    assert (pipeline.edits_done, pipeline.edits_skipped, pipeline.next_view()) == (1, 1, second)

    resumed = _pipeline(toy_scene, tiny_checkpoint)
    resumed.bind_run(tmp_path / "resumed", resume_from=tmp_path / "run")
    assert resumed.next_view() == second  # the skipped turn counts in a resumed run too


def test_view_i_of_the_buffers_is_the_image_of_camera_i(pipeline):
    """Edits render camera i and write buffer i: both must be dataset view i (nerfstudio's loader shuffles)."""
    datamanager = pipeline.datamanager
    for index in range(datamanager.num_views):
        assert torch.equal(datamanager.original_image(index), datamanager.train_dataset[index]["image"])
    _, batch = datamanager.next_train(0)
    position, y, x = batch["indices"].T  # a ray's camera index, row, column
    assert torch.equal(batch["image"], datamanager.image(slice(None))[position, y, x])


def test_relevance_targets_enter_the_ray_batches_in_0_1(pipeline):
    _, batch = pipeline.datamanager.next_train(0)
    assert batch[RELEVANCE].shape == (batch["image"].shape[0], 1)
    assert 0.0 <= batch[RELEVANCE].min() and batch[RELEVANCE].max() <= 1.0


def test_the_relevance_loss_is_the_weighted_mse_of_rendered_and_2d_relevance(pipeline, monkeypatch):
    batches = []
    next_train = pipeline.datamanager.next_train

    def recording(step):
        batches.append(next_train(step))
        return batches[-1]

    monkeypatch.setattr(pipeline.datamanager, "next_train", recording)
    monkeypatch.setattr(pipeline.model.config, "relevance_loss_mult", 2.0)
    outputs, loss_dict, _ = pipeline.get_train_loss_dict(0)
    (_, batch), rendered = batches[0], outputs[RELEVANCE].detach()
    assert rendered.shape == batch[RELEVANCE].shape and not torch.allclose(rendered, batch[RELEVANCE], atol=1e-3)
    expected = 2.0 * (rendered - batch[RELEVANCE]).pow(2).mean()
    assert loss_dict["relevance_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_second_run_restores_edits_bit_for_bit(pipeline, toy_scene, tiny_checkpoint, tmp_path):
    pipeline.bind_run(tmp_path / "first")
    pipeline.edit_view(5)
    resumed = _pipeline(toy_scene, tiny_checkpoint)
    resumed.bind_run(tmp_path / "second", resume_from=tmp_path / "first")
    assert torch.equal(resumed.datamanager.image(5), pipeline.datamanager.image(5))
    assert torch.equal(resumed.datamanager.image_batch[RELEVANCE], pipeline.datamanager.image_batch[RELEVANCE])
    assert torch.equal(resumed.datamanager.image(4), resumed.datamanager.original_image(4))
    assert (tmp_path / "second" / "edits" / "views" / "00005.png").is_file()  # the new run holds them too
    assert resumed.edits_done == pipeline.edits_done and [link.instruction for link in resumed.chain] == [TEXT]


def test_rendered_relevance_is_one_channel_in_0_1_with_its_thresholded_mask(pipeline):
    outputs = pipeline.render_view(0)
    assert outputs[RELEVANCE].shape == (32, 32, 1) and outputs[EDIT_MASK].shape == (32, 32, 1)
    assert 0.0 <= outputs[RELEVANCE].min() and outputs[RELEVANCE].max() <= 1.0
    assert torch.equal(outputs[EDIT_MASK], edit_mask(outputs[RELEVANCE], THRESHOLD).float())  # edit_mask: unit-tested


@pytest.fixture(scope="module")
def corrected_pipeline(toy_scene, tiny_checkpoint) -> RelevanceEditPipeline:
    """The pipeline with nerfacto's camera optimiser on and a known, different pose correction of every view."""
    model = dataclasses.replace(
        relevance_edit_tiny.config.pipeline.model, camera_optimizer=CameraOptimizerConfig(mode="SO3xR3")
    )
    pipeline = _pipeline(toy_scene, tiny_checkpoint, model=model)
    adjustment = pipeline.model.camera_optimizer.pose_adjustment
    with torch.no_grad():  # translations up to 0.15, rotations up to 0.1 rad
        adjustment.copy_(torch.linspace(-1.0, 1.0, adjustment.numel()).reshape(adjustment.shape) * 0.15)
        adjustment[:, 3:] *= 2.0 / 3.0
    return pipeline


def _rendered_rays(pipeline: RelevanceEditPipeline, render: Callable[[], Any]) -> tuple[list, Any]:
    """The ray bundles the model renders during ``render()``, and what ``render()`` returns."""
    bundles = []
    get_outputs = pipeline.model.get_outputs

    def record(ray_bundle):
        bundles.append(copy.deepcopy(ray_bundle))
        return get_outputs(ray_bundle)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline.model, "get_outputs", record)
        return bundles, render()


def test_edits_render_the_rays_that_train_their_view(corrected_pipeline):
    """The edit overwrites view i's training image: it must be rendered from view i's corrected pose, index i."""
    datamanager, model = corrected_pipeline.datamanager, corrected_pipeline.model
    height, width = datamanager.original_image(0).shape[:2]
    rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    for index in (3, 6):
        pixels = torch.stack([torch.full_like(rows, index), rows, columns], dim=-1).reshape(-1, 3)
        training = datamanager.train_ray_generator(pixels)  # what a training batch of view i holds ...
        uncorrected = training.origins.clone()
        model.camera_optimizer.apply_to_raybundle(training)  # ... and what nerfacto's training forward makes of it
        assert (training.origins - uncorrected).norm(dim=-1).min() > 0.05  # the correction is not negligible

        rendered, _ = _rendered_rays(corrected_pipeline, lambda index=index: corrected_pipeline.render_view(index))
        origins = torch.cat([bundle.origins for bundle in rendered])
        directions = torch.cat([bundle.directions for bundle in rendered])
        assert torch.allclose(origins, training.origins, atol=1e-5)
        assert torch.allclose(directions, training.directions, atol=1e-5)
        assert all(bool((bundle.camera_indices == index).all()) for bundle in rendered)


def test_a_render_for_an_edit_at_the_views_size_is_the_full_render(corrected_pipeline):
    """Same rays (view i's pose correction and embedding), same colours, same mask."""
    for index in (3, 6):
        full = corrected_pipeline.render_view(index)
        mask, rgb = corrected_pipeline.render_for_edit(index, colours=True)
        assert torch.equal(mask, full[EDIT_MASK].bool()) and torch.equal(rgb, full["rgb"])


@pytest.mark.parametrize(
    ("colours", "edit_resolution", "mask_downscale", "grid"),
    [(True, 16, 1, (16, 16)), (True, 24, 4, (24, 24)), (False, 0, 2, (16, 16)), (False, 12, 2, (12, 12))],
    ids=["colours-at-working-size", "colours-ignore-mask-downscale", "mask-downscaled", "mask-at-working-size"],
)
def test_a_render_for_an_edit_takes_the_editors_working_size_or_a_coarser_grid_for_a_mask_alone(
    corrected_pipeline, monkeypatch, colours, edit_resolution, mask_downscale, grid
):
    config = corrected_pipeline.config
    monkeypatch.setattr(config, "edit_resolution", edit_resolution)
    monkeypatch.setattr(config, "mask_downscale", mask_downscale)
    bundles, (mask, rgb) = _rendered_rays(corrected_pipeline, lambda: corrected_pipeline.render_for_edit(3, colours))
    assert mask.shape == (32, 32, 1) and mask.dtype == torch.bool
    assert sum(bundle.shape[0] for bundle in bundles) == grid[0] * grid[1]  # one ray per grid pixel
    assert all(bool((bundle.camera_indices == 3).all()) for bundle in bundles)
    assert (rgb.shape == (*grid, 3)) if colours else rgb is None


@pytest.mark.parametrize(("height", "width", "grid"), [(32, 32, (16, 16)), (30, 45, (8, 11)), (9, 7, (3, 2))])
def test_grid_pixel_centres_are_where_bilinear_upsampling_puts_their_values(height, width, grid):
    """A linear image sampled at a grid's centres and upsampled is the image at the full grid's centres (away
    from the border, where bilinear upsampling clamps); the image's own grid gives its pixel centres."""
    coarse = grid_pixel_centres(height, width, grid)
    linear = lambda yx: 2.0 * yx[..., 0] - 3.0 * yx[..., 1]  # noqa: E731
    upsampled = torch.nn.functional.interpolate(
        linear(coarse)[None, None], size=(height, width), mode="bilinear", align_corners=False
    )[0, 0]
    rows, columns = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    centres = torch.stack([rows, columns], dim=-1)
    border = (math.ceil(height / grid[0]), math.ceil(width / grid[1]))
    inner = (slice(border[0], height - border[0]), slice(border[1], width - border[1]))
    assert torch.allclose(upsampled[inner], linear(centres)[inner], atol=1e-4)
    assert torch.equal(grid_pixel_centres(height, width, (height, width)), centres)


def test_edits_render_the_appearance_embedding_of_their_view(corrected_pipeline):
    weights = corrected_pipeline.model.field.embedding_appearance.embedding.weight
    saved = weights.detach().clone()
    before = corrected_pipeline.render_view(2)["rgb"]
    try:
        with torch.no_grad():
            weights[5] += 1.0
        assert torch.equal(corrected_pipeline.render_view(2)["rgb"], before)  # another view's embedding
        with torch.no_grad():
            weights[2] += 1.0
        assert (corrected_pipeline.render_view(2)["rgb"] - before).abs().max() > 1e-3
    finally:
        with torch.no_grad():
            weights.copy_(saved)


@pytest.mark.slow
def test_eval_setup_never_loads_the_editor(edit_run, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the editor must not be loaded outside training")

    monkeypatch.setattr(Editor, "from_pretrained", refuse)
    monkeypatch.chdir(edit_run.parents[2])
    for mode in ("test", "inference"):
        _, pipeline, checkpoint, step = eval_setup(edit_run / "config.yml", test_mode=mode)
        assert pipeline.editor is None and step == 31
        outputs = pipeline.model.get_outputs_for_camera(pipeline.datamanager.train_dataset.cameras[0:1])
        assert outputs[RELEVANCE].shape[-1] == 1
    state = torch.load(checkpoint, map_location="cpu")["pipeline"]
    assert not [key for key in state if "unet" in key or "vae" in key or "text_encoder" in key]


def _parse(*args: str):
    return tyro.cli(AnnotatedBaseConfigUnion, args=["relevance-edit-tiny", *args])


def test_text_flag_reaches_the_pipeline_and_prompt_is_refused(tmp_path, monkeypatch):
    assert _parse("--text", TEXT).pipeline.text == TEXT
    assert _parse("--pipeline.text", TEXT).pipeline.text == TEXT
    assert _parse("--text", TEXT).resolved_text() == TEXT

    monkeypatch.setattr(ns_train_script, "launch", lambda **kwargs: kwargs["main_func"](0, 1, kwargs["config"]))
    for args, message in [
        (["--prompt", TEXT], "--prompt is nerfstudio's text-to-3D prompt"),
        (["--text", "a", "--pipeline.text", "b"], "differ"),
        ([], "the instruction is empty"),
    ]:
        config = _parse(*args, "--output-dir", str(tmp_path), "--data", str(tmp_path))
        with pytest.raises(SystemExit, match=message):
            ns_train_script.main(config)


def test_edit_resolution_flag_reaches_the_pipeline_and_a_negative_one_is_refused(capsys):
    assert _parse("--text", TEXT).pipeline.edit_resolution == 512
    assert _parse("--text", TEXT, "--pipeline.edit-resolution", "0").pipeline.edit_resolution == 0
    with pytest.raises(SystemExit):
        _parse("--text", TEXT, "--pipeline.edit-resolution", "-1")
    assert "edit resolution must be" in capsys.readouterr().err
    with pytest.raises(ValueError, match="edit resolution must be"):
        dataclasses.replace(relevance_edit_tiny.config.pipeline, edit_resolution=-8)


@pytest.mark.parametrize("during_warmup", [False, True], ids=["wait", "edit-during-warm-up"])
def test_warm_up_edits_use_each_views_own_2d_map_and_later_edits_the_rendered_mask(
    toy_scene, tiny_checkpoint, monkeypatch, during_warmup
):
    pipeline = _pipeline(
        toy_scene, tiny_checkpoint, edit_during_warmup=during_warmup, relevance_warmup_steps=10, views_per_edit=1
    )
    rendered = {index: _rectangle(slice(4, 20), slice(8, 24)) for index in range(24)}
    _render_masks(pipeline, monkeypatch, rendered)
    order, datamanager = pipeline.view_order, pipeline.datamanager
    before = datamanager.image(order[0]).clone()
    pipeline._before_step(0)  # the relevance targets, then (only with edit_during_warmup) the first edit
    assert pipeline.edits_done == int(during_warmup)
    if during_warmup:
        own = edit_mask(datamanager.relevance(order[0]), THRESHOLD)
        assert own.any() and not torch.equal(own, rendered[order[0]])
        changed = (datamanager.image(order[0]) != before).any(dim=-1)
        assert changed.any() and not changed[~own[..., 0]].any()
    edited = order[int(during_warmup)]
    before = datamanager.image(edited).clone()
    pipeline._before_step(10)  # warmed up: the field's rendered mask
    assert pipeline.edits_done == 1 + int(during_warmup)
    changed = (datamanager.image(edited) != before).any(dim=-1)
    assert changed.any() and not changed[~rendered[edited][..., 0]].any()


@pytest.mark.parametrize("warming_up", [True, False], ids=["warm-up", "warmed-up"])
def test_an_edit_that_crops_renders_only_its_box_and_edits_as_a_whole_view_render_would(
    toy_scene, tiny_checkpoint, monkeypatch, warming_up
):
    pipeline = _pipeline(  # not from pure noise: that edits the training image and renders no colours (below)
        toy_scene, tiny_checkpoint, edit_during_warmup=True, relevance_warmup_steps=10, strength_range=(0.6, 0.6)
    )
    pipeline.set_edit(crop_margin=0.25)
    pipeline.compute_relevance_targets()
    pipeline.field_ready, pipeline.step = 10, (9 if warming_up else 10)
    index, datamanager = pipeline.view_order[0], pipeline.datamanager
    mask = _rectangle(slice(6, 14), slice(10, 20))
    if warming_up:
        datamanager.set_relevance(index, mask.float())  # the view's 2D map
        assert torch.equal(edit_mask(datamanager.relevance(index), THRESHOLD), mask)
    else:
        _render_masks(pipeline, monkeypatch, {index: mask})
    top, bottom, left, right = crop_box(mask.permute(2, 0, 1)[None], 0.25)
    rendered_shapes = _record_render_shapes(pipeline, monkeypatch)
    before, generator = datamanager.image(index).clone(), pipeline.generator.get_state()
    pipeline.edit_views([index])
    windowed = datamanager.image(index).clone()
    coarse_mask = [] if warming_up else [(16, 16)]  # after the warm-up: the mask, rendered at 1/2 first
    assert rendered_shapes == [*coarse_mask, (bottom - top, right - left)]
    assert (bottom - top) * (right - left) < mask.numel() / 2
    changed = (windowed != before).any(dim=-1)
    assert changed.any() and not changed[~mask[..., 0]].any()

    datamanager.set_image(index, before)  # the same edit from a whole-view render
    pipeline.generator.set_state(generator)
    monkeypatch.setattr(relevance_nerf.pipeline, "crop_box", lambda masks, margin: None)  # no box to render
    pipeline.edit_views([index])
    assert rendered_shapes[-1] == tuple(mask.shape[:2])
    assert torch.allclose(datamanager.image(index), windowed, atol=2 / 255)


def test_an_edit_from_a_render_renders_it_at_the_editors_working_size_and_writes_it_back_at_the_views(
    toy_scene, tiny_checkpoint, vae_input_sizes, monkeypatch
):
    pipeline = _pipeline(toy_scene, tiny_checkpoint, edit_resolution=16, strength_range=(0.6, 0.6))
    pipeline.compute_relevance_targets()
    pipeline.field_ready = pipeline.step = 0
    index, datamanager = pipeline.view_order[0], pipeline.datamanager
    expected = _rectangle(slice(4, 28), slice(2, 18))  # edges on the 16 px grid: back as they were
    _render_masks(pipeline, monkeypatch, {index: expected})
    rendered_shapes = _record_render_shapes(pipeline, monkeypatch)
    vae_input_sizes.clear()
    before = datamanager.image(index).clone()
    mask = pipeline.edit_views([index])[0][..., 0]
    assert rendered_shapes == [(16, 16)]  # one render: the mask and the colours the editor sees
    assert vae_input_sizes and set(vae_input_sizes) == {(16, 16)}
    assert torch.equal(mask, expected[..., 0])
    after = datamanager.image(index)
    assert after.shape == before.shape
    assert torch.equal(after[~mask], before[~mask]) and not torch.equal(after[mask], before[mask])


@pytest.mark.parametrize(
    ("warming_up", "mask_downscale"), [(True, 1), (False, 1), (False, 2)], ids=["warm-up", "warmed-up", "coarse-mask"]
)
def test_an_edit_from_pure_noise_edits_the_training_image_and_renders_only_for_its_mask(
    toy_scene, tiny_checkpoint, monkeypatch, warming_up, mask_downscale
):
    pipeline = _pipeline(
        toy_scene, tiny_checkpoint, edit_during_warmup=True, relevance_warmup_steps=10, mask_downscale=mask_downscale
    )
    assert pipeline.strength_range == (1.0, 1.0)  # the toy editor's
    pipeline.compute_relevance_targets()
    pipeline.field_ready, pipeline.step = 10, (9 if warming_up else 10)
    index, datamanager = pipeline.view_order[0], pipeline.datamanager
    datamanager.set_image(index, datamanager.image(index).flip(0))  # the training image differs from any render
    rendered = _rectangle(slice(4, 20), slice(8, 24))
    if not warming_up:
        _render_masks(pipeline, monkeypatch, {index: rendered})
    mask = edit_mask(datamanager.relevance(index), THRESHOLD) if warming_up else rendered
    renders = _record_render_shapes(pipeline, monkeypatch)
    inputs = _record_edit_inputs(pipeline, monkeypatch)
    before = datamanager.image(index).clone()
    pipeline.edit_views([index])
    height, width = mask.shape[:2]
    # after the warm-up: only the mask's render, mask_downscale times coarser (in _render_masks' check)
    assert renders == ([] if warming_up else [(height // mask_downscale, width // mask_downscale)])
    assert len(inputs) == 1 and torch.equal(inputs[0][0], before.permute(2, 0, 1))
    after, original, inside = datamanager.image(index), datamanager.original_image(index), mask[..., 0]
    assert torch.equal(after[~inside], original[~inside])  # outside the mask: the photo, not the flipped image
    assert (after != before).any(dim=-1)[inside].any()


def test_first_round_edits_every_view_at_the_first_edit_step_then_follows_the_schedule(
    toy_scene, tiny_checkpoint, monkeypatch
):
    pipeline = _pipeline(
        toy_scene, tiny_checkpoint, first_round=True, edit_during_warmup=True, relevance_warmup_steps=10,
        editor_batch_size=3,
    )  # fmt: skip
    inputs = _record_edit_inputs(pipeline, monkeypatch)
    datamanager = pipeline.datamanager
    before = datamanager.image(slice(None)).clone()
    pipeline._before_step(0)  # the relevance targets, then every view
    views = datamanager.num_views
    assert views > 3 and pipeline.edits_done == views
    batches = [len(images) for images in inputs]
    assert max(batches) <= 3 and sum(batches) + pipeline.edits_skipped == views
    own = torch.stack([edit_mask(datamanager.relevance(index), THRESHOLD) for index in range(views)])[..., 0]
    changed = (datamanager.image(slice(None)) != before).any(dim=-1)
    assert sum(batches) > views / 2 and not changed[~own].any()
    assert all(changed[index].any() for index in range(views) if own[index].any())
    for step in range(1, pipeline.config.edit_rate + 1):
        pipeline._before_step(step)
    count = pipeline.config.views_per_edit  # then views_per_edit views per edit_rate steps
    assert pipeline.edits_done == views + count and pipeline.next_view() == pipeline.view_order[count]


def test_the_relevance_pass_writes_each_batch_into_the_8_bit_targets_before_the_next(
    toy_scene, tiny_checkpoint, monkeypatch
):
    """Peak memory must not grow with the number of views: no float map outlives its batch."""
    pipeline = _pipeline(toy_scene, tiny_checkpoint, editor_batch_size=3)
    events = []
    relevance_map, set_relevance = pipeline.editor.relevance_map, pipeline.datamanager.set_relevance

    def mapping(images, *args, **kwargs):
        events.append(("map", len(images)))
        return relevance_map(images, *args, **kwargs)

    def storing(index, relevance):
        events.append(("store", len(relevance)))
        set_relevance(index, relevance)

    monkeypatch.setattr(pipeline.editor, "relevance_map", mapping)
    monkeypatch.setattr(pipeline.datamanager, "set_relevance", storing)
    pipeline.compute_relevance_targets()
    views = pipeline.datamanager.num_views
    batches = [min(3, views - start) for start in range(0, views, 3)]
    assert events == [event for size in batches for event in (("map", size), ("store", size))]
    assert pipeline.datamanager.relevance_pixels().dtype == torch.uint8


@pytest.mark.parametrize("threshold", [0.2, 0.8])
def test_a_mask_edited_at_the_working_size_comes_back_as_it_was_at_any_threshold(
    toy_scene, tiny_checkpoint, monkeypatch, threshold
):
    """The rendered mask is thresholded once: shrinking it to the editor's size and back neither grows nor
    shrinks it with the edit threshold (a float mask thresholded again at 0.2 or 0.8 would)."""
    pipeline = _pipeline(toy_scene, tiny_checkpoint, edit_resolution=16, strength_range=(0.6, 0.6))
    pipeline.compute_relevance_targets()
    pipeline.field_ready = pipeline.step = 0
    pipeline.set_edit(threshold=threshold)
    index = pipeline.view_order[0]
    expected = _rectangle(slice(4, 28), slice(2, 18))  # edges on the 16 px grid
    _render_masks(pipeline, monkeypatch, {index: expected})
    assert torch.equal(pipeline.edit_views([index])[0], expected)
