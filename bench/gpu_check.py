"""GPU check of the real-user path: the SD-1.5-size editor and the 3D presets on CUDA, one markdown table.

    make gpu-check                      # python bench/gpu_check.py: about 5 minutes on one H100 or H200
    python bench/gpu_check.py --device cpu --editor-arch tiny --iterations 12 --size-2d 64 --steps-2d 2 \
        --repeats 1 --scene-size 32 --edit-rate 5 --tiny-iterations 8     # tries the script on a CPU

(a) 2D: the SD-1.5-size editor (random weights, fp16): diffusers' InstructPix2Pix pipeline vs
    ``Editor.edit`` with a relevance mask vs relevance map + masked edit; median seconds, peak GPU memory.
(b) 3D: ``nerfacto-offline`` and ``relevance-edit`` (nerfacto's published sizes, mixed precision) on the
    toy scene, each trained ``iterations`` steps from scratch, relevance-edit editing one view every
    ``edit_rate`` steps with that editor; seconds per iteration without and with an edit, peak GPU memory.
    Then ``relevance-edit-tiny`` (mixed precision off, the embedded toy editor in fp16), whose tinycudann
    fp16 features once crashed the relevance head.
(c) A capture-size scene (noise views of 1600x900, as ``ns-process-data`` leaves a phone capture):
    relevance-edit at threshold 0 (every edit runs the editor), ``--pipeline.edit-resolution`` 512;
    the 2D relevance of all views, seconds per iteration with an edit, peak GPU memory.
(d) Whether tinycudann was importable (nerfstudio's install command when not) and ran the hash grids.
Every edit and render is checked for non-finite values (fp16 overflow); a failed check ends the table with
``FAILED`` lines and exit code 1. Weights are random: speed and memory do not depend on their values.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro
from edit_2d import edit_variants, interleaved_medians  # bench/ scripts, run from bench/
from measure import peak_memory_mib, seconds
from memory_3d import write_noise_scene
from nerf_3d import bench_configs, build_trainer, run_iteration

from toyworld import SceneSpec, write_scene
from toyworld.method_configs import relevance_edit_tiny
from toyworld.tiny import SD15_ARCHITECTURE, IP2PArchitecture, build_pipeline, save_pipeline


@dataclass
class GpuCheckArgs:
    size_2d: int = 512
    """Image side of the 2D edit (IP2P's working size)."""
    steps_2d: int = 20
    repeats: int = 3
    scene_size: int = 256
    """Image side of the toy scene's views."""
    iterations: int = 300
    edit_rate: int = 10
    """Edit one view every this many steps (Instruct-NeRF2NeRF: 10)."""
    tiny_iterations: int = 30
    device: str = "cuda"
    """``cpu`` tries the script itself at small sizes (memory then is peak RSS, the editor fp32)."""
    editor_arch: Literal["sd15", "tiny"] = "sd15"
    """``tiny`` (a test-size editor) only to try the script on a CPU."""
    capture_views: int = 50
    capture_size: tuple[int, int] = (1600, 900)
    """Width and height of the capture-size scene (the long side a phone capture keeps after ns-process-data)."""
    capture_iterations: int = 40
    parts: tuple[Literal["2d", "toy-3d", "tiny", "capture"], ...] = ("2d", "toy-3d", "tiny", "capture")


@dataclass
class RunTimes:
    plain: list[float]
    with_edit: list[float]
    peak_mib: float
    uses_tcnn: bool
    finite: bool

    def median(self, which: str) -> float:
        values = getattr(self, which)
        return statistics.median(values) if values else float("nan")


TINYCUDANN_INSTALL = "pip install ninja git+https://github.com/NVlabs/tiny-cuda-nn/#subdirectory=bindings/torch"
"""nerfstudio's instruction: tinycudann is not on PyPI."""


def tinycudann_importable() -> tuple[bool, str]:
    """Whether ``import tinycudann`` works, and why not in a few words when installed but broken."""
    if importlib.util.find_spec("tinycudann") is None:
        return False, " (not installed)"
    try:
        importlib.import_module("tinycudann")
    except Exception as error:  # a wheel for another CUDA or torch raises ImportError, OSError or RuntimeError
        return False, f" (installed, import failed: {type(error).__name__}: {str(error).splitlines()[0][:80]})"
    return True, ""


def _uses_tcnn(model: torch.nn.Module) -> bool:
    return any(type(module).__module__.startswith("tinycudann") for module in model.modules())


def _train(config, iterations: int, device: torch.device, prepare=None) -> RunTimes:
    """Set up and train ``iterations`` steps; peak memory of the whole run."""
    runs: list[RunTimes] = []
    gc.collect()  # a trainer holds reference cycles: free the previous run's before measuring this one's peak
    if device.type == "cuda":
        torch.cuda.empty_cache()
    peak_mib = peak_memory_mib(lambda: runs.append(_timed_training(config, iterations, device, prepare)), device)
    runs[0].peak_mib = peak_mib
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return runs[0]


def _timed_training(config, iterations: int, device: torch.device, prepare) -> RunTimes:
    """Time each iteration, sorted by whether the relevance-edit pipeline edited in it; check renders are finite."""
    trainer = build_trainer(config)
    pipeline = trainer.pipeline
    if prepare is not None:
        prepare(pipeline)
    times = RunTimes([], [], 0.0, _uses_tcnn(pipeline.model), True)
    for step in range(iterations):
        edits_before = getattr(pipeline, "edits_done", 0)
        elapsed = seconds(lambda s=step: run_iteration(trainer, s), device)
        if step >= 2:  # the first iterations pay for CUDA's lazy initialisation
            (times.with_edit if getattr(pipeline, "edits_done", 0) > edits_before else times.plain).append(elapsed)
    if hasattr(pipeline, "edits_done"):
        for index in range(min(3, pipeline.datamanager.num_views)):
            rendered = pipeline.render_view(index)
            times.finite &= bool(torch.isfinite(rendered["rgb"]).all() and torch.isfinite(rendered["relevance"]).all())
            times.finite &= bool(torch.isfinite(pipeline.datamanager.image(index)).all())
    return times


Row = str


def _rows(label: str, name: str, run: RunTimes, reference: RunTimes | None = None) -> list[Row]:
    """Rows without and with an edit; ratios to ``reference``'s plain iteration where given."""
    rows = []
    for kind, values in (("no edit", run.plain), ("with an edit", run.with_edit)):
        if not values:
            continue
        value = statistics.median(values)
        ratio = f"{value / reference.median('plain'):.3f}" if reference else ""
        peak_ratio = f"{run.peak_mib / reference.peak_mib:.2f}" if reference else ""
        rows.append(
            f"| {label} | {name}, {kind} ({len(values)} its) | {value:.4f} s/it | {ratio} "
            f"| {run.peak_mib:.0f} | {peak_ratio} |"
        )
    return rows


def check_2d(pipe, args: GpuCheckArgs, device: torch.device, dtype: torch.dtype) -> tuple[list[Row], list[str]]:
    """(a) diffusers' pipeline vs the Editor's masked edit vs relevance map + masked edit."""
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    variants = edit_variants(pipe, args.size_2d, args.steps_2d, device)
    del variants["Editor.edit, no mask"], variants["relevance_map (pixel space) + masked edit"]
    with torch.no_grad():
        medians = interleaved_medians(variants, args.repeats, device)
        peaks = {name: peak_memory_mib(run, device) for name, run in variants.items()}
        result = variants["relevance_map (latent space) + masked edit"]()
    failures = [] if torch.isfinite(result.images).all() else ["2D: the masked edit returned non-finite pixels"]
    baseline = next(iter(variants))
    label = (
        f"2D, {args.editor_arch} editor {str(dtype).removeprefix('torch.')}, {args.size_2d} px, {args.steps_2d} steps"
    )
    rows = [
        f"| {label} | {name} | {medians[name]:.3f} s | {medians[name] / medians[baseline]:.3f} "
        f"| {peaks[name]:.0f} | {peaks[name] / peaks[baseline]:.2f} |"
        for name in variants
    ]
    pipe.to("cpu")
    return rows, failures


def main() -> int:
    args = tyro.cli(GpuCheckArgs, description=__doc__)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device: the GPU check needs one (--device cpu tries the script at small sizes)")
        return 2
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    start = time.perf_counter()
    torch.manual_seed(0)
    rows: list[Row] = []
    failures: list[str] = []
    runs: list[RunTimes] = []
    arch = SD15_ARCHITECTURE if args.editor_arch == "sd15" else IP2PArchitecture()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pipe = build_pipeline(arch)
        editor = save_pipeline(pipe, tmp / "editor")  # the 3D runs load it as users do
        if "2d" in args.parts:
            part_rows, part_failures = check_2d(pipe, args, device, dtype)
            rows += part_rows
            failures += part_failures
        del pipe

        if "toy-3d" in args.parts or "tiny" in args.parts:
            data = write_scene(tmp / "scene", SceneSpec(size=args.scene_size)).parent
        if "toy-3d" in args.parts:  # (b) nerfacto-offline vs relevance-edit on the toy scene
            base_config, edit_config = bench_configs("full", data, editor, device.type, tmp / "runs")
            edit_config.pipeline.edit_rate = args.edit_rate
            base = _train(base_config, args.iterations, device)
            edit = _train(edit_config, args.iterations, device, prepare=lambda p: p.compute_relevance_targets())
            label = f"3D, full presets, toy scene {args.scene_size} px, {args.iterations} steps"
            rows += _rows(label, "nerfacto-offline", base, base) + _rows(label, "relevance-edit", edit, base)
            runs += [base, edit]
            if not edit.finite:
                failures.append("3D: relevance-edit rendered or wrote non-finite values")

        if "tiny" in args.parts:  # relevance-edit-tiny as a CUDA user runs it: mixed precision off, toy editor fp16
            tiny_config = relevance_edit_tiny.config
            tiny_config.pipeline.datamanager.data = data
            tiny_config.output_dir, tiny_config.vis = tmp / "runs", "tensorboard"
            tiny_config.pipeline.text = "make the red cube blue"
            tiny_config.pipeline.relevance_warmup_steps = 0
            tiny_config.machine.device_type = device.type
            tiny = _train(tiny_config, args.tiny_iterations, device)
            rows += _rows(f"3D, relevance-edit-tiny, mixed precision off, {args.tiny_iterations} steps", "toy", tiny)
            runs.append(tiny)
            if not tiny.finite:
                failures.append("3D: relevance-edit-tiny rendered or wrote non-finite values")

        if "capture" in args.parts:  # (c) capture-size views, edits at 512 px
            width, height = args.capture_size
            capture = write_noise_scene(tmp / "capture", args.capture_views, width, height)
            _, capture_config = bench_configs("full", capture, editor, device.type, tmp / "runs")
            capture_config.pipeline.edit_rate = args.edit_rate
            # threshold 0 edits whole views: every edit runs the editor, its full cost
            capture_config.pipeline.edit = dataclasses.replace(capture_config.pipeline.edit, threshold=0.0)
            relevance_seconds: list[float] = []
            timed = _train(
                capture_config,
                args.capture_iterations,
                device,
                prepare=lambda p: relevance_seconds.append(seconds(p.compute_relevance_targets, device)),
            )
            label = f"3D, {args.capture_views} views of {width}x{height}, edit resolution 512, threshold 0"
            rows.append(
                f"| {label} | 2D relevance of all {args.capture_views} views (once) | {relevance_seconds[0]:.1f} s "
                "| | | |"
            )
            rows += _rows(label, "relevance-edit", timed)
            runs.append(timed)
            if not timed.finite:
                failures.append("3D: capture-size relevance-edit rendered or wrote non-finite values")

    # (d) tinycudann: importable, not only installed (a build for another CUDA or torch fails at import).
    importable, import_note = tinycudann_importable()
    used = any(run.uses_tcnn for run in runs)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(f"\n{name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    memory = "peak GPU MiB" if device.type == "cuda" else "peak extra RSS MiB"
    print(f"| part | variant | time | x first row of part | {memory} | x first row |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    yes_no = {True: "yes", False: "no"}
    print(
        f"| tinycudann | importable: {yes_no[importable]}{import_note}; the hash grids ran on it: {yes_no[used]} "
        "| | | | |"
    )
    if not importable:
        print(f"tinycudann: not importable; to install it: {TINYCUDANN_INSTALL}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
