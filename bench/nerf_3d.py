"""3D iteration cost: relevance-edit versus plain nerfacto with the same settings, side by side.

    python bench/nerf_3d.py                                   # tiny presets on the toy scene (CPU: minutes)
    python bench/nerf_3d.py --preset full --editor-arch sd15   # nerfacto sizes, SD-1.5-size editor (GPU)
    python bench/nerf_3d.py --size 192 --edit-resolution 64 --strength-range 0.02 0.98 --no-crop

Both trainers are built in this process on the same scene and their iterations are
interleaved in blocks, so machine load hits both alike. Rows: a nerfacto iteration;
a relevance-edit iteration without an edit (the relevance field's overhead); one with
an edit (render + 2D edit + buffer update); the one-off 2D relevance pass over all views. With
``--edit-resolution`` below the views' size, the same edits with their colours rendered at the view's size (as
before edits rendered at the editor's working size) are interleaved with them: one more row.
Editor weights are random (speed and memory do not depend on their values).
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro

import editaction  # noqa: F401  (its upstream-warning filters, before nerfstudio warns on import)

# isort: split
from measure import peak_memory_mib, seconds  # bench/measure.py (scripts run from bench/)
from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer

from relevance_nerf.method_configs import nerfacto_offline, relevance_edit
from toyworld import SceneSpec, write_scene
from toyworld.method_configs import nerfacto_tiny, relevance_edit_tiny
from toyworld.tiny import SD15_ARCHITECTURE, IP2PArchitecture, build_pipeline, save_pipeline


@dataclass
class BenchArgs:
    preset: Literal["tiny", "full"] = "tiny"
    editor_arch: Literal["tiny", "sd15"] = "tiny"
    data: Path | None = None
    """A nerfstudio-data scene; default: the toy scene rendered into a temporary folder."""
    size: int = 64
    """Image side of the generated toy scene."""
    iterations: int = 20
    """Timed iterations per block and method."""
    blocks: int = 3
    edits: int = 3
    """Timed iterations that include an edit."""
    device: str | None = None
    edit_resolution: int | None = None
    """The editor's working long side (default: the preset's). Below ``--size``, an edit that renders its view's
    colours renders them at this size: the bench then also times the same edits rendered at the view's size."""
    no_crop: bool = False
    """Edit whole views, as the full preset does (the tiny preset crops to the mask's box)."""
    strength_range: tuple[float, float] | None = None
    """Edit strengths (default: the preset's; the tiny preset's pure noise renders no colours, IN2N's 0.02 0.98
    does)."""


VIEW_SIZE_RENDER = "relevance-edit + edit, colours rendered at the view's size"


def bench_configs(args: BenchArgs, data: Path, editor: Path, device: str, out: Path):
    """nerfacto and relevance-edit configs that differ only in the relevance parts; edits are triggered by hand."""
    preset = args.preset
    edit = copy.deepcopy((relevance_edit_tiny if preset == "tiny" else relevance_edit).config)
    edit.pipeline.text, edit.pipeline.editor = "make the red cube blue", str(editor)
    if args.edit_resolution is not None:
        edit.pipeline.edit_resolution = args.edit_resolution
    if args.strength_range is not None:
        edit.pipeline.strength_range = args.strength_range
    if args.no_crop:
        edit.pipeline.edit = dataclasses.replace(edit.pipeline.edit, crop_margin=None)
    edit.pipeline.relevance_warmup_steps = 0
    edit.pipeline.edit_rate = 10**9  # edits are triggered explicitly below
    # nerfacto of the same sizes: only the relevance parts (head, datamanager buffers, edits) differ.
    base = copy.deepcopy((nerfacto_tiny if preset == "tiny" else nerfacto_offline).config)
    for config in (base, edit):
        config.pipeline.datamanager.data = data
        config.output_dir, config.vis = out, "tensorboard"
        config.machine.device_type = device
        config.mixed_precision = device == "cuda"
    return base, edit


def build_trainer(config) -> Trainer:
    """A set-up trainer of ``config`` (no viewer)."""
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def run_iteration(trainer: Trainer, step: int) -> None:
    """One training iteration with its callbacks, as ``Trainer.train`` runs it."""
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    trainer.train_iteration(step)
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)


def main() -> None:
    args = tyro.cli(BenchArgs, description=__doc__)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data or write_scene(tmp / "scene", SceneSpec(size=args.size)).parent
        arch = SD15_ARCHITECTURE if args.editor_arch == "sd15" else IP2PArchitecture()
        editor = save_pipeline(build_pipeline(arch), tmp / "editor")
        base_config, edit_config = bench_configs(args, data, editor, device, tmp / "runs")
        base, edit = build_trainer(base_config), build_trainer(edit_config)

        pipeline = edit.pipeline
        relevance_seconds = seconds(pipeline.compute_relevance_targets, device)
        for step in range(3):  # warm-up: allocator, first-call overheads
            run_iteration(base, step)
            run_iteration(edit, step)

        times: dict[str, list[float]] = {"nerfacto": [], "relevance-edit": [], "relevance-edit + edit": []}
        step = 3
        for _ in range(args.blocks):
            for _ in range(args.iterations):
                times["nerfacto"].append(seconds(lambda s=step: run_iteration(base, s), device))
                step += 1
            for _ in range(args.iterations):
                times["relevance-edit"].append(seconds(lambda s=step: run_iteration(edit, s), device))
                step += 1
        peaks = {  # extra memory one iteration needs at its peak, one method at a time
            "nerfacto": peak_memory_mib(lambda s=step: run_iteration(base, s), device),
            "relevance-edit": peak_memory_mib(lambda s=step + 1: run_iteration(edit, s), device),
        }
        step += 2

        def edit_iteration(s: int) -> None:
            pipeline.edit_view(pipeline.next_view())
            run_iteration(edit, s)

        working_grid = pipeline.edit_grid

        def view_size_grid(size: tuple[int, int], colours: bool) -> tuple[int, int]:
            """The grids of edits before they rendered colours at the working size."""
            return size if colours else working_grid(size, colours)

        at_view_size = args.edit_resolution is not None
        if at_view_size:
            times[VIEW_SIZE_RENDER] = []
        for _ in range(args.edits):  # with --edit-resolution, interleaved with the same edits rendered at view size
            times["relevance-edit + edit"].append(seconds(lambda s=step: edit_iteration(s), device))
            step += 1
            if at_view_size:
                pipeline.edit_grid = view_size_grid
                times[VIEW_SIZE_RENDER].append(seconds(lambda s=step: edit_iteration(s), device))
                pipeline.edit_grid = working_grid
                step += 1
        peaks["relevance-edit + edit"] = peak_memory_mib(lambda s=step: edit_iteration(s), device)
        if at_view_size:
            pipeline.edit_grid = view_size_grid
            peaks[VIEW_SIZE_RENDER] = peak_memory_mib(lambda s=step + 1: edit_iteration(s), device)

    medians = {name: statistics.median(values) for name, values in times.items()}
    rays = edit_config.pipeline.datamanager.train_num_rays_per_batch
    print(
        f"\npreset {args.preset}, editor {args.editor_arch}, {rays} rays/iteration, device {device}, views "
        f"{args.size} px, edit resolution {edit_config.pipeline.edit_resolution}, strengths "
        f"{edit_config.pipeline.strength_range}, crop margin {edit_config.pipeline.edit.crop_margin}"
    )
    print(f"2D relevance of all {pipeline.datamanager.num_views} training views (once): {relevance_seconds:.2f} s")
    print("| iteration | median s | x nerfacto | peak extra MiB | x nerfacto |")
    print("|---|---|---|---|---|")
    for name, value in medians.items():
        print(
            f"| {name} | {value:.4f} | {value / medians['nerfacto']:.3f} "
            f"| {peaks[name]:.1f} | {peaks[name] / peaks['nerfacto']:.2f} |"
        )
    amortised = medians["relevance-edit"] + (medians["relevance-edit + edit"] - medians["relevance-edit"]) / 10
    print(
        f"| relevance-edit, one edit per 10 iterations (amortised) | {amortised:.4f} "
        f"| {amortised / medians['nerfacto']:.3f} | | |"
    )


if __name__ == "__main__":
    main()
