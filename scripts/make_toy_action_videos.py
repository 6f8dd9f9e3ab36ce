"""Write small synthetic action videos and their segment annotations (for the CPU smoke preset).

python scripts/make_toy_action_videos.py --out outputs/toy-videos
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from toyworld.videos import write_action_videos


@dataclass
class ToyVideoArgs:
    out: Path = Path("outputs/toy-videos")
    videos: int = 8
    size: int = 64
    seed: int = 0


def main() -> None:
    args = tyro.cli(ToyVideoArgs, description=__doc__)
    print(f"wrote {write_action_videos(args.out, args.videos, args.size, seed=args.seed)}")


if __name__ == "__main__":
    main()
