"""Judge a capture's reconstruction and edits against the truth ``toyworld.capture`` kept aside.

- ns-process-data renames photos (sorted, ``frame_00001.jpg``, ...): ``processed_names`` maps them back, checked
  against its full-size copies;
- ``write_split`` names the held-out photos' frames as val/test and the rest as train in its transforms.json
  (photos COLMAP did not register are in neither);
- COLMAP's frame is arbitrary in scale, rotation and origin: ``umeyama`` finds the similarity that best maps the
  estimated camera centres onto the true ones, ``pose_errors`` then reports rotation (degrees) and position (% of
  the scene's radius) per photo;
- ``held_out_truth`` builds the evaluation's ``SceneTruth`` from the held-out frames at the training resolution and
  the true object masks, so ``toyworld.evaluation.measure`` judges the edits as on the toy scenes.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from editaction.atomic import write_text_atomic
from editaction.images import read_image
from toyworld.capture import CaptureTruth
from toyworld.evaluation import HeldOutView, SceneTruth
from toyworld.pairs import parse_recolour

PROCESSED_PREFIX = "frame_"


def processed_names(photos: list[str]) -> dict[str, str]:
    """Original photo name -> ns-process-data's name (nerfstudio 1.1.5 ``copy_images_list``: sorted, from 1)."""
    return {name: f"{PROCESSED_PREFIX}{index + 1:05d}{Path(name).suffix}" for index, name in enumerate(sorted(photos))}


PROCESSED_MATCH_TOLERANCE = 0.03
"""Largest mean absolute difference (0-1 scale) between a photo and its copy: ns-process-data re-encodes photos with
ffmpeg (when they carry EXIF), so the copies are near, not equal; distinct photos of a capture differ far more."""


def check_processed_names(mapping: dict[str, str], photos: Path, processed: Path) -> None:
    """Each mapped frame must show the photo it is mapped from (ns-process-data copies them into images/)."""
    for original, frame in mapping.items():
        difference = (read_image(photos / original).rgb - read_image(processed / "images" / frame).rgb).abs().mean()
        if difference > PROCESSED_MATCH_TOLERANCE:
            raise ValueError(f"{processed / 'images' / frame} is not {photos / original}: ns-process-data renamed "
                             "photos in another order than this version expects")  # fmt: skip


def write_split(processed: Path, mapping: dict[str, str], held_out: list[str]) -> dict[str, list[str]]:
    """Write train/val/test file lists into ``processed/transforms.json``; returns them."""
    path = processed / "transforms.json"
    transforms = json.loads(path.read_text())
    registered = {Path(frame["file_path"]).name for frame in transforms["frames"]}
    held_frames = {mapping[name] for name in held_out}
    test = sorted(f"images/{name}" for name in registered & held_frames)
    train = sorted(f"images/{name}" for name in registered - held_frames)
    if not test or not train:
        raise ValueError(f"COLMAP registered {len(train)} training and {len(test)} held-out photos: need both")
    split = {"train_filenames": train, "val_filenames": test, "test_filenames": test}
    write_text_atomic(path, json.dumps({**transforms, **split}, indent=4))
    return split


def umeyama(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (scale s, rotation R, translation t) minimising ||s R x + t - y||^2 over point pairs (N, 3).

    Umeyama (1991): from the SVD of the cross-covariance, with the reflection fixed.
    """
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3 or len(source) < 3:
        raise ValueError(f"need two (N >= 3, 3) point sets of one shape, got {source.shape} and {target.shape}")
    mean_s, mean_t = source.mean(0), target.mean(0)
    xs, xt = source - mean_s, target - mean_t
    u, singular, vt = np.linalg.svd(xt.T @ xs / len(source))
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign) / (xs**2).sum(1).mean())
    return scale, rotation, mean_t - scale * rotation @ mean_s


@dataclass(frozen=True)
class PoseErrors:
    registered: int
    photos: int
    rotation_degrees: dict[str, float]
    """Per photo (original name): angle between the aligned estimated and the true camera orientation."""
    position_percent: dict[str, float]
    """Per photo: distance between the aligned estimated and the true camera centre, % of the scene's radius."""

    def summary(self, names: list[str] | None = None) -> dict[str, float]:
        names = [n for n in (names or self.rotation_degrees) if n in self.rotation_degrees]
        rotation = [self.rotation_degrees[n] for n in names]
        position = [self.position_percent[n] for n in names]
        return {
            "photos": len(names),
            "rotation_median_deg": statistics.median(rotation),
            "rotation_max_deg": max(rotation),
            "position_median_pct": statistics.median(position),
            "position_max_pct": max(position),
        }


def rotation_angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    cosine = (np.trace(a.T @ b) - 1) / 2
    return math.degrees(math.acos(float(np.clip(cosine, -1.0, 1.0))))


def pose_errors(estimated: dict[str, np.ndarray], truth: dict[str, np.ndarray], scene_radius: float) -> PoseErrors:
    """Align ``estimated`` camera-to-world matrices (4x4, any similarity frame) to ``truth`` by their centres."""
    names = sorted(set(estimated) & set(truth))
    scale, rotation, translation = umeyama(
        np.stack([estimated[n][:3, 3] for n in names]), np.stack([truth[n][:3, 3] for n in names])
    )
    rotations, positions = {}, {}
    for name in names:
        centre = scale * rotation @ estimated[name][:3, 3] + translation
        positions[name] = float(np.linalg.norm(centre - truth[name][:3, 3]) / scene_radius * 100)
        rotations[name] = rotation_angle_degrees(rotation @ estimated[name][:3, :3], truth[name][:3, :3])
    return PoseErrors(len(names), len(truth), rotations, positions)


def estimated_poses(processed: Path, mapping: dict[str, str]) -> dict[str, np.ndarray]:
    """COLMAP's camera-to-world matrices (nerfstudio's convention) from ns-process-data, by original photo name."""
    by_frame = {Path(f["file_path"]).name: np.array(f["transform_matrix"]) for f in
                json.loads((processed / "transforms.json").read_text())["frames"]}  # fmt: skip
    return {original: by_frame[frame] for original, frame in mapping.items() if frame in by_frame}


def _max_pool(mask: np.ndarray, factor: int) -> np.ndarray:
    """A pixel of the smaller mask holds the object where any photo pixel it covers does (the masks' rule)."""
    h, w = mask.shape[0] // factor, mask.shape[1] // factor
    return mask[: h * factor, : w * factor].reshape(h, factor, w, factor).any(axis=(1, 3))


def held_out_truth(
    processed: Path, truth: CaptureTruth, mapping: dict[str, str], instruction: str, downscale: int
) -> SceneTruth:
    """The registered held-out photos as ns-process-data downscaled them, named by frame, with the object's mask."""
    edit = parse_recolour(instruction)
    if edit is None:
        raise ValueError(f"cannot evaluate {instruction!r}: a recolour instruction of the toy world is needed")
    named = [o["name"] for o in truth.objects if (o["colour"], o["shape"]) == (edit.colour, edit.shape)]
    if not named:
        raise ValueError(f"the capture has no {edit.colour} {edit.shape}")
    test = json.loads((processed / "transforms.json").read_text())["test_filenames"]
    frame_to_photo = {frame: photo for photo, frame in mapping.items()}
    folder = processed / ("images" if downscale == 1 else f"images_{downscale}")
    views = []
    for file_path in test:
        frame = Path(file_path).name
        photo = read_image(folder / frame).rgb
        mask = _max_pool(truth.mask(named[0], frame_to_photo[frame]), downscale)
        if mask.shape != tuple(photo.shape[1:]):
            raise ValueError(f"{folder / frame} is {tuple(photo.shape[1:])}, its mask {mask.shape} after /{downscale}")
        views.append(HeldOutView(frame, photo, torch.from_numpy(mask)))
    return SceneTruth(processed, instruction, edit, named[0], views)
