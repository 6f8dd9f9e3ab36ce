"""Memory of the training images: relevance-edit's datamanager versus nerfacto's VanillaDataManager.

    python bench/memory_3d.py                                    # 100 views of 800x600 (CPU: about a minute)
    python bench/memory_3d.py --views 300 --width 1600 --height 900

Writes a synthetic nerfstudio-data scene into a temporary folder (random-noise JPEG views
from a ring of cameras: memory does not depend on the pictures), then builds each
datamanager of the full-size presets in a fresh subprocess, so their peak resident sizes
compare. relevance-edit's also gets a relevance target for every view, as its pipeline
does before the first edit. Buffer bytes are the storages of the image-sized tensors the
datamanager references (its attributes, their dicts, the training cache dataloader's
batch) over views x height x width; the last line gives relevance-edit's.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import psutil
import torch
import tyro

import editaction  # noqa: F401  (its upstream-warning filters, before nerfstudio warns on import)

# isort: split
from measure import MIB, peak_memory_mib  # bench/measure.py (scripts run from bench/)
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.utils.dataloaders import CacheDataloader

from relevance_nerf.datamanager import RelevanceEditDataManagerConfig
from relevance_nerf.method_configs import NERFACTO_RAYS, datamanager_config
from toyworld.scene import orbit_camera

VARIANTS = {"nerfacto": VanillaDataManagerConfig, "relevance-edit": RelevanceEditDataManagerConfig}


@dataclass
class BenchArgs:
    views: int = 100
    """Training views; a quarter as many more are held out (val)."""
    width: int = 800
    height: int = 600
    variant: Literal["all", "nerfacto", "relevance-edit"] = "all"
    """One datamanager, measured in this process (the subprocesses' mode); all: each in its own subprocess."""
    data: Path | None = None
    """A nerfstudio-data scene; default: the synthetic one, written into a temporary folder."""


def write_noise_scene(out: Path, views: int, width: int, height: int) -> Path:
    """``views`` training and ``views // 4`` held-out noise JPEGs on a ring of cameras, as nerfstudio-data."""
    rng = np.random.default_rng(0)
    focal = 0.5 * width / math.tan(math.radians(25.0))  # a 50 degree horizontal field of view
    frames, held_out = [], []
    (out / "images").mkdir(parents=True)
    for index in range(views + views // 4):
        name = f"images/frame_{index:05d}.jpg"
        cv2.imwrite(str(out / name), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        c2w = orbit_camera(2 * math.pi * index / (views + views // 4), math.radians(30.0), 3.0)
        frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
        if index >= views:
            held_out.append(name)
    transforms = {
        "camera_model": "OPENCV", "w": width, "h": height, "fl_x": focal, "fl_y": focal,
        "cx": width / 2, "cy": height / 2, "frames": frames,
        "train_filenames": [f["file_path"] for f in frames[:views]],
        "val_filenames": held_out, "test_filenames": held_out,
    }  # fmt: skip
    (out / "transforms.json").write_text(json.dumps(transforms))
    return out


def held_bytes(datamanager: VanillaDataManager) -> int:
    """Bytes of the tensor storages the datamanager references for training (each storage once)."""
    storages: dict[int, int] = {}

    def visit(value: object) -> None:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, CacheDataloader) and value.dataset is datamanager.train_dataset:
            visit(value.cached_collated_batch)

    for value in vars(datamanager).values():
        visit(value)
    return sum(storages.values())


def measure(variant: str, data: Path) -> dict[str, float]:
    """Set up one datamanager here: its peak and held memory, and its buffer bytes per training pixel."""
    config = datamanager_config(VARIANTS[variant], NERFACTO_RAYS)
    config.data = data
    built = {}

    def setup() -> None:
        datamanager = config.setup(device="cpu", test_mode="val")
        if hasattr(datamanager, "set_relevance"):  # one target per view, as the pipeline writes them
            camera = datamanager.train_dataset.cameras[0]
            for index in range(len(datamanager.train_dataset)):
                datamanager.set_relevance(index, torch.rand(int(camera.height), int(camera.width), 1))
        built["datamanager"] = datamanager

    before = psutil.Process().memory_info().rss
    peak_extra = peak_memory_mib(setup, "cpu")
    datamanager = built["datamanager"]
    camera = datamanager.train_dataset.cameras[0]
    pixels = len(datamanager.train_dataset) * int(camera.height) * int(camera.width)
    return {
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB,  # Linux: KiB
        "peak_extra": peak_extra,
        "held_extra": (psutil.Process().memory_info().rss - before) / MIB,
        "buffer_mib": held_bytes(datamanager) / MIB,
        "bytes_per_pixel": held_bytes(datamanager) / pixels,
    }


def main() -> None:
    args = tyro.cli(BenchArgs, description=__doc__)
    if args.variant != "all":
        assert args.data is not None
        print(json.dumps(measure(args.variant, args.data)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or write_noise_scene(Path(tmp) / "scene", args.views, args.width, args.height)
        results = {}
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--data", str(data)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[variant] = json.loads(output.strip().splitlines()[-1])
    print(f"\n{args.views} training views of {args.width}x{args.height}, each datamanager in its own process")
    print("| datamanager | peak RSS MiB | setup peak extra MiB | held extra MiB | buffers MiB | bytes / training px |")
    print("|---|---|---|---|---|---|")
    for variant, result in results.items():
        name = f"{variant} ({VARIANTS[variant].__name__.removesuffix('Config')})"
        print(
            f"| {name} | {result['peak_rss']:.0f} | {result['peak_extra']:.0f} | {result['held_extra']:.0f} "
            f"| {result['buffer_mib']:.0f} | {result['bytes_per_pixel']:.2f} |"
        )
    print(f"image buffers: {results['relevance-edit']['bytes_per_pixel']:.2f} bytes per training pixel")


if __name__ == "__main__":
    main()
