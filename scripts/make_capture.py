"""Photograph the capture-like toy world: photos/ for the user path, truth/ for the evaluation, orbit.mp4.

python scripts/make_capture.py --out outputs/capture --layout 3001 --video-frames 48

Then pose the photos: ns-process-data images --data outputs/capture/photos --output-dir outputs/capture-processed
--no-gpu --matching-method exhaustive
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

from toyworld.capture import layout_capture_spec, write_capture
from toyworld.scene_layouts import layout_scene


@dataclass
class MakeCaptureArgs:
    out: Path
    layout: int = 3001
    """Seed of the objects' layout (``toyworld.scene_layouts``); its instruction is printed."""
    photos: int = 36
    width: int = 512
    height: int = 384
    video_frames: int = 0
    """Frames of orbit.mp4 (12 per second); 0: no video."""


def main() -> None:
    args = tyro.cli(MakeCaptureArgs, description=__doc__)
    scene = layout_scene(args.layout)
    try:
        spec = layout_capture_spec(args.layout, photos=args.photos, width=args.width, height=args.height)
        write_capture(args.out, spec, video_frames=args.video_frames)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(f"{args.out}/photos: {args.photos} photos; instruction of this layout: {scene.instruction!r}")


if __name__ == "__main__":
    main()
