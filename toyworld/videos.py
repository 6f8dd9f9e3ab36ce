"""Synthetic action videos with labelled segments: a small stand-in for MPII-Cooking / EPIC-Kitchens.

Each video shows one coloured shape on a textured background moving in two labelled
segments. Instructions avoid shared filler words so token-disjoint negatives exist.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from toyworld.palette import COLOURS

SHAPES = ("square", "disk")
MOVES = {  # direction word -> (verb, unit step in pixels (dx, dy))
    "left": ("slide", (-1, 0)),
    "right": ("shift", (1, 0)),
    "up": ("lift", (0, -1)),
    "down": ("lower", (0, 1)),
}
ANNOTATION_COLUMNS = ("video", "start", "end", "instruction")


def _frame(size: int, colour: tuple[int, int, int], shape: str, centre: np.ndarray, texture: np.ndarray) -> np.ndarray:
    frame = texture.copy()
    radius = size // 8
    x, y = np.round(centre).astype(int)
    if shape == "square":
        frame[max(0, y - radius) : y + radius, max(0, x - radius) : x + radius] = colour
    else:
        cv2.circle(frame, (int(x), int(y)), radius, colour, thickness=-1)
    return frame[..., ::-1]  # OpenCV writes BGR


def write_action_videos(out: Path, videos: int = 6, size: int = 64, fps: int = 8, seed: int = 0) -> Path:
    """Write ``videos`` MP4 files and ``annotations.csv`` (seconds); returns the annotation path."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    segment_frames = fps  # one second per action
    for index in range(videos):
        colour_name = list(COLOURS)[index % len(COLOURS)]
        shape = SHAPES[index % len(SHAPES)]  # alternating shapes: token-disjoint partners always exist
        texture = (200 + 25 * rng.random((size, size, 1))).astype(np.uint8).repeat(3, axis=-1)
        centre = np.array([size / 2, size / 2])
        name = f"video_{index:03d}.mp4"
        writer = cv2.VideoWriter(str(out / name), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
        directions = rng.choice(list(MOVES), size=2, replace=False)
        frame_index = 0
        for direction in directions:
            verb, step = MOVES[direction]
            start = frame_index / fps
            for _ in range(segment_frames):
                writer.write(_frame(size, COLOURS[colour_name], shape, centre, texture))
                centre = centre + np.array(step) * (size / 4 / (segment_frames - 1))
                frame_index += 1
            end = (frame_index - 1) / fps
            rows.append((name, f"{start:.3f}", f"{end:.3f}", f"{verb} {colour_name} {shape} {direction}"))
        writer.release()
    annotations = out / "annotations.csv"
    with annotations.open("w", newline="") as handle:
        csv.writer(handle).writerows([ANNOTATION_COLUMNS, *rows])
    return annotations
