"""The motion test of toy move pairs (``toyworld.metrics.moved_succeeded``): ground-truth moves pass, edits that
did not move the object, moved it the wrong way, too little, or not as itself fail; pairs it cannot measure say so."""

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

import toyworld.pairs
from toyworld.metrics import Motion, move_measurable, moved_succeeded, object_motion
from toyworld.pairs import EditPairRecord, generate_pairs, make_pair
from toyworld.palette import COLOURS
from toyworld.scene import render_view

LUMINANCE = torch.tensor([0.299, 0.587, 0.114])
SEED = 21


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def _opposite(direction: str) -> str:
    return "left" if direction == "right" else "right"


@dataclass
class RenderedMove:
    """A move pair with what its renders knew: the object's pixels before and after, and the scene after."""

    pair: EditPairRecord
    was: torch.Tensor
    now: torch.Tensor
    without_object: torch.Tensor
    """The view with the object erased: the scene rendered without it."""
    recoloured: torch.Tensor
    """The edited view with the moved object in another palette colour."""

    @property
    def before(self) -> torch.Tensor:
        return _tensor(self.pair.input_image)

    @property
    def after(self) -> torch.Tensor:
        return _tensor(self.pair.edited_image)

    @property
    def mask(self) -> torch.Tensor:
        return torch.from_numpy(self.pair.mask)

    def passes(self, before: torch.Tensor, after: torch.Tensor, direction: str | None = None) -> bool | None:
        colour, direction = self.pair.object.colour, direction or self.pair.direction
        return moved_succeeded(before, after, self.mask, colour, direction)


@pytest.fixture
def rendered_moves(monkeypatch):
    """``count`` move pairs of ``seed`` whose object covers at least 64 pixels before the move (its half size is
    over 2 pixels) and that the test can measure from either image, with the scene of each pair's edited image,
    recorded from ``make_pair``'s renders."""
    renders = []

    def recording(spec, camera):
        image, masks = render_view(spec, camera)
        renders.append((spec, camera, masks))
        return image, masks

    monkeypatch.setattr(toyworld.pairs, "render_view", recording)

    def make(seed: int, count: int) -> list[RenderedMove]:
        rng, moves = np.random.default_rng(seed), []
        while len(moves) < count:
            pair = make_pair(rng, "move")
            (_, _, masks_before), (scene, camera, masks_after) = renders[-2:]
            name, mask = pair.object.name, torch.from_numpy(pair.mask)
            images = (_tensor(pair.input_image), _tensor(pair.edited_image))
            if masks_before[name].sum() < 64 or not all(move_measurable(i, mask, pair.object.colour) for i in images):
                continue
            others = tuple(o for o in scene.objects if o.name != name)
            colour = next(c for c in COLOURS if c != pair.object.colour)
            recoloured = tuple(replace(o, colour=colour) if o.name == name else o for o in scene.objects)
            moves.append(
                RenderedMove(
                    pair,
                    torch.from_numpy(masks_before[name]),
                    torch.from_numpy(masks_after[name]),
                    _tensor(render_view(replace(scene, objects=others), camera)[0]),
                    _tensor(render_view(replace(scene, objects=recoloured), camera)[0]),
                )
            )
        return moves

    return make


def test_ground_truth_moves_pass_the_motion_test():
    # calibrated on seed 7 (toyworld.metrics); a failure is an object mostly hidden behind another or out of view
    outcomes = [
        moved_succeeded(
            _tensor(p.input_image), _tensor(p.edited_image), torch.from_numpy(p.mask), p.object.colour, p.direction
        )
        for p in generate_pairs(100, ("move",), "test", seed=SEED)
    ]
    measured = [outcome for outcome in outcomes if outcome is not None]
    assert len(measured) >= 80 and np.mean(measured) >= 0.98


def test_unmoved_reversed_erased_greyed_recoloured_and_barely_moved_objects_fail(rendered_moves):
    for move in rendered_moves(seed=SEED + 1, count=8):
        before, after, direction = move.before, move.after, move.pair.direction
        assert move.passes(before, after) is True
        greyed = torch.where(move.now, torch.einsum("chw,c->hw", after, LUMINANCE), after)
        step = 2 if direction == "right" else -2
        # (rolled: a pixel pushed past an edge of the view comes back at the other, far from the object's mask)
        two_pixels = torch.where(move.was.roll(step, dims=1), before.roll(step, dims=2), move.without_object)
        assert move.passes(before, before) is False  # unedited
        assert move.passes(after, before) is False  # moved back: the opposite way
        assert move.passes(before, after, _opposite(direction)) is False
        assert move.passes(before, move.without_object) is False  # erased
        assert move.passes(before, greyed) is False  # at its new place, but grey
        assert move.passes(before, move.recoloured) is False
        assert move.passes(before, two_pixels) is False


def test_half_erased_objects_and_ones_left_behind_mostly_fail(rendered_moves):
    # each can pass where the object's new place overlaps its old one a lot (see the README)
    failed = []
    for move in rendered_moves(seed=SEED + 2, count=12):
        columns = torch.arange(move.now.shape[1])
        sign = 1 if move.pair.direction == "right" else -1
        ahead = (columns - torch.nonzero(move.now)[:, 1].float().mean()) * sign > 0  # its leading half
        half_erased = torch.where(move.now & ahead, move.without_object, move.after)
        left_behind = torch.where(move.was & ~move.now, move.before, move.after)
        failed += [move.passes(move.before, half_erased) is False, move.passes(move.before, left_behind) is False]
    assert np.mean(failed) >= 0.8


def _square(columns: slice, width: int = 32, occluder: slice | None = None) -> torch.Tensor:
    """A grey image with a red 6 x 6 square in ``columns`` of rows 10-15, and a blue block in front of it in
    ``occluder``."""
    image = torch.full((3, 24, width), 0.5)
    image[:, 10:16, columns] = torch.tensor(COLOURS["red"])[:, None, None] / 255
    if occluder is not None:
        image[:, 8:18, occluder] = torch.tensor(COLOURS["blue"])[:, None, None] / 255
    return image


def _red(*images: torch.Tensor) -> torch.Tensor:
    """The pixels red in any of ``images``: where the square was and is, the pair's mask."""
    return torch.stack([image[0] > 0.8 for image in images]).any(dim=0)


def test_a_square_moved_by_a_known_shift():
    before, after = _square(slice(4, 10)), _square(slice(14, 20))
    mask = _red(before, after)
    assert object_motion(before, after, mask, "red") == Motion(shift=10.0, size=6.0, match_iou=1.0, seen_share=1.0)
    assert moved_succeeded(before, after, mask, "red", "right") is True
    assert moved_succeeded(before, after, mask, "red", "left") is False
    assert moved_succeeded(before, after, mask, "blue", "right") is None  # no blue object to measure
    # half its size (3 of 6 columns) is enough, 2 columns are not
    assert moved_succeeded(before, _square(slice(7, 13)), mask, "red", "right") is True
    assert moved_succeeded(before, _square(slice(6, 12)), mask, "red", "right") is False
    with pytest.raises(ValueError, match="direction"):
        moved_succeeded(before, after, mask, "red", "up")

    # behind a blue object that stays put, the square's visible half still moved 10 columns and kept its shape
    before, after = _square(slice(4, 10), occluder=slice(16, 19)), _square(slice(14, 20), occluder=slice(16, 19))
    motion = object_motion(before, after, _red(before, after), "red")
    assert (motion.shift, motion.match_iou, motion.seen_share) == (10.0, 1.0, 0.5)

    # half out of view, the visible centroid moves 5 columns (21.5 - 16.5) but the object moved 6
    before, after = _square(slice(14, 20), width=24), _square(slice(20, 24), width=24)
    motion = object_motion(before, after, _red(before, after), "red")
    assert (motion.shift, motion.match_iou, motion.seen_share) == (6.0, 1.0, pytest.approx(4 / 6))
    assert moved_succeeded(before, after, _red(before, after), "red", "right") is True

    # an object that was half out of view at the left edge and came into view: its right edge moved 4 columns
    before, after = _square(slice(0, 3), width=24), _square(slice(1, 7), width=24)
    motion = object_motion(before, after, _red(before, after), "red")
    assert motion.shift == 4.0 and motion.match_iou == 1.0


def test_a_pair_with_another_object_of_its_colour_beside_it_is_not_measured():
    before, after = _square(slice(4, 10)), _square(slice(14, 20))
    mask = _red(before, after)
    for image in (before, after):
        image[:, 10:16, 21:25] = torch.tensor(COLOURS["red"])[:, None, None] / 255  # a red neighbour, 1 pixel off
    assert not move_measurable(before, mask, "red") and moved_succeeded(before, after, mask, "red", "right") is None
    empty = torch.zeros_like(mask)
    assert not move_measurable(before, empty, "red") and object_motion(before, after, empty, "red") is None
