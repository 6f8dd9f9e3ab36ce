"""Random 3D toy scenes with one recolour instruction each: the method judged on layouts nobody tuned on.

The embedded scene (``SceneSpec()``) and its instruction are the demo's; settings are chosen on the
``validation`` layouts here and reported on the ``test`` ones. Seeds are disjoint from the 2D pairs'
(``toyworld.pairs.TRAIN_SEEDS``, ``EVALUATION_SEEDS``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toyworld.pairs import RECOLOUR, LayoutRange, random_layout
from toyworld.palette import COLOURS
from toyworld.scene import SceneSpec

SCENE_LAYOUTS = LayoutRange(objects=(3, 4), extent=0.75, sizes=(0.18, 0.32), min_target_pixels=0)
"""As many objects as the demo scene or one more, of its sizes (0.18-0.3), anywhere the cameras all see."""
SCENE_LAYOUT_SEEDS = {"validation": (2001, 2002, 2003), "test": (3001, 3002, 3003)}


@dataclass(frozen=True)
class LayoutScene:
    spec: SceneSpec
    instruction: str


def layout_scene(seed: int) -> LayoutScene:
    """The scene and instruction of ``seed``: a random object recoloured to a random other colour."""
    rng = np.random.default_rng(seed)
    objects = tuple(random_layout(rng, SCENE_LAYOUTS))
    target = objects[int(rng.integers(len(objects)))]
    colour = str(rng.choice([c for c in COLOURS if c != target.colour]))
    instruction = RECOLOUR.format(colour=target.colour, shape=target.shape, target_colour=colour)
    return LayoutScene(SceneSpec(objects=objects, seed=seed), instruction)
