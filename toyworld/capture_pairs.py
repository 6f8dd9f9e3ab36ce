"""Recolour pairs in the capture-like world (``toyworld.capture``): what the editor meets in a photographed scene.

The toy editor's other pairs are flat-shaded 64-px views; a capture's training views (``make capture-demo``:
512x384 photos, ``ns-process-data``'s ``images_4``) have textured ground, a wall and props, and each photo its own
exposure, white balance and sensor noise. Each pair here is one photo of a random capture world at that
resolution, before and after one object's recolour (the same camera effects on both), cut to a square window
around the edited object at the photo's own scale: the relevance-guided editor edits a box around the object at
the view's resolution, so the object is as large in these windows as in a capture's edit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from toyworld.capture import CaptureRenderer, CaptureSpec, box_pool, camera_effects, camera_poses
from toyworld.pairs import HELD_OUT, EditPairRecord, LayoutRange, random_layout, recolour_instruction, save_pairs
from toyworld.palette import COLOURS
from toyworld.scene_layouts import SCENE_LAYOUTS

PHOTO_SIZE = (512, 384)
"""The capture demo's photos (``toyworld.capture_demo.CaptureDemoArgs``)."""
TRAINING_DOWNSCALE = 4
"""The capture demo trains on ``images_4``: 128x96 views."""
RENDER_DOWNSCALE = 2
"""Photos are rendered at half size and averaged down by 2, as fine as the demo's views (the full-size render and
the 4x resize cost 5x more); sensor noise is halved to match the full photo's after its 4x resize."""
PHOTOS_PER_WORLD = 12
CAPTURE_LAYOUTS = replace(SCENE_LAYOUTS, min_target_pixels=16)
"""The capture demo's layouts (new random ones: the seeds differ), the edited object visible in every pair."""
CAPTURE_SEED_OFFSET = 3
"""Added to ``scripts/train_toy_editor.py``'s seed, after ``toyworld.pairs.TRAINING_SETS``' offsets."""


def _window(mask: np.ndarray, size: int, rng: np.random.Generator) -> tuple[slice, slice]:
    """A ``size`` square inside the view holding the mask's box (centred on it when the box is larger)."""
    rows, cols = np.nonzero(mask)
    corners = []
    for low, high, extent in ((rows.min(), rows.max(), mask.shape[0]), (cols.min(), cols.max(), mask.shape[1])):
        first, last = max(high + 1 - size, 0), min(low, extent - size)
        start = int(rng.integers(first, last + 1)) if first <= last else (low + high + 1 - size) // 2
        corners.append(int(np.clip(start, 0, extent - size)))
    return slice(corners[0], corners[0] + size), slice(corners[1], corners[1] + size)


def capture_world_pairs(
    rng: np.random.Generator,
    layouts: LayoutRange,
    window: int = 64,
    excluded: frozenset[tuple[str, str]] = HELD_OUT,
    partial_references: float = 0.0,
) -> list[EditPairRecord]:
    """One random capture world with one object recoloured: a pair for each of its photos that shows the object
    with at least ``layouts.min_target_pixels`` pixels."""
    objects = random_layout(rng, layouts, excluded)
    target = objects[int(rng.integers(len(objects)))]
    colour = str(rng.choice([c for c in COLOURS if c != target.colour]))
    width, height = (side * RENDER_DOWNSCALE // TRAINING_DOWNSCALE for side in PHOTO_SIZE)
    spec = CaptureSpec(objects=tuple(objects), photos=PHOTOS_PER_WORLD, width=width, height=height, supersample=1,
                       seed=int(rng.integers(1 << 16)))  # fmt: skip
    spec = replace(spec, noise_sigma=spec.noise_sigma / RENDER_DOWNSCALE)
    edited_spec = replace(spec, objects=tuple(replace(o, colour=colour) if o is target else o for o in objects))
    before, after = CaptureRenderer(spec), CaptureRenderer(edited_spec)
    instruction_rng = np.random.default_rng(spec.seed)
    pairs = []
    for c2w in camera_poses(spec):
        image, masks = before.render(c2w)
        mask = box_pool(masks[target.name].astype(np.float32), RENDER_DOWNSCALE) >= 0.5
        if mask.sum() < max(layouts.min_target_pixels, 1):
            continue
        edited, _ = after.render(c2w)
        effects_seed = int(rng.integers(1 << 31))  # one photo's exposure, balance and noise, before and after
        photos = [
            box_pool(
                camera_effects(view, np.random.default_rng(effects_seed), spec).astype(np.float32), RENDER_DOWNSCALE
            )
            for view in (image, edited)
        ]
        rows, cols = _window(mask, window, rng)
        image_8bit, edited_8bit = (np.rint(photo[rows, cols]).astype(np.uint8) for photo in photos)
        instruction = recolour_instruction(instruction_rng, target, objects, colour, partial_references)
        pairs.append(EditPairRecord(image_8bit, edited_8bit, mask[rows, cols], instruction, "recolour", target,
                                    target_colour=colour))  # fmt: skip
    return pairs


def generate_capture_pairs(
    count: int, seed: int, layouts: LayoutRange, window: int = 64, partial_references: float = 0.0
) -> Iterator[EditPairRecord]:
    """``count`` pairs from as many random capture worlds as it takes; no world holds a ``HELD_OUT`` object."""
    rng = np.random.default_rng(seed)
    made = 0
    while made < count:
        for pair in capture_world_pairs(rng, layouts, window, partial_references=partial_references)[: count - made]:
            made += 1
            yield pair


def write_capture_pairs(
    out: Path, count: int, seed: int, layouts: LayoutRange, window: int = 64, partial_references: float = 0.0
) -> Path:
    """Write ``generate_capture_pairs(...)`` into the data set folder ``out``; returns its ``metadata.jsonl``."""
    pairs = generate_capture_pairs(count, seed, layouts, window, partial_references)
    return save_pairs(out, pairs, count, "capture-world pairs")
