"""Render the embedded toy 3D scene in nerfstudio's format (transforms.json, images, object masks).

python scripts/make_toy_scene.py --out outputs/toy-scene
ns-train nerfacto-tiny --data outputs/toy-scene
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

from toyworld import SceneSpec, write_scene


@dataclass
class ToySceneArgs:
    out: Path = Path("outputs/toy-scene")
    views: int = 36
    """Cameras in total; every ``holdout_every``-th is held out for evaluation."""
    holdout_every: int = 3
    size: int = 64
    """Image side in pixels."""
    seed: int = 0


def main() -> None:
    args = tyro.cli(ToySceneArgs, description=__doc__)
    try:
        spec = SceneSpec(views=args.views, holdout_every=args.holdout_every, size=args.size, seed=args.seed)
        transforms = write_scene(args.out, spec)
    except (ValueError, FileExistsError) as error:
        sys.exit(f"error: {error}")
    print(f"wrote {transforms}")


if __name__ == "__main__":
    main()
