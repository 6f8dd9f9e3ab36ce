"""A toy 3D scene in nerfstudio's format, ray cast on the CPU with exact per-view object masks.

Cubes and balls in the toy palette stand on a checkered floor under a sky gradient.
Cameras circle the objects on two rings; every third view is held out for evaluation.
The output folder is what ``ns-train ... nerfstudio-data --data <folder>`` reads
(``transforms.json`` with train/val/test file lists), plus ``masks/<object>/`` with the
ground-truth pixels of each object in each view and ``scene.json`` describing the objects.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from editaction.atomic import write_text_atomic
from editaction.images import write_image
from toyworld.palette import COLOURS

SHAPES = ("cube", "ball")


@dataclass(frozen=True)
class SceneObject:
    """One object: a ball (radius ``size``) or an axis-aligned cube (half side ``size``) resting on the floor."""

    name: str
    shape: str
    colour: str
    x: float
    y: float
    size: float

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"colour must be one of {sorted(COLOURS)}, got {self.colour!r}")

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.y, self.size])


def default_objects() -> tuple[SceneObject, ...]:
    return (
        SceneObject("red_cube", "cube", "red", -0.45, -0.15, 0.28),
        SceneObject("blue_ball", "ball", "blue", 0.45, 0.2, 0.3),
        SceneObject("green_cube", "cube", "green", 0.05, 0.6, 0.18),
    )


@dataclass(frozen=True)
class SceneSpec:
    """Everything that determines a scene; the same spec and seed give the same bytes."""

    objects: tuple[SceneObject, ...] = field(default_factory=default_objects)
    views: int = 36
    """Cameras in total, alternating between the two rings."""
    holdout_every: int = 3
    """Every n-th view is held out (val and test); the rest train."""
    size: int = 64
    """Image width and height in pixels."""
    fov_degrees: float = 50.0
    radius: float = 2.6
    """Camera distance from the scene centre."""
    elevations_degrees: tuple[float, float] = (22.0, 40.0)
    supersample: int = 3
    """Rays per pixel side, averaged (anti-aliasing); masks hold every pixel an object touches."""
    seed: int = 0
    """Jitters the camera azimuths and the floor pattern's phase."""

    def __post_init__(self) -> None:
        if self.views < 2 or not 2 <= self.holdout_every <= self.views:
            raise ValueError(f"need at least 2 views and 2 <= holdout_every <= views, got {self}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        names = [obj.name for obj in self.objects]
        if len(set(names)) != len(names):
            raise ValueError(f"object names must be unique, got {names}")


LIGHT_DIRECTION = np.array([0.4, -0.5, 0.77]) / np.linalg.norm([0.4, -0.5, 0.77])
AMBIENT = 0.35
TARGET = np.array([0.0, 0.1, 0.2])
"""The point the cameras look at, a little above the floor among the objects."""


def look_at(position: np.ndarray, target: np.ndarray = TARGET) -> np.ndarray:
    """Camera-to-world matrix (4x4) in nerfstudio's OpenGL convention: x right, y up, looking down -z."""
    backward = position - target
    backward /= np.linalg.norm(backward)
    right = np.cross(np.array([0.0, 0.0, 1.0]), backward)
    right /= np.linalg.norm(right)
    up = np.cross(backward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, backward, position
    return c2w


def orbit_camera(azimuth: float, elevation: float, radius: float, target: np.ndarray = TARGET) -> np.ndarray:
    """Camera-to-world matrix of a camera ``radius`` from ``target`` at the given angles (radians), aimed at it."""
    direction = np.array(
        [math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation)]
    )
    return look_at(target + radius * direction, target)


def camera_poses(spec: SceneSpec) -> list[np.ndarray]:
    rng = np.random.default_rng(spec.seed)
    poses = []
    for index in range(spec.views):
        azimuth = 2 * math.pi * index / spec.views + rng.uniform(-0.05, 0.05)
        poses.append(orbit_camera(azimuth, math.radians(spec.elevations_degrees[index % 2]), spec.radius))
    return poses


def focal_length(spec: SceneSpec) -> float:
    return 0.5 * spec.size / math.tan(0.5 * math.radians(spec.fov_degrees))


def _rays(spec: SceneSpec, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Supersampled ray origins and unit directions, shape (S*H, S*W, 3)."""
    n = spec.size * spec.supersample
    coords = (np.arange(n) + 0.5) / spec.supersample  # pixel coordinates of the sub-pixel centres
    u, v = np.meshgrid(coords, coords)
    focal = focal_length(spec)
    directions_camera = np.stack([(u - spec.size / 2) / focal, -(v - spec.size / 2) / focal, -np.ones_like(u)], axis=-1)
    directions = directions_camera @ c2w[:3, :3].T
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], directions.shape), directions


def _hit_ball(origins, directions, obj: SceneObject):
    offset = origins - obj.centre
    b = np.sum(offset * directions, axis=-1)
    c = np.sum(offset * offset, axis=-1) - obj.size**2
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc > 0) & (t > 0), t, np.inf)
    normals = origins + np.where(np.isfinite(t), t, 0.0)[..., None] * directions - obj.centre
    return t, normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-9)


def _hit_cube(origins, directions, obj: SceneObject):
    low, high = obj.centre - obj.size, obj.centre + obj.size
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / directions
        t1, t2 = (low - origins) * inverse, (high - origins) * inverse
    t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
    t = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
    axis = np.argmax(np.minimum(t1, t2), axis=-1)
    normals = np.zeros_like(directions)
    np.put_along_axis(normals, axis[..., None], -np.sign(np.take_along_axis(directions, axis[..., None], -1)), -1)
    return t, normals


def _floor_colour(points: np.ndarray, phase: float) -> np.ndarray:
    checks = (np.floor(points[..., 0] * 2.5 + phase) + np.floor(points[..., 1] * 2.5 + phase)) % 2
    grain = 0.04 * np.sin(points[..., 0] * 23.0) * np.sin(points[..., 1] * 19.0)
    level = 0.55 + 0.2 * checks + grain
    return np.stack([level, level * 0.95, level * 0.85], axis=-1)


def _sky_colour(directions: np.ndarray) -> np.ndarray:
    height = np.clip(directions[..., 2], -1.0, 1.0)[..., None]
    horizon, zenith = np.array([0.85, 0.88, 0.92]), np.array([0.45, 0.6, 0.85])
    return horizon + (zenith - horizon) * np.clip(height, 0.0, 1.0)


def render_view(spec: SceneSpec, c2w: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One view: 8-bit RGB (H, W, 3) and a boolean (H, W) mask per object: the pixels it is visible in, even partly."""
    origins, directions = _rays(spec, c2w)
    depth = np.full(directions.shape[:-1], np.inf)
    colour = _sky_colour(directions)
    owner = np.full(directions.shape[:-1], -1)

    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(directions[..., 2] < 0, -origins[..., 2] / directions[..., 2], np.inf)
    floor = np.isfinite(t_floor)
    points = origins + np.where(floor, t_floor, 0.0)[..., None] * directions
    floor_shade = AMBIENT + (1 - AMBIENT) * LIGHT_DIRECTION[2]
    colour = np.where(floor[..., None], _floor_colour(points, phase=0.37 * spec.seed) * floor_shade, colour)
    depth = np.where(floor, t_floor, depth)

    for index, obj in enumerate(spec.objects):
        t, normals = (_hit_ball if obj.shape == "ball" else _hit_cube)(origins, directions, obj)
        nearer = t < depth
        shade = AMBIENT + (1 - AMBIENT) * np.clip(normals @ LIGHT_DIRECTION, 0.0, 1.0)
        albedo = np.array(COLOURS[obj.colour]) / 255.0
        colour = np.where(nearer[..., None], albedo * shade[..., None], colour)
        depth = np.where(nearer, t, depth)
        owner = np.where(nearer, index, owner)

    s = spec.supersample
    pooled = colour.reshape(spec.size, s, spec.size, s, 3).mean(axis=(1, 3))
    rgb = np.clip(np.rint(pooled * 255), 0, 255).astype(np.uint8)
    masks = {}
    for index, obj in enumerate(spec.objects):
        coverage = (owner == index).reshape(spec.size, s, spec.size, s).mean(axis=(1, 3))
        masks[obj.name] = coverage > 0
    return rgb, masks


def write_scene(out: Path, spec: SceneSpec = SceneSpec()) -> Path:
    """Render every view of ``spec`` into ``out``; returns the path of ``transforms.json``."""
    out = Path(out)
    if (out / "transforms.json").exists():
        raise FileExistsError(f"{out} already holds a scene; choose another folder or delete it")
    out.mkdir(parents=True, exist_ok=True)
    frames, train, held_out = [], [], []
    for index, c2w in enumerate(tqdm(camera_poses(spec), desc="rendering the toy scene", unit="view")):
        name = f"frame_{index:05d}.png"
        rgb, masks = render_view(spec, c2w)
        write_image(out / "images" / name, rgb)
        for obj_name, mask in masks.items():
            write_image(out / "masks" / obj_name / name, mask.astype(np.uint8) * 255)
        frames.append({"file_path": f"images/{name}", "transform_matrix": c2w.tolist()})
        (held_out if index % spec.holdout_every == 0 else train).append(f"images/{name}")

    focal = focal_length(spec)
    transforms = {
        "camera_model": "OPENCV",
        "w": spec.size,
        "h": spec.size,
        "fl_x": focal,
        "fl_y": focal,
        "cx": spec.size / 2,
        "cy": spec.size / 2,
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "frames": frames,
        "train_filenames": train,
        "val_filenames": held_out,
        "test_filenames": held_out,
    }
    description = {
        "spec": {k: v for k, v in asdict(spec).items() if k != "objects"},
        "objects": [{**asdict(obj), "rgb": COLOURS[obj.colour]} for obj in spec.objects],
        "masks": "masks/<object name>/<image name>: 255 where the object is visible",
    }
    write_text_atomic(out / "scene.json", json.dumps(description, indent=2))
    write_text_atomic(
        out / "transforms.json", json.dumps(transforms, indent=2)
    )  # last: its presence marks a complete scene
    return out / "transforms.json"
