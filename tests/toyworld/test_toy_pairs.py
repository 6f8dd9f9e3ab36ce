"""Toy 2D edit pairs: ground-truth masks cover every changed pixel, splits, seeds, layouts; the toy-world metrics."""

import itertools
import math
import statistics
from dataclasses import replace

import numpy as np
import pytest
import torch

from editaction.images import read_image
from editaction.train.dataset import read_metadata, read_records
from editaction.train.negatives import disjoint_candidates
from toyworld.metrics import (
    GREY,
    NOT_VISIBLE,
    colour_class,
    iou,
    mean_squared_error,
    moved_succeeded,
    psnr,
    psnr_of_mse,
    recolour_class,
    recolour_succeeded,
)
from toyworld.pairs import (
    EVALUATION_ROWS,
    EVALUATION_SEEDS,
    HELD_OUT,
    NEW_LAYOUTS,
    TRAIN_SEEDS,
    TRAINING_LAYOUTS,
    Recolour,
    evaluation_pairs,
    evaluation_seeds,
    make_pair,
    parse_recolour,
    random_layout,
    recolour_instruction,
    write_evaluation_pairs,
    write_pairs,
)
from toyworld.palette import COLOURS
from toyworld.scene import SHAPES, SceneObject, SceneSpec, camera_poses, render_view
from toyworld.tiny import build_clip_tokenizer

LUMINANCE = torch.tensor([0.299, 0.587, 0.114])


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("kind", ["recolour", "move"])
def test_every_changed_pixel_is_inside_the_ground_truth_mask(kind):
    rng = np.random.default_rng(3)
    for _ in range(6):
        pair = make_pair(rng, kind, size=48)
        changed = np.abs(pair.input_image.astype(int) - pair.edited_image.astype(int)).max(axis=-1) > 8
        assert changed.any()
        assert not (changed & ~pair.mask).any()  # nothing outside the mask changes
        assert changed[pair.mask].mean() > 0.5  # and most of the mask does


def test_recolour_and_move_pairs_pass_their_own_metrics():
    rng = np.random.default_rng(5)
    recolour = make_pair(rng, "recolour", size=48)
    before, after = _tensor(recolour.input_image), _tensor(recolour.edited_image)
    mask = torch.from_numpy(recolour.mask)
    assert recolour_succeeded(after, mask, recolour.target_colour)
    assert not recolour_succeeded(before, mask, recolour.target_colour)
    assert psnr(after, before, ~mask) == float("inf") and psnr(after, before, mask) < 30
    assert iou(mask, mask) == 1.0 and iou(mask, ~mask) == 0.0
    # a split's PSNR comes from its mean error, so one exact pair (inf dB) cannot hide another's spill
    spill = mean_squared_error(after, before, mask)
    assert psnr_of_mse(statistics.mean([0.0, spill])) == pytest.approx(psnr(after, before, mask) + 10 * math.log10(2))

    move = make_pair(rng, "move", size=48)
    before, after, mask = _tensor(move.input_image), _tensor(move.edited_image), torch.from_numpy(move.mask)
    opposite = "left" if move.direction == "right" else "right"
    assert moved_succeeded(before, after, mask, move.object.colour, move.direction) is True
    assert moved_succeeded(before, after, mask, move.object.colour, opposite) is False
    assert moved_succeeded(before, before, mask, move.object.colour, move.direction) is False


@pytest.mark.parametrize("layouts", [TRAINING_LAYOUTS, NEW_LAYOUTS], ids=["training-layouts", "new-layouts"])
def test_ground_truth_recolours_pass_the_colour_test(layouts):
    rng = np.random.default_rng(11)
    classes = []
    for _ in range(100):
        pair = make_pair(rng, "recolour", layouts=layouts)
        mask = torch.from_numpy(pair.mask)
        if mask.any():  # training layouts do not check that the object is in view
            classes.append(recolour_class(_tensor(pair.edited_image), mask) == pair.target_colour)
    assert len(classes) >= 99 and np.mean(classes) >= 0.99


def test_unedited_grey_washed_out_and_half_done_recolours_fail():
    rng = np.random.default_rng(12)
    for _ in range(12):
        pair = make_pair(rng, "recolour", size=48)
        before, after = _tensor(pair.input_image), _tensor(pair.edited_image)
        mask = torch.from_numpy(pair.mask)
        if not mask.any():
            continue
        grey = torch.where(mask, torch.einsum("chw,c->hw", after, LUMINANCE).expand(3, -1, -1), after)
        washed_out = torch.where(mask, 0.3 * after + 0.7, after)  # 70% of the way to white
        half_done = torch.where(mask, 0.5 * before + 0.5 * after, after)
        assert recolour_class(before, mask) == pair.object.colour
        assert recolour_class(grey, mask) == GREY and recolour_class(washed_out, mask) == GREY
        for failed in (before, grey, washed_out, half_done):
            assert not recolour_succeeded(failed, mask, pair.target_colour)
    assert recolour_class(after, torch.zeros_like(mask)) == NOT_VISIBLE


def test_no_even_blend_of_two_palette_colours_is_either_at_any_shading():
    # a 50/50 red-yellow blend is nearer yellow than red at equal brightness (yellow is brighter)
    palette = {name: torch.tensor(rgb) / 255 for name, rgb in COLOURS.items()}
    for (a, b), shade in itertools.product(itertools.permutations(palette, 2), (0.35, 0.7, 1.0)):
        assert colour_class(shade * palette[a]) == a
        assert colour_class(shade * (palette[a] + palette[b]) / 2) not in (a, b), (a, b, shade)
    assert colour_class(torch.tensor([146, 127, 111]) / 255) == GREY  # a "green" edit of the old test


def test_recolouring_another_object_fails():
    spec = SceneSpec(size=48)  # red cube, blue ball, green cube
    objects = tuple(replace(o, colour="yellow") if o.name == "blue_ball" else o for o in spec.objects)
    edited = replace(spec, objects=objects)
    image, masks = render_view(edited, camera_poses(spec)[1])
    image, masks = _tensor(image), {name: torch.from_numpy(mask) for name, mask in masks.items()}
    assert recolour_succeeded(image, masks["blue_ball"], "yellow")
    assert not recolour_succeeded(image, masks["red_cube"], "yellow")


def test_new_layouts_go_beyond_the_training_layouts():
    rng = np.random.default_rng(13)
    layouts = [random_layout(rng, NEW_LAYOUTS) for _ in range(40)]
    counts = [len(objects) for objects in layouts]
    assert min(counts) >= 2 and max(counts) == 5
    objects = [o for layout in layouts for o in layout]
    assert min(o.size for o in objects) < TRAINING_LAYOUTS.sizes[0] and max(o.size for o in objects) > 0.35
    assert max(max(abs(o.x), abs(o.y)) for o in objects) > TRAINING_LAYOUTS.extent
    pairs = [make_pair(rng, "recolour", layouts=NEW_LAYOUTS, held_out=False) for _ in range(40)]
    assert min(pair.mask.sum() for pair in pairs) >= NEW_LAYOUTS.min_target_pixels
    assert {p.object.colour for p in pairs} == {p.target_colour for p in pairs} == set(COLOURS)
    assert {p.object.shape for p in pairs} == set(SHAPES)
    assert {(p.object.colour, p.object.shape) for p in pairs}.isdisjoint(HELD_OUT)


def test_evaluation_seeds_are_disjoint_from_training_and_each_other(tmp_path):
    seeds = [*TRAIN_SEEDS, *(seed for split in EVALUATION_SEEDS for seed in evaluation_seeds(split).values())]
    assert len(set(seeds)) == len(seeds) == len(TRAIN_SEEDS) + len(EVALUATION_SEEDS) * len(EVALUATION_ROWS)
    rows = ("seen", "new-layouts")
    folders = {split: write_evaluation_pairs(tmp_path / split, split, 2, rows) for split in EVALUATION_SEEDS}
    assert set(folders["test"]) == {"seen", "new-layouts"}
    prompts = {split: [p.instruction for f in folders[split].values() for p in read_metadata(f)] for split in folders}
    assert prompts["validation"] != prompts["test"]
    written = read_metadata(folders["test"]["new-layouts"])[1]
    generated = list(evaluation_pairs("test", "new-layouts", 2))[1]
    assert generated.instruction == written.instruction
    assert torch.equal(_tensor(generated.edited_image), read_image(written.edited_image).rgb)
    with pytest.raises(ValueError, match="split must be one of"):
        evaluation_seeds("train")


def test_splits_seeds_and_the_edit_action_format(tmp_path):
    write_pairs(tmp_path / "train", 12, ("recolour", "move"), "train", size=32, seed=0)
    write_pairs(tmp_path / "again", 12, ("recolour", "move"), "train", size=32, seed=0)
    write_pairs(tmp_path / "unseen", 6, ("recolour",), "unseen", size=32, seed=0)
    train = read_metadata(tmp_path / "train")
    assert [p.instruction for p in train] == [p.instruction for p in read_metadata(tmp_path / "again")]
    assert train[0].input_image.read_bytes() == (tmp_path / "again" / "input" / "000000.png").read_bytes()

    def edited_objects(folder):
        return {tuple(record["object"].split("_")) for record in read_records(folder)}

    assert edited_objects(tmp_path / "train").isdisjoint(HELD_OUT)
    assert edited_objects(tmp_path / "unseen") <= HELD_OUT
    with pytest.raises(FileExistsError):
        write_pairs(tmp_path / "train", 1, ("move",), "train")


def test_every_move_instruction_has_a_token_disjoint_negative(tmp_path):
    write_pairs(tmp_path, 40, ("move",), "train", size=32, seed=0)
    instructions = sorted({pair.instruction for pair in read_metadata(tmp_path)})
    candidates = disjoint_candidates(build_clip_tokenizer(), instructions)  # raises when one has none
    assert len(candidates) == len(instructions)


def test_training_scenes_hold_no_held_out_object_and_partial_names_are_unambiguous():
    rng = np.random.default_rng(7)
    layouts = [random_layout(rng, NEW_LAYOUTS, excluded=HELD_OUT) for _ in range(30)]
    assert all((o.colour, o.shape) not in HELD_OUT for layout in layouts for o in layout)
    assert max(len(layout) for layout in layouts) == 5

    def objects(*names):
        return [SceneObject(name, name.split("_")[1], name.split("_")[0], 0.0, 0.0, 0.2) for name in names]

    scene = objects("red_cube", "red_ball", "blue_cube")
    red_cube, red_ball, blue_cube = scene
    always = {"partial_references": 1.0}
    assert recolour_instruction(rng, red_cube, scene, "green", **always) == "make the red cube green"
    assert recolour_instruction(rng, blue_cube, scene, "green", **always) == "make the blue object green"
    assert recolour_instruction(rng, red_ball, scene, "green", **always) == "make the ball green"
    assert recolour_instruction(rng, red_ball, scene, "green") == "make the red ball green"
    alone = [recolour_instruction(rng, red_ball, [red_ball], "blue", **always) for _ in range(20)]
    assert set(alone) == {"make the red object blue", "make the ball blue"}


def test_parse_recolour_reads_back_the_template():
    record = make_pair(np.random.default_rng(3), "recolour")
    parsed = parse_recolour(record.instruction)
    assert parsed == Recolour(record.object.colour, record.object.shape, record.target_colour)
    assert parse_recolour("  Make the red  cube blue. ") == Recolour("red", "cube", "blue")
    assert parse_recolour("make the red cube purple") is None
    assert parse_recolour("slide red cube left") is None
