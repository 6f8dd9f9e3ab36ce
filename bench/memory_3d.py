"""Memory of the training images: relevance-edit's datamanager versus nerfacto's VanillaDataManager; the edit
store's bytes on disk; the relevance warm-up's peak memory as the views grow.

    python bench/memory_3d.py                                    # all three parts (CPU: about 8 minutes)
    python bench/memory_3d.py --views 300 --width 1600 --height 900 --parts datamanagers
    python bench/memory_3d.py --parts store warm-up

datamanagers: writes a synthetic nerfstudio-data scene into a temporary folder (random-noise JPEG views
from a ring of cameras: memory does not depend on the pictures), then builds each
datamanager of the full-size presets in a fresh subprocess, so their peak resident sizes
compare. relevance-edit's also gets a relevance target for every view, as its pipeline
does before the first edit. Buffer bytes are the storages of the image-sized tensors the
datamanager references (its attributes, their dicts, the training cache dataloader's
batch) over views x height x width; the last line gives relevance-edit's.

store: a relevance-edit-tiny pipeline (a tiny random InstructPix2Pix built offline) on a rendered toy scene,
bound to a run folder as a training run binds it, computes the relevance targets and edits every training view
once with the mask threshold at 0 (every pixel edited); the bytes under ``edits/`` over views x height x width.
The random editor's edits are noise-like: far harder for PNG to compress than photos or real edits.

warm-up: ``RelevanceEditPipeline.compute_relevance_targets`` alone, on a bound pipeline of each view count in a
fresh subprocess: its extra resident memory at the peak, less the 8-bit relevance buffer it fills (views x
height x width bytes, growing with the views by design); the ratio of the two counts' remainders.
"""

from __future__ import annotations

import copy
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
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
from relevance_nerf.edit_store import EDITS_DIR, TARGETS, EditStore
from relevance_nerf.method_configs import NERFACTO_RAYS, datamanager_config
from relevance_nerf.pipeline import RelevanceEditPipeline
from toyworld import TOY_SETTINGS, SceneSpec, write_scene
from toyworld.method_configs import relevance_edit_tiny
from toyworld.scene import orbit_camera
from toyworld.tiny import build_pipeline, save_pipeline

VARIANTS = {"nerfacto": VanillaDataManagerConfig, "relevance-edit": RelevanceEditDataManagerConfig}
PARTS = ("datamanagers", "store", "warm-up")
TEXT = "make the red cube blue"


@dataclass
class BenchArgs:
    views: int = 100
    """Training views; a quarter as many more are held out (val)."""
    width: int = 800
    height: int = 600
    parts: tuple[Literal["datamanagers", "store", "warm-up"], ...] = PARTS
    """What to measure: the datamanagers (--views, --width, --height), the edit store, the relevance warm-up."""
    store_views: int = 24
    """Training views of the toy scene whose edit store is measured (half as many more are held out)."""
    store_size: int = 128
    """Width and height of the toy scene's views."""
    warmup_views: tuple[int, ...] = (100, 300)
    """Training view counts whose relevance warm-up is measured, each in its own subprocess."""
    warmup_width: int = 64
    warmup_height: int = 48
    variant: Literal["all", "nerfacto", "relevance-edit", "warm-up"] = "all"
    """One datamanager, or the warm-up on --data with --editor, measured in this process (the subprocesses'
    mode); all: each in its own subprocess."""
    data: Path | None = None
    """A nerfstudio-data scene; default: the synthetic one, written into a temporary folder."""
    editor: Path | None = None
    """The editor checkpoint of the warm-up subprocess (default: a tiny random one, built offline)."""


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


def tiny_editor(out: Path) -> Path:
    """A tiny random InstructPix2Pix checkpoint with the toy editor's recommended settings, built offline."""
    path = save_pipeline(build_pipeline(seed=0), out)
    TOY_SETTINGS.save(path)
    return path


def edit_pipeline(data: Path, editor: Path) -> RelevanceEditPipeline:
    """relevance-edit-tiny's pipeline on ``data`` with ``editor``, set up for training on the CPU."""
    config = copy.deepcopy(relevance_edit_tiny.config.pipeline)
    config.datamanager.data = data
    config.text, config.editor = TEXT, str(editor)
    return config.setup(device="cpu", test_mode="val")


def measure_store(data: Path, editor: Path, run_dir: Path) -> dict[str, float]:
    """Bytes of ``run_dir/edits`` per training pixel, after the relevance targets and one edit of every view.

    The pipeline is bound to ``run_dir`` as a training run binds it; the mask threshold is 0, so every pixel of
    every view is the editor's (a training run's masks leave some of each view the photo).
    """
    pipeline = edit_pipeline(data, editor)
    pipeline.bind_run(run_dir)
    pipeline.compute_relevance_targets()
    pipeline.set_edit(threshold=0.0)  # every pixel edited (the viewer's slider at 0)
    order, batch = pipeline.view_order, pipeline.config.editor_batch_size
    for start in range(0, len(order), batch):
        pipeline.edit_views(order[start : start + batch])
    datamanager = pipeline.datamanager
    views, height, width = datamanager.original_pixels.shape[:3]
    pixels = views * height * width
    store = EditStore(run_dir)
    if store.view_indices() != list(range(views)):
        raise RuntimeError(f"expected every view under {store.directory / 'views'}, got {store.view_indices()}")
    files = {path.relative_to(store.directory): path.stat().st_size for path in store.directory.rglob("*")}
    files = {path: size for path, size in files.items() if (store.directory / path).is_file()}
    edited_views = sum(size for path, size in files.items() if path.parts[0] == "views")
    targets = files.get(Path(TARGETS), 0)
    photos = sum(Path(name).stat().st_size for name in datamanager.train_dataset.image_filenames)
    changed = (datamanager.image_batch["image"] != datamanager.original_pixels).any(dim=-1).float().mean()
    return {
        "views": views,
        "width": width,
        "height": height,
        "views_bytes_per_pixel": edited_views / pixels,
        "targets_bytes_per_pixel": targets / pixels,
        "other_bytes_per_pixel": (sum(files.values()) - edited_views - targets) / pixels,
        "bytes_per_pixel": sum(files.values()) / pixels,
        "store_mib": sum(files.values()) / MIB,
        "photos_bytes_per_pixel": photos / pixels,
        "changed_fraction": changed.item(),
    }


def measure_warmup(data: Path, editor: Path, run_dir: Path) -> dict[str, float]:
    """Peak extra memory of the relevance warm-up pass alone (``compute_relevance_targets``), and of it less
    the 8-bit relevance buffer it fills, on a pipeline bound to ``run_dir`` as a training run's is."""
    pipeline = edit_pipeline(data, editor)
    pipeline.bind_run(run_dir)
    start = time.perf_counter()
    peak_extra = peak_memory_mib(pipeline.compute_relevance_targets, "cpu")
    seconds = time.perf_counter() - start
    buffer = pipeline.datamanager.relevance_pixels()
    views, height, width = buffer.shape[:3]
    buffer_mib = buffer.untyped_storage().nbytes() / MIB
    return {
        "views": views,
        "width": width,
        "height": height,
        "seconds": seconds,
        "peak_extra": peak_extra,
        "buffer_mib": buffer_mib,
        "beyond_buffer": peak_extra - buffer_mib,
    }


def measure_in_subprocess(variant: str, data: Path, *flags: str) -> dict[str, float]:
    """One ``--variant`` measured in a fresh process of this script (its peak memory is its own): the JSON it prints."""
    command = [sys.executable, __file__, "--variant", variant, "--data", str(data), *flags]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_datamanagers(args: BenchArgs, tmp: Path) -> None:
    data = args.data or write_noise_scene(tmp / "scene", args.views, args.width, args.height)
    results = {variant: measure_in_subprocess(variant, data) for variant in VARIANTS}
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


def run_store(args: BenchArgs, tmp: Path, editor: Path) -> None:
    spec = SceneSpec(views=args.store_views + math.ceil(args.store_views / 2), size=args.store_size)
    data = write_scene(tmp / "toy", spec).parent
    result = measure_store(data, editor, tmp / "store-run")
    print(
        f"\nedit store: {result['views']} training views of {result['width']}x{result['height']} (toy scene), "
        f"relevance targets, every view edited once ({100 * result['changed_fraction']:.0f}% of its pixels changed)"
    )
    print(f"| {EDITS_DIR}/ | bytes / training px |")
    print("|---|---|")
    print(f"| views/*.png (8-bit RGB, lossless) | {result['views_bytes_per_pixel']:.2f} |")
    print(f"| {TARGETS} (uint8) | {result['targets_bytes_per_pixel']:.2f} |")
    print(f"| run.json | {result['other_bytes_per_pixel']:.4f} |")
    print(f"| all ({result['store_mib']:.1f} MiB) | **{result['bytes_per_pixel']:.2f}** |")
    print(f"the scene's photos, as PNG: {result['photos_bytes_per_pixel']:.2f} bytes per training pixel")


def run_warmup(args: BenchArgs, tmp: Path, editor: Path) -> None:
    results = []
    for views in args.warmup_views:
        data = write_noise_scene(tmp / f"warm-up-{views}", views, args.warmup_width, args.warmup_height)
        results.append(measure_in_subprocess("warm-up", data, "--editor", str(editor)))
    print(
        f"\nrelevance warm-up (compute_relevance_targets) on views of {args.warmup_width}x{args.warmup_height}, "
        "each view count in its own process"
    )
    print("| training views | seconds | peak extra MiB | 8-bit relevance buffer MiB | peak beyond the buffer MiB |")
    print("|---|---|---|---|---|")
    for result in results:
        print(
            f"| {result['views']} | {result['seconds']:.0f} | {result['peak_extra']:.1f} "
            f"| {result['buffer_mib']:.1f} | {result['beyond_buffer']:.1f} |"
        )
    first, last = results[0], results[-1]
    print(
        f"peak beyond the buffer, {last['views']} views over {first['views']}: "
        f"**{last['beyond_buffer'] / first['beyond_buffer']:.2f}x**"
    )


def main() -> None:
    args = tyro.cli(BenchArgs, description=__doc__)
    if args.variant != "all":
        assert args.data is not None
        if args.variant == "warm-up":
            assert args.editor is not None
            with tempfile.TemporaryDirectory() as tmp:
                print(json.dumps(measure_warmup(args.data, args.editor, Path(tmp) / "run")))
        else:
            print(json.dumps(measure(args.variant, args.data)))
        return
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if "datamanagers" in args.parts:
            run_datamanagers(args, tmp)
        editor = args.editor or (tiny_editor(tmp / "editor") if {"store", "warm-up"} & set(args.parts) else None)
        if "store" in args.parts:
            run_store(args, tmp, editor)
        if "warm-up" in args.parts:
            run_warmup(args, tmp, editor)


if __name__ == "__main__":
    main()
