"""Toy 2D edit pairs: ground-truth masks cover every changed pixel, splits, seeds; the toy-world metrics."""

import math
import statistics

import numpy as np
import pytest
import torch

from editaction.train.dataset import read_metadata, read_records
from editaction.train.negatives import disjoint_candidates
from toyworld.metrics import iou, mean_squared_error, moved_towards, psnr, psnr_of_mse, recolour_succeeded
from toyworld.pairs import HELD_OUT, Recolour, make_pair, parse_recolour, write_pairs
from toyworld.tiny import build_clip_tokenizer


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
    colour = recolour.object.colour
    assert recolour_succeeded(after, mask, colour, recolour.target_colour)
    assert not recolour_succeeded(before, mask, colour, recolour.target_colour)
    assert psnr(after, before, ~mask) == float("inf") and psnr(after, before, mask) < 30
    assert iou(mask, mask) == 1.0 and iou(mask, ~mask) == 0.0
    # a split's PSNR comes from its mean error, so one exact pair (inf dB) cannot hide another's spill
    spill = mean_squared_error(after, before, mask)
    assert psnr_of_mse(statistics.mean([0.0, spill])) == pytest.approx(psnr(after, before, mask) + 10 * math.log10(2))

    move = make_pair(rng, "move", size=48)
    before, after = _tensor(move.input_image), _tensor(move.edited_image)
    opposite = "left" if move.direction == "right" else "right"
    assert moved_towards(before, after, move.object.colour, move.direction)
    assert not moved_towards(before, after, move.object.colour, opposite)
    assert not moved_towards(before, before, move.object.colour, move.direction)


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


def test_parse_recolour_reads_back_the_template():
    record = make_pair(np.random.default_rng(3), "recolour")
    parsed = parse_recolour(record.instruction)
    assert parsed == Recolour(record.object.colour, record.object.shape, record.target_colour)
    assert parse_recolour("  Make the red  cube blue. ") == Recolour("red", "cube", "blue")
    assert parse_recolour("make the red cube purple") is None
    assert parse_recolour("slide red cube left") is None
