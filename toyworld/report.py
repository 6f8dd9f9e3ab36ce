"""The evaluation report: per-view image strips, an orbit GIF and the metrics table (markdown and JSON).

Every view's strip shows the unedited photo, each run's render and, for relevance-edit
runs, the rendered relevance; the GIF plays the photo and the runs side by side around
the held-out cameras. The folder is written atomically: a reader sees the old report or
the new one, never half of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from editaction.atomic import atomic_directory
from editaction.images import relevance_to_rgb, to_array, write_image
from toyworld.evaluation import HeldOutView, RenderedView, SceneTruth

TILE_SCALE = 2
"""Upscaling of each tile (nearest neighbour): toy scenes are 64 px."""
LABEL_HEIGHT = 14


def _labelled(tile: np.ndarray, label: str) -> np.ndarray:
    tile = np.repeat(np.repeat(tile, TILE_SCALE, axis=0), TILE_SCALE, axis=1)
    canvas = Image.new("RGB", (tile.shape[1], tile.shape[0] + LABEL_HEIGHT), "white")
    canvas.paste(Image.fromarray(tile), (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
    return np.asarray(canvas)


def _strip(tiles: list[tuple[str, np.ndarray]], gap: int = 4) -> np.ndarray:
    labelled = [_labelled(tile, label) for label, tile in tiles]
    spacer = np.full((labelled[0].shape[0], gap, 3), 255, dtype=np.uint8)
    parts = [part for tile in labelled for part in (tile, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def view_strip(truth_view: HeldOutView, renders: dict[str, RenderedView]) -> np.ndarray:
    """Photo, then each run's render followed by its relevance when it has one."""
    tiles = [("photo", to_array(truth_view.photo))]
    for label, render in renders.items():
        tiles.append((label, to_array(render.rgb)))
        if render.relevance is not None:
            tiles.append((f"{label}: relevance", relevance_to_rgb(render.relevance)))
    mask = truth_view.object_mask.numpy().astype(np.uint8) * 255
    tiles.append(("object mask", np.repeat(mask[..., None], 3, axis=-1)))
    return _strip(tiles)


def write_report(
    out: Path,
    truth: SceneTruth,
    renders: dict[str, dict[str, RenderedView]],
    metrics_markdown: str,
    summary: dict,
    gif_runs: tuple[str, ...],
) -> Path:
    """Write ``strips/<view>.png``, ``orbit.gif`` (photo beside ``gif_runs``), ``metrics.md`` and ``metrics.json``."""
    with atomic_directory(out) as staging:
        for view in truth.views:
            write_image(staging / "strips" / view.name, view_strip(view, {k: r[view.name] for k, r in renders.items()}))
        frames = [
            Image.fromarray(
                _strip([("photo", to_array(view.photo))] + [(k, to_array(renders[k][view.name].rgb)) for k in gif_runs])
            )
            for view in truth.views
        ]
        frames[0].save(staging / "orbit.gif", save_all=True, append_images=frames[1:], duration=250, loop=0)
        (staging / "metrics.md").write_text(metrics_markdown + "\n")
        (staging / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out
