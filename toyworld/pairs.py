"""2D edit pairs of the toy world, rendered by the same ray caster as its 3D scenes.

Each pair is one random view of one to three objects: the input image, the edited image
and the exact mask of the pixels the instruction changes. Two kinds of instruction:

- recolour (static): "make the red cube blue": the object's albedo changes, shading stays;
- move (action): "slide blue ball left": the object slides across the floor by a
  fixed fraction of the image towards the named side of the view; the mask is the union
  of where it was and where it is.

A data set folder holds ``metadata.jsonl`` in the EditAction format (input and edited
file names, ``edit_prompt``) with extra keys for evaluation: ``mask_file_name``, ``kind``,
``object``, ``target_colour`` (recolour) and ``direction`` (move). Splits: ``train`` and
``test`` (other seeds) never edit a colour/shape pair in ``HELD_OUT``; ``unseen`` edits only those.
Layouts come from ``TRAINING_LAYOUTS`` (the shipped editor's pairs) or ``NEW_LAYOUTS`` (more objects,
spread wider, in more sizes: how far the editor generalises beyond the layouts it was trained on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from editaction.images import write_image
from editaction.train.dataset import EDITED_KEY, INPUT_KEY, PROMPT_KEY, write_metadata
from toyworld.palette import COLOURS
from toyworld.scene import SHAPES, SceneObject, SceneSpec, orbit_camera, render_view

HELD_OUT: frozenset[tuple[str, str]] = frozenset({("green", "ball"), ("yellow", "cube")})
"""(colour, shape) of edited objects kept out of training, to test generalisation."""
MOVE_VERBS = {"left": "slide", "right": "shift"}
"""Direction -> verb. Move instructions have no filler words ("slide red cube left"), so two with other
objects and directions share no token: EditAction's contrastive negatives need that."""
MOVE_DISTANCE = 0.45
"""World units an object slides: about a sixth of the view at the default camera distance."""
MASK_KEY = "mask_file_name"
RECOLOUR = "make the {colour} {shape} {target_colour}"
"""The recolour instruction template (``parse_recolour`` reads it back)."""
PARTIAL_RECOLOURS = ("make the {colour} object {target_colour}", "make the {shape} {target_colour}")
"""Training-only instructions that name the object by its colour or its shape alone (when no other object in the
view shares it), so the editor learns each word's reference on its own and can compose them for combinations no
training pair edits."""
_RECOLOUR_PATTERN = re.compile(
    r"make the (?P<colour>{c}) (?P<shape>{s}) (?P<target_colour>{c})".format(c="|".join(COLOURS), s="|".join(SHAPES))
)
SPLITS = ("train", "test", "unseen")


@dataclass(frozen=True)
class LayoutRange:
    """The random scenes pairs are drawn from; every object has its own colour/shape combination."""

    objects: tuple[int, int]
    """Fewest and most objects (fewer when they do not fit apart)."""
    extent: float
    """Object centres are uniform in [-extent, extent]^2 on the floor."""
    sizes: tuple[float, float]
    """Range of the radius (ball) or half side (cube)."""
    min_target_pixels: int
    """The camera is drawn again until the edited object covers this many pixels (0: never)."""


TRAINING_LAYOUTS = LayoutRange(objects=(1, 3), extent=0.7, sizes=(0.22, 0.32), min_target_pixels=0)
"""The shipped editor's training pairs, and the test/unseen rows of ``scripts/evaluate_toy.py``. No visibility
check, so their seeds still give the same pairs (1 of the 40 test pairs shows none of its object)."""
NEW_LAYOUTS = LayoutRange(objects=(2, 5), extent=1.0, sizes=(0.14, 0.4), min_target_pixels=16)
"""Layouts beyond training: up to 5 objects, sizes 0.14-0.4, spread wider (some at the view's edge); the edited
object is always visible (16 pixels, as ``toyworld.evaluation.MIN_OBJECT_PIXELS``)."""


WIDE_LAYOUTS = LayoutRange(objects=(1, 5), extent=1.0, sizes=(0.12, 0.42), min_target_pixels=16)
"""Half of the toy editor's recolour pairs: as varied as ``NEW_LAYOUTS`` and a little wider, so small objects,
crowded views and objects at the view's edge are in training (the old editor saw 1-3 objects of sizes 0.22-0.32
only, and turned half of the small objects grey)."""


PARTIAL_REFERENCES = 0.3
"""Share of training recolours named by colour or shape alone."""


@dataclass(frozen=True)
class TrainingSet:
    """One folder of ``scripts/train_toy_editor.py``'s pairs."""

    name: str
    kind: str
    layouts: LayoutRange
    seed_offset: int
    """Added to the training seed; every set draws its own pairs."""
    teaches_text: bool = True
    """Used by the contrastive text-encoder stage (not for the wide layouts: a few-pixel edit names no word)."""
    partial_references: float = 0.0
    """Share of recolour pairs named by colour or shape alone (``PARTIAL_RECOLOURS``)."""


TRAINING_SETS = (
    TrainingSet("recolour", "recolour", TRAINING_LAYOUTS, 0, partial_references=PARTIAL_REFERENCES),
    TrainingSet("actions", "move", TRAINING_LAYOUTS, 1),
    TrainingSet(
        "recolour-wide", "recolour", WIDE_LAYOUTS, 2, teaches_text=False, partial_references=PARTIAL_REFERENCES
    ),
)
TRAIN_SEEDS = tuple(s.seed_offset for s in TRAINING_SETS)
"""The seeds of ``TRAINING_SETS`` at ``scripts/train_toy_editor.py``'s default ``--seed 0``."""


@dataclass(frozen=True)
class EvaluationRow:
    """One row of ``scripts/evaluate_toy.py``: the pairs it measures."""

    kind: str
    split: str
    """``test`` (edits colour/shape combinations seen in training) or ``unseen`` (only ``HELD_OUT`` ones)."""
    layouts: LayoutRange


EVALUATION_ROWS = {
    "seen": EvaluationRow("recolour", "test", TRAINING_LAYOUTS),
    "unseen": EvaluationRow("recolour", "unseen", TRAINING_LAYOUTS),
    "moves": EvaluationRow("move", "test", TRAINING_LAYOUTS),
    "new-layouts": EvaluationRow("recolour", "test", NEW_LAYOUTS),
}
EVALUATION_SEEDS = {"validation": 999, "test": 1234}
"""Row i of ``EVALUATION_ROWS`` draws its pairs with seed + i. Tune on ``validation`` (seed 999 chose
``toyworld.TOY_RELEVANCE``), report ``test`` (its first three rows are the pairs reported before ``new-layouts``)."""


@dataclass(frozen=True)
class EditPairRecord:
    input_image: np.ndarray
    edited_image: np.ndarray
    mask: np.ndarray
    instruction: str
    kind: str
    object: SceneObject
    target_colour: str | None = None
    direction: str | None = None


def random_layout(
    rng: np.random.Generator, layouts: LayoutRange, excluded: frozenset[tuple[str, str]] = frozenset()
) -> list[SceneObject]:
    """Objects with distinct (colour, shape), none of them ``excluded``, apart from each other on the floor."""
    combos = [(colour, shape) for colour in COLOURS for shape in SHAPES if (colour, shape) not in excluded]
    count = int(rng.integers(layouts.objects[0], layouts.objects[1] + 1))
    chosen = rng.choice(len(combos), size=count, replace=False)
    objects: list[SceneObject] = []
    for index in chosen:
        colour, shape = combos[index]
        size = rng.uniform(*layouts.sizes)
        for _ in range(50):
            x, y = rng.uniform(-layouts.extent, layouts.extent, size=2)
            if all(np.hypot(x - o.x, y - o.y) > size + o.size + 0.1 for o in objects):
                objects.append(SceneObject(f"{colour}_{shape}", shape, colour, float(x), float(y), float(size)))
                break
    return objects


def _random_camera(rng: np.random.Generator, radius: float) -> np.ndarray:
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.radians(rng.uniform(20, 45))
    return orbit_camera(azimuth, elevation, radius, target=np.array([0.0, 0.0, 0.2]))


def _moved(obj: SceneObject, c2w: np.ndarray, direction: str) -> SceneObject:
    """The object slid along the floor towards the view's ``direction`` side."""
    right = c2w[:3, 0].copy()
    right[2] = 0.0
    right /= np.linalg.norm(right)
    step = MOVE_DISTANCE * (1 if direction == "right" else -1) * right
    return replace(obj, x=float(obj.x + step[0]), y=float(obj.y + step[1]))


@dataclass(frozen=True)
class Recolour:
    colour: str
    shape: str
    target_colour: str


def parse_recolour(instruction: str) -> Recolour | None:
    """The object and colour of a recolour instruction in the toy template; None for any other instruction."""
    match = _RECOLOUR_PATTERN.fullmatch(" ".join(instruction.lower().split()).rstrip("."))
    return None if match is None else Recolour(**match.groupdict())


def recolour_instruction(
    rng: np.random.Generator,
    target: SceneObject,
    objects: list[SceneObject],
    target_colour: str,
    partial_references: float = 0.0,
) -> str:
    """``RECOLOUR``, or with probability ``partial_references`` one of ``PARTIAL_RECOLOURS`` whose one word
    (colour or shape) names no other object of ``objects``."""
    if partial_references > 0 and rng.random() < partial_references:
        unique = [
            template
            for template, attribute in zip(PARTIAL_RECOLOURS, ("colour", "shape"), strict=True)
            if sum(getattr(o, attribute) == getattr(target, attribute) for o in objects) == 1
        ]
        if unique:
            template = unique[int(rng.integers(len(unique)))]
            return template.format(colour=target.colour, shape=target.shape, target_colour=target_colour)
    return RECOLOUR.format(colour=target.colour, shape=target.shape, target_colour=target_colour)


def make_pair(
    rng: np.random.Generator,
    kind: str,
    size: int = 64,
    held_out: bool | None = None,
    layouts: LayoutRange = TRAINING_LAYOUTS,
    excluded: frozenset[tuple[str, str]] = frozenset(),
    partial_references: float = 0.0,
) -> EditPairRecord:
    """One random pair; ``held_out`` True/False restricts the edited object to/away from ``HELD_OUT``.

    ``excluded`` combinations are left out of the scene; a ``partial_references`` share of recolours name their
    object by colour or shape alone where that is unambiguous in the scene.
    """
    while True:
        objects = random_layout(rng, layouts, excluded)
        candidates = [o for o in objects if held_out is None or ((o.colour, o.shape) in HELD_OUT) == held_out]
        if candidates and len(objects) >= layouts.objects[0]:
            break
    target = candidates[int(rng.integers(len(candidates)))]
    # the seed also sets the floor pattern's phase
    spec = SceneSpec(objects=tuple(objects), size=size, supersample=2, seed=int(rng.integers(1 << 16)))
    while True:
        c2w = _random_camera(rng, spec.radius)
        image, masks = render_view(spec, c2w)
        if masks[target.name].sum() >= layouts.min_target_pixels:
            break
    if kind == "recolour":
        colour = str(rng.choice([c for c in COLOURS if c != target.colour]))
        edited_objects = tuple(replace(o, colour=colour) if o is target else o for o in objects)
        edited, _ = render_view(replace(spec, objects=edited_objects), c2w)
        mask = masks[target.name]
        instruction = recolour_instruction(rng, target, objects, colour, partial_references)
        return EditPairRecord(image, edited, mask, instruction, kind, target, target_colour=colour)
    if kind == "move":
        direction = str(rng.choice(list(MOVE_VERBS)))
        edited_objects = tuple(_moved(o, c2w, direction) if o is target else o for o in objects)
        edited, edited_masks = render_view(replace(spec, objects=edited_objects), c2w)
        mask = masks[target.name] | edited_masks[target.name]
        instruction = f"{MOVE_VERBS[direction]} {target.colour} {target.shape} {direction}"
        return EditPairRecord(image, edited, mask, instruction, kind, target, direction=direction)
    raise ValueError(f"kind must be 'recolour' or 'move', got {kind!r}")


def generate_pairs(
    count: int,
    kinds: tuple[str, ...],
    split: str,
    size: int = 64,
    seed: int = 0,
    layouts: LayoutRange = TRAINING_LAYOUTS,
    partial_references: float = 0.0,
) -> Iterator[EditPairRecord]:
    """``count`` pairs (kinds in turn); the ``unseen`` split edits only HELD_OUT objects.

    ``train`` scenes hold no ``HELD_OUT`` object at all: one that is always there and never edited would teach
    the editor to leave it alone, where ``unseen`` asks it to edit it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng(seed)
    excluded = HELD_OUT if split == "train" else frozenset()
    for index in range(count):
        yield make_pair(
            rng,
            kinds[index % len(kinds)],
            size=size,
            held_out=split == "unseen",
            layouts=layouts,
            excluded=excluded,
            partial_references=partial_references,
        )


def write_pairs(
    out: Path,
    count: int,
    kinds: tuple[str, ...],
    split: str,
    size: int = 64,
    seed: int = 0,
    layouts: LayoutRange = TRAINING_LAYOUTS,
    partial_references: float = 0.0,
) -> Path:
    """Write ``generate_pairs(...)`` into ``out``; returns the path of ``metadata.jsonl``."""
    pairs = generate_pairs(count, kinds, split, size, seed, layouts, partial_references)
    return save_pairs(out, pairs, count, f"toy {split} pairs")


def save_pairs(out: Path, pairs: Iterable[EditPairRecord], count: int, description: str) -> Path:
    """Write ``count`` pairs into a new data set folder ``out``; returns the path of its ``metadata.jsonl``."""
    out = Path(out)
    if (out / "metadata.jsonl").exists():
        raise FileExistsError(f"{out} already holds a data set; choose another folder or delete it")
    records = []
    for index, pair in enumerate(tqdm(pairs, total=count, desc=description, unit="pair")):
        name = f"{index:06d}.png"
        write_image(out / "input" / name, pair.input_image)
        write_image(out / "edited" / name, pair.edited_image)
        write_image(out / "mask" / name, pair.mask.astype(np.uint8) * 255)
        record = {
            INPUT_KEY: f"input/{name}",
            EDITED_KEY: f"edited/{name}",
            PROMPT_KEY: pair.instruction,
            MASK_KEY: f"mask/{name}",
            "kind": pair.kind,
            "object": pair.object.name,
        }
        if pair.target_colour is not None:
            record["target_colour"] = pair.target_colour
        if pair.direction is not None:
            record["direction"] = pair.direction
        records.append(record)
    return write_metadata(out, records)


def evaluation_seeds(split: str) -> dict[str, int]:
    """The seed of each row of ``EVALUATION_ROWS`` in ``split`` (``validation`` or ``test``)."""
    if split not in EVALUATION_SEEDS:
        raise ValueError(f"split must be one of {tuple(EVALUATION_SEEDS)}, got {split!r}")
    return {row: EVALUATION_SEEDS[split] + index for index, row in enumerate(EVALUATION_ROWS)}


def evaluation_pairs(split: str, row: str, count: int) -> Iterator[EditPairRecord]:
    """The pairs of one row of ``EVALUATION_ROWS`` in ``split``, as ``write_evaluation_pairs`` writes them."""
    spec = EVALUATION_ROWS[row]
    return generate_pairs(count, (spec.kind,), spec.split, seed=evaluation_seeds(split)[row], layouts=spec.layouts)


def write_evaluation_pairs(out: Path, split: str, count: int, rows: tuple[str, ...]) -> dict[str, Path]:
    """Write ``count`` pairs for each of ``rows`` (names in ``EVALUATION_ROWS``) into ``out/<row>``."""
    folders = {row: Path(out) / row for row in rows}
    for row, folder in folders.items():
        save_pairs(folder, evaluation_pairs(split, row, count), count, f"toy {split} {row} pairs")
    return folders
