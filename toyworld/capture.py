"""A capture-like toy world: phone-style photos that structure-from-motion must pose, the truth kept aside.

The user path gets ``photos/`` only (JPEGs named as a phone names them, no poses), as a real
capture does; ``ns-process-data`` (COLMAP) must find the cameras. The toy palette's cubes and
balls (the embedded editor knows them) stand on ground that a low wall rings, both covered in
seeded multi-octave noise and blotches fixed to the world: SIFT needs texture that never
repeats (the periodic floor of ``toyworld.scene`` gave ambiguous matches and no sparse model,
docs/capture.md). Each photo gets its own exposure, white balance, sensor noise and JPEG
compression; cameras wander around two rings with jittered distance, aim and roll.

``truth/`` is for the evaluation only: which photos are held out, every photo's true
camera-to-world matrix (nerfstudio's OpenGL convention) and intrinsics, and per-object masks.
``orbit.mp4`` (optional) is a smooth orbit for ``ns-process-data video``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from editaction.atomic import atomic_directory, write_text_atomic
from editaction.images import write_image
from toyworld.palette import COLOURS
from toyworld.scene import (
    AMBIENT,
    LIGHT_DIRECTION,
    TARGET,
    SceneObject,
    _hit_ball,
    _hit_cube,
    _sky_colour,
    default_objects,
    orbit_camera,
)
from toyworld.scene_layouts import layout_scene

PHOTO_NAME = "IMG_{number:04d}.jpg"
FIRST_PHOTO_NUMBER = 1001
NOISE_EXTENT = 32.0
"""World units covered by the noise lattices (from -16 to 16): wider than anything a camera sees, so nothing wraps."""


@dataclass(frozen=True)
class CaptureSpec:
    """Everything that determines a capture; the same spec gives the same bytes."""

    objects: tuple[SceneObject, ...] = field(default_factory=default_objects)
    photos: int = 36
    """Photos in total, alternating between two rings of heights."""
    holdout_every: int = 3
    """Every n-th photo is held out for the evaluation (it still goes through COLMAP, never into training)."""
    width: int = 512
    height: int = 384
    fov_degrees: float = 55.0
    """Horizontal field of view."""
    radius: float = 2.6
    """Mean camera distance from the point the cameras aim at."""
    elevations_degrees: tuple[float, float] = (20.0, 35.0)
    wall_radius: float = 4.5
    wall_height: float = 1.4
    props: int = 10
    """Textured neutral boxes between the cameras and the wall, at varied heights: on a flat textured ground alone
    COLMAP's first pair is near-planar and the mapper began models with a wrong focal length (docs/capture.md)."""
    supersample: int = 2
    seed: int = 0
    """Seeds the textures, the cameras' wander and each photo's jitter."""
    exposure_stops: float = 0.3
    """Each photo's exposure is scaled by 2 ** uniform(-this, this)."""
    white_balance: float = 0.06
    """Each channel's gain is 1 + uniform(-this, this)."""
    noise_sigma: float = 0.012
    """Sensor noise: Gaussian, this fraction of full scale."""
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.photos < 4 or not 2 <= self.holdout_every <= self.photos:
            raise ValueError(
                f"need at least 4 photos and 2 <= holdout_every <= photos, got photos={self.photos}, "
                f"holdout_every={self.holdout_every}"
            )
        if max(self.width, self.height) < 64:
            raise ValueError(f"photos must be at least 64 px on the long side, got {self.width}x{self.height}")
        names = [obj.name for obj in self.objects]
        if len(set(names)) != len(names):
            raise ValueError(f"object names must be unique, got {names}")

    @property
    def focal(self) -> float:
        return 0.5 * self.width / math.tan(0.5 * math.radians(self.fov_degrees))


def layout_capture_spec(layout: int, **settings) -> CaptureSpec:
    """The capture of ``toyworld.scene_layouts.layout_scene(layout)``: its objects, the layout seeding the rest."""
    return CaptureSpec(objects=layout_scene(layout).spec.objects, seed=layout, **settings)


def photo_name(index: int) -> str:
    return PHOTO_NAME.format(number=FIRST_PHOTO_NUMBER + index)


def held_out_indices(spec: CaptureSpec) -> list[int]:
    return [index for index in range(spec.photos) if index % spec.holdout_every == 0]


# Textures -------------------------------------------------------------------------------------------------------


class ValueNoise:
    """Multi-octave value noise over the plane from seeded random lattices: smooth, non-periodic within the extent."""

    def __init__(self, seed: int, base_frequency: float, octaves: int, persistence: float = 0.6) -> None:
        rng = np.random.default_rng(seed)
        self.frequencies = [base_frequency * 2**k for k in range(octaves)]
        self.weights = np.array([persistence**k for k in range(octaves)])
        self.weights /= self.weights.sum()
        self.lattices = [rng.random((int(NOISE_EXTENT * f) + 2,) * 2) for f in self.frequencies]

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Noise in [0, 1] at plane coordinates (u, v), each in [-NOISE_EXTENT / 2, NOISE_EXTENT / 2] (clamped)."""
        total = np.zeros(np.shape(u))
        for frequency, weight, lattice in zip(self.frequencies, self.weights, self.lattices, strict=True):
            limit = lattice.shape[0] - 1.001
            x = np.clip((np.asarray(u) + NOISE_EXTENT / 2) * frequency, 0, limit)
            y = np.clip((np.asarray(v) + NOISE_EXTENT / 2) * frequency, 0, limit)
            x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
            fx, fy = x - x0, y - y0
            fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)  # smoothstep: no creases at lattice lines
            top = lattice[y0, x0] * (1 - fx) + lattice[y0, x0 + 1] * fx
            bottom = lattice[y0 + 1, x0] * (1 - fx) + lattice[y0 + 1, x0 + 1] * fx
            total += weight * (top * (1 - fy) + bottom * fy)
        return total


@dataclass
class Textures:
    """The world's surface patterns: fine grain, blotches (varied patches) and a slow tint, per surface."""

    grain: ValueNoise
    blotches: ValueNoise
    tint: ValueNoise

    @classmethod
    def for_surface(cls, seed: int, surface: int) -> Textures:
        base = 1000 * seed + 10 * surface
        return cls(ValueNoise(base + 1, 3.0, 4), ValueNoise(base + 2, 1.2, 3), ValueNoise(base + 3, 0.4, 2))

    def colour(self, u: np.ndarray, v: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
        """Greys and browns, far from the palette's hues so the editor's colour words do not match the ground."""
        # Octave sums crowd around 0.5: stretch them back to full contrast, then add sharp-edged blotches (corners
        # and blobs for SIFT) of a lighter and a darker tone.
        grain = 0.5 + 2.2 * (self.grain(u, v) - 0.5)
        blotch = 0.35 * (self.blotches(u, v) > 0.56) - 0.3 * (self.blotches(v + 3.1, u - 1.7) > 0.6)
        level = np.clip(grain + blotch, 0.0, 1.0)[..., None]
        tint = self.tint(u, v)[..., None]
        low = dark * (1 - tint) + 0.5 * (dark + light) * tint
        return low + (light - low) * level


GROUND_DARK, GROUND_LIGHT = np.array([0.30, 0.28, 0.25]), np.array([0.78, 0.74, 0.66])
WALL_DARK, WALL_LIGHT = np.array([0.42, 0.40, 0.40]), np.array([0.88, 0.86, 0.80])


# Cameras --------------------------------------------------------------------------------------------------------


def _roll(c2w: np.ndarray, angle: float) -> np.ndarray:
    """Rotate a camera about its viewing axis (its local z)."""
    c, s = math.cos(angle), math.sin(angle)
    rolled = c2w.copy()
    rolled[:3, :2] = c2w[:3, :2] @ np.array([[c, s], [-s, c]])
    return rolled


def camera_poses(spec: CaptureSpec) -> list[np.ndarray]:
    """Hand-held cameras: two rings of heights, each photo's distance, aim, azimuth and roll a little off."""
    rng = np.random.default_rng(spec.seed + 7)
    poses = []
    for index in range(spec.photos):
        azimuth = 2 * math.pi * index / spec.photos + rng.uniform(-0.06, 0.06)
        elevation = math.radians(spec.elevations_degrees[index % 2] + rng.uniform(-3, 3))
        radius = spec.radius * (1 + rng.uniform(-0.06, 0.06))
        target = TARGET + rng.uniform(-0.06, 0.06, size=3)
        poses.append(_roll(orbit_camera(azimuth, elevation, radius, target), math.radians(rng.uniform(-3, 3))))
    return poses


def orbit_poses(spec: CaptureSpec, frames: int) -> list[np.ndarray]:
    """A smooth orbit between the two rings' heights, for the video."""
    low, high = spec.elevations_degrees
    return [
        orbit_camera(
            2 * math.pi * k / frames,
            math.radians(low + (high - low) * 0.5 * (1 - math.cos(2 * math.pi * k / frames))),
            spec.radius,
        )
        for k in range(frames)
    ]


# Rendering ------------------------------------------------------------------------------------------------------


def _rays(spec: CaptureSpec, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = spec.supersample
    u, v = np.meshgrid((np.arange(spec.width * s) + 0.5) / s, (np.arange(spec.height * s) + 0.5) / s)
    camera = np.stack(
        [(u - spec.width / 2) / spec.focal, -(v - spec.height / 2) / spec.focal, -np.ones_like(u)], axis=-1
    )
    directions = camera @ c2w[:3, :3].T
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], directions.shape), directions


def _hit_box(origins: np.ndarray, directions: np.ndarray, centre: np.ndarray, half: float):
    """An axis-aligned cube of half side ``half`` about ``centre`` (``toyworld.scene``'s cube test, moved)."""
    return _hit_cube(origins, directions, _CentredCube(centre, half))


@dataclass(frozen=True)
class _CentredCube:
    centre: np.ndarray
    size: float


def _hit_wall(origins: np.ndarray, directions: np.ndarray, radius: float, height: float):
    """Inside of a vertical cylinder about the z axis: distance and the (angle-along-wall, height) coordinates."""
    a = directions[..., 0] ** 2 + directions[..., 1] ** 2
    b = origins[..., 0] * directions[..., 0] + origins[..., 1] * directions[..., 1]
    c = origins[..., 0] ** 2 + origins[..., 1] ** 2 - radius**2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b + np.sqrt(np.maximum(b * b - a * c, 0.0))) / a  # cameras are inside: the far root
    points = origins + np.nan_to_num(t, posinf=0.0)[..., None] * directions
    t = np.where((a > 1e-12) & (points[..., 2] >= 0) & (points[..., 2] <= height), t, np.inf)
    along = np.arctan2(points[..., 1], points[..., 0]) * radius  # arc length: the texture is not stretched
    return t, along, points[..., 2], points


def prop_boxes(spec: CaptureSpec) -> list[SceneObject]:
    """Boxes (as cubes of ``toyworld.scene``) on a ring between the cameras and the wall, of seeded sizes, some
    lifted (stacked-crate heights): depth for SfM beyond the ground plane. Their colour is the texture's."""
    rng = np.random.default_rng(spec.seed + 5)
    boxes = []
    for k in range(spec.props):
        azimuth = 2 * math.pi * (k + rng.uniform(0.2, 0.8)) / max(spec.props, 1)
        distance = rng.uniform(spec.radius + 0.5, spec.wall_radius - 0.5)
        half = rng.uniform(0.2, 0.45)
        box = SceneObject(f"prop_{k}", "cube", "red", distance * math.cos(azimuth), distance * math.sin(azimuth), half)
        boxes.append((box, rng.uniform(0.0, 0.6)))
    return boxes


class CaptureRenderer:
    """Renders views of a capture world: the same textures for every view."""

    def __init__(self, spec: CaptureSpec) -> None:
        self.spec = spec
        self.ground = Textures.for_surface(spec.seed, 0)
        self.wall = Textures.for_surface(spec.seed, 1)
        self.props = Textures.for_surface(spec.seed, 2)
        self.prop_boxes = prop_boxes(spec)

    def render(self, c2w: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Linear float RGB (H, W, 3) in [0, 1] before any camera effect, and a boolean mask per object."""
        spec, s = self.spec, self.spec.supersample
        origins, directions = _rays(spec, c2w)
        colour = np.array(_sky_colour(directions))  # written in place below, surface by surface
        depth = np.full(directions.shape[:-1], np.inf)
        owner = np.full(directions.shape[:-1], -1)

        t_wall, along, up, wall_points = _hit_wall(origins, directions, spec.wall_radius, spec.wall_height)
        wall = np.isfinite(t_wall)
        normals = -wall_points[..., :2] / spec.wall_radius
        wall_shade = AMBIENT + (1 - AMBIENT) * np.clip(normals @ LIGHT_DIRECTION[:2], 0.0, 1.0)
        colour[wall] = self.wall.colour(along[wall], up[wall], WALL_DARK, WALL_LIGHT) * wall_shade[wall][:, None]
        depth = np.where(wall, t_wall, depth)

        with np.errstate(divide="ignore", invalid="ignore"):
            t_floor = np.where(directions[..., 2] < 0, -origins[..., 2] / directions[..., 2], np.inf)
        floor = t_floor < depth
        points = origins + np.where(floor, t_floor, 0.0)[..., None] * directions
        floor_shade = AMBIENT + (1 - AMBIENT) * LIGHT_DIRECTION[2]
        colour[floor] = self.ground.colour(points[floor][:, 0], points[floor][:, 1], GROUND_DARK, GROUND_LIGHT)
        colour[floor] *= floor_shade
        depth = np.where(floor, t_floor, depth)

        for box, lift in self.prop_boxes:
            t, box_normals = _hit_box(origins, directions, box.centre + np.array([0, 0, lift]), box.size)
            nearer = t < depth
            hit = origins + np.where(nearer, t, 0.0)[..., None] * directions
            # Texture coordinates from the two axes along each face: one pattern wrapped over the box.
            u = np.where(np.abs(box_normals[..., 0]) > 0.5, hit[..., 1], hit[..., 0]) + 7 * box.x
            v = np.where(np.abs(box_normals[..., 2]) > 0.5, hit[..., 1], hit[..., 2]) + 5 * box.y
            shade = AMBIENT + (1 - AMBIENT) * np.clip(box_normals[nearer] @ LIGHT_DIRECTION, 0.0, 1.0)
            texture = self.props.colour(u[nearer] * 2, v[nearer] * 2, WALL_DARK * 0.8, GROUND_LIGHT)
            colour[nearer] = texture * shade[:, None]
            depth = np.where(nearer, t, depth)

        for index, obj in enumerate(spec.objects):
            t, obj_normals = (_hit_ball if obj.shape == "ball" else _hit_cube)(origins, directions, obj)
            nearer = t < depth
            shade = AMBIENT + (1 - AMBIENT) * np.clip(obj_normals @ LIGHT_DIRECTION, 0.0, 1.0)
            albedo = np.array(COLOURS[obj.colour]) / 255.0
            colour = np.where(nearer[..., None], albedo * shade[..., None], colour)
            depth = np.where(nearer, t, depth)
            owner = np.where(nearer, index, owner)

        masks = {obj.name: box_pool(owner == index, s) > 0 for index, obj in enumerate(spec.objects)}
        return np.clip(box_pool(colour, s), 0.0, 1.0), masks


def box_pool(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter resize by an integer factor: (H, W, ...) -> (H / factor, W / factor, ...)."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return image[: h * factor, : w * factor].reshape(h, factor, w, factor, *image.shape[2:]).mean(axis=(1, 3))


def camera_effects(rgb: np.ndarray, rng: np.random.Generator, spec: CaptureSpec) -> np.ndarray:
    """One photo's exposure and white balance, then sensor noise; 8-bit."""
    gain = 2 ** rng.uniform(-spec.exposure_stops, spec.exposure_stops)
    balance = 1 + rng.uniform(-spec.white_balance, spec.white_balance, size=3)
    noisy = rgb * gain * balance + rng.normal(0.0, spec.noise_sigma, size=rgb.shape)
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)


EXIF_MAKE, EXIF_MODEL, EXIF_IFD, EXIF_FOCAL_35MM = 0x010F, 0x0110, 0x8769, 0xA405


def _write_jpeg(path: Path, rgb: np.ndarray, spec: CaptureSpec) -> None:
    """A JPEG with the EXIF a phone writes: COLMAP starts from its 35 mm-equivalent focal length, as for real
    photos (without it COLMAP guesses 1.2 x the long side and the mapper began from a wrong focal length)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[EXIF_MAKE], exif[EXIF_MODEL] = "toyworld", "capture"
    exif.get_ifd(EXIF_IFD)[EXIF_FOCAL_35MM] = round(35 * spec.focal / max(spec.width, spec.height))
    Image.fromarray(rgb).save(path, quality=spec.jpeg_quality, exif=exif.tobytes())


# The capture folder ---------------------------------------------------------------------------------------------


def intrinsics(spec: CaptureSpec) -> dict:
    return {"w": spec.width, "h": spec.height, "fl_x": spec.focal, "fl_y": spec.focal,
            "cx": spec.width / 2, "cy": spec.height / 2}  # fmt: skip


def write_capture(out: Path, spec: CaptureSpec = CaptureSpec(), video_frames: int = 0) -> Path:
    """Write ``photos/``, ``truth/`` (held-out list, poses, masks, objects) and, with ``video_frames``, ``orbit.mp4``.

    The folder appears whole or not at all (``truth/capture.json`` last inside it); returns ``out``.
    """
    out = Path(out)
    if (out / "truth" / "capture.json").is_file():
        raise FileExistsError(f"{out} already holds a capture; choose another folder or delete it")
    renderer = CaptureRenderer(spec)
    rng = np.random.default_rng(spec.seed + 11)
    held_out = held_out_indices(spec)
    with atomic_directory(out) as staging:
        poses = {}
        for index, c2w in enumerate(tqdm(camera_poses(spec), desc="photographing the capture world", unit="photo")):
            name = photo_name(index)
            rgb, masks = renderer.render(c2w)
            _write_jpeg(staging / "photos" / name, camera_effects(rgb, rng, spec), spec)
            for obj_name, mask in masks.items():
                write_image(
                    staging / "truth" / "masks" / obj_name / f"{Path(name).stem}.png", mask.astype(np.uint8) * 255
                )
            poses[name] = c2w.tolist()
        if video_frames:
            write_orbit_video(staging / "orbit.mp4", renderer, video_frames)
        description = {
            "spec": {k: v for k, v in asdict(spec).items() if k != "objects"},
            "objects": [{**asdict(obj), "rgb": COLOURS[obj.colour]} for obj in spec.objects],
            "intrinsics": intrinsics(spec),
            "held_out": [photo_name(index) for index in held_out],
            "poses": poses,
            "scene_radius": spec.radius,
            "masks": "masks/<object name>/<photo stem>.png: 255 where the object is visible, even partly",
        }
        write_text_atomic(staging / "truth" / "capture.json", json.dumps(description, indent=1))
    return out


def write_orbit_video(path: Path, renderer: CaptureRenderer, frames: int, fps: int = 12) -> Path:
    """A smooth orbit as an H.264 MP4 (ffmpeg), each frame with the capture's camera effects."""
    if shutil.which("ffmpeg") is None:
        raise FileNotFoundError("ffmpeg is not on PATH (apt-get install ffmpeg)")
    rng = np.random.default_rng(renderer.spec.seed + 13)
    with tempfile.TemporaryDirectory() as tmp:
        for k, c2w in enumerate(tqdm(orbit_poses(renderer.spec, frames), desc="filming the orbit", unit="frame")):
            rgb, _ = renderer.render(c2w)
            Image.fromarray(camera_effects(rgb, rng, renderer.spec)).save(Path(tmp) / f"{k:04d}.png")
        command = ["ffmpeg", "-y", "-loglevel", "error", "-framerate", str(fps), "-i", str(Path(tmp) / "%04d.png"),
                   "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
        subprocess.run(command, check=True)
    return path


@dataclass(frozen=True)
class CaptureTruth:
    """What the evaluation reads from ``truth/capture.json``."""

    directory: Path
    held_out: list[str]
    poses: dict[str, np.ndarray]
    objects: list[dict]
    scene_radius: float

    def mask(self, object_name: str, photo: str) -> np.ndarray:
        from editaction.images import read_image

        return (
            read_image(self.directory / "truth" / "masks" / object_name / f"{Path(photo).stem}.png").rgb[0].numpy()
            > 0.5
        )


def read_truth(capture: Path) -> CaptureTruth:
    capture = Path(capture)
    path = capture / "truth" / "capture.json"
    if not path.is_file():
        raise FileNotFoundError(f"no capture at {capture}: truth/capture.json is missing (scripts/make_capture.py)")
    data = json.loads(path.read_text())
    poses = {name: np.array(matrix) for name, matrix in data["poses"].items()}
    return CaptureTruth(capture, data["held_out"], poses, data["objects"], data["scene_radius"])
