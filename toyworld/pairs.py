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
"""

from __future__ import annotations

import re
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
_RECOLOUR_PATTERN = re.compile(
    r"make the (?P<colour>{c}) (?P<shape>{s}) (?P<target_colour>{c})".format(c="|".join(COLOURS), s="|".join(SHAPES))
)
SPLITS = ("train", "test", "unseen")


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


def _random_objects(rng: np.random.Generator, count: int) -> list[SceneObject]:
    """Up to ``count`` objects with distinct (colour, shape), apart from each other on the floor."""
    combos = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    chosen = rng.choice(len(combos), size=count, replace=False)
    objects: list[SceneObject] = []
    for index in chosen:
        colour, shape = combos[index]
        size = rng.uniform(0.22, 0.32)
        for _ in range(50):
            x, y = rng.uniform(-0.7, 0.7, size=2)
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


def make_pair(rng: np.random.Generator, kind: str, size: int = 64, held_out: bool | None = None) -> EditPairRecord:
    """One random pair; ``held_out`` True/False restricts the edited object to/away from ``HELD_OUT``."""
    while True:
        objects = _random_objects(rng, int(rng.integers(1, 4)))
        candidates = [o for o in objects if held_out is None or ((o.colour, o.shape) in HELD_OUT) == held_out]
        if candidates:
            break
    target = candidates[int(rng.integers(len(candidates)))]
    spec = SceneSpec(objects=tuple(objects), size=size, supersample=2, seed=int(rng.integers(1 << 16)))
    c2w = _random_camera(rng, spec.radius)
    image, masks = render_view(spec, c2w)
    if kind == "recolour":
        colour = str(rng.choice([c for c in COLOURS if c != target.colour]))
        edited_objects = tuple(replace(o, colour=colour) if o is target else o for o in objects)
        edited, _ = render_view(replace(spec, objects=edited_objects), c2w)
        mask = masks[target.name]
        instruction = RECOLOUR.format(colour=target.colour, shape=target.shape, target_colour=colour)
        return EditPairRecord(image, edited, mask, instruction, kind, target, target_colour=colour)
    if kind == "move":
        direction = str(rng.choice(list(MOVE_VERBS)))
        edited_objects = tuple(_moved(o, c2w, direction) if o is target else o for o in objects)
        edited, edited_masks = render_view(replace(spec, objects=edited_objects), c2w)
        mask = masks[target.name] | edited_masks[target.name]
        instruction = f"{MOVE_VERBS[direction]} {target.colour} {target.shape} {direction}"
        return EditPairRecord(image, edited, mask, instruction, kind, target, direction=direction)
    raise ValueError(f"kind must be 'recolour' or 'move', got {kind!r}")


def write_pairs(out: Path, count: int, kinds: tuple[str, ...], split: str, size: int = 64, seed: int = 0) -> Path:
    """Write ``count`` pairs (kinds in turn) into ``out``; the ``unseen`` split edits only HELD_OUT objects.

    Returns the path of ``metadata.jsonl``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out = Path(out)
    if (out / "metadata.jsonl").exists():
        raise FileExistsError(f"{out} already holds a data set; choose another folder or delete it")
    rng = np.random.default_rng(seed)
    records = []
    for index in tqdm(range(count), desc=f"toy {split} pairs", unit="pair"):
        pair = make_pair(rng, kinds[index % len(kinds)], size=size, held_out=split == "unseen")
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
