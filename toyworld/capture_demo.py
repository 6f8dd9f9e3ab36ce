"""A real capture's path end to end on the capture-like toy world (``make capture-demo``).

photos -> ``ns-process-data images`` (COLMAP on the CPU) -> nerfacto with the camera optimiser and
appearance embedding -> ``relevance-edit`` -> Instruct-NeRF2NeRF as published -> held-out photos
judged against the truth kept aside (their poses are COLMAP's) -> report + ``ns-render`` video.

Every stage is a command a user runs on their own photos; only ``make_capture`` and the
evaluation read the truth. Run again, finished stages are skipped and a training stage cut short
continues from its last checkpoint (``toyworld.stages``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from editaction import check_editor_source
from editaction.atomic import write_text_atomic
from relevance_nerf.method_configs import INSTRUCT_NERF2NERF_OPTIONS
from relevance_nerf.system_tools import check_capture_tools
from toyworld import TOY_CAPTURE_EDITOR
from toyworld.capture import layout_capture_spec, read_truth, write_capture
from toyworld.capture_evaluation import (
    check_processed_names,
    estimated_poses,
    held_out_truth,
    pose_errors,
    processed_names,
    write_split,
)
from toyworld.evaluation import measure, metrics_json, metrics_table, render_held_out
from toyworld.report import write_report
from toyworld.scene_layouts import layout_scene
from toyworld.stages import CONSOLE, QUIET, RUN_NAME, DemoError, check_folder, train_until

BIN = Path(sys.executable).parent
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
EDIT, BASELINE, BEFORE = "relevance-edit", "baseline (no mask)", "before edit"


@dataclass
class CaptureDemoArgs:
    out: Path = Path("outputs/capture-demo")
    layout: int = 3001
    """Seed of the capture's layout and instruction (``toyworld.scene_layouts``): settings were chosen on 2001
    (validation), 3001 (test) is reported."""
    photos: int = 36
    holdout_every: int = 3
    width: int = 512
    height: int = 384
    downscale: int = 4
    """Training resolution: ns-process-data's ``images_<downscale>`` (nerfstudio-data ``--downscale-factor``)."""
    camera_optimizer: Literal["SO3xR3", "off"] = "SO3xR3"
    nerfacto_method: str = "nerfacto-tiny"
    edit_method: str = "relevance-edit-tiny"
    nerfacto_iterations: int = 1500
    edit_iterations: int = 300
    editor: str = TOY_CAPTURE_EDITOR
    matching: Literal["exhaustive", "sequential"] = "exhaustive"
    video_frames: int = 0
    """Frames of ``orbit.mp4`` in the capture (for ``ns-process-data video``); 0: none."""
    render_seconds: float = 4.0
    """Length of the ns-render video of the edited scene; 0: none."""
    seed: int = 0


def _run(label: str, command: list[str]) -> None:
    CONSOLE.print(f"[dim]$ {' '.join(command)}")
    if subprocess.run(command, env=QUIET).returncode != 0:
        raise DemoError(f"{label} failed: {' '.join(command[:2])}")


def _colmap_model_sizes(processed: Path) -> dict[str, int]:
    from nerfstudio.data.utils.colmap_parsing_utils import read_images_binary

    sparse = processed / "colmap" / "sparse"
    return {
        d.name: len(read_images_binary(d / "images.bin"))
        for d in sorted(sparse.iterdir())
        if (d / "images.bin").is_file()
    }


def process_photos(photos: Path, processed: Path, matching: str) -> dict:
    """ns-process-data images; when COLMAP split the photos into several models, convert the largest (nerfstudio
    takes sparse/0, which held 10 of 36 photos in one of our runs while another model held all 36)."""
    record = processed / "process.json"
    if record.is_file():
        return json.loads(record.read_text())
    started = time.perf_counter()
    command = [str(BIN / "ns-process-data"), "images", "--data", str(photos), "--output-dir", str(processed),
               "--no-gpu", "--matching-method", matching]  # fmt: skip
    _run("ns-process-data", command)
    sizes = _colmap_model_sizes(processed)
    largest = max(sizes, key=sizes.get) if sizes else None
    if largest is not None and largest != "0":
        CONSOLE.print(f"[yellow]COLMAP made {len(sizes)} models {sizes}: converting the largest, sparse/{largest}")
        _run(
            "ns-process-data (largest model)",
            command + ["--skip-colmap", "--colmap-model-path", f"colmap/sparse/{largest}"],
        )
    info = {"seconds": time.perf_counter() - started, "models": sizes, "used": largest}
    write_text_atomic(record, json.dumps(info, indent=2))
    return info


def run_capture_demo(args: CaptureDemoArgs) -> Path:
    error = check_capture_tools()
    if error is not None:
        raise DemoError(error.removeprefix("error: "))
    check_editor_source(args.editor)
    out = args.out.resolve()
    scene = layout_scene(args.layout)
    check_folder(out, {**{k: str(v) for k, v in asdict(args).items()}, "device": DEVICE}, "capture-demo.json")
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str, since: float) -> None:
        timings[name] = round(time.perf_counter() - since, 1)

    CONSOLE.rule(f"1/7 capture: {args.photos} photos of layout {args.layout}, {args.width}x{args.height}")
    capture, t = out / "capture", time.perf_counter()
    if not (capture / "truth" / "capture.json").is_file():
        spec = layout_capture_spec(
            args.layout, photos=args.photos, holdout_every=args.holdout_every, width=args.width, height=args.height
        )
        write_capture(capture, spec, video_frames=args.video_frames)
    stage("capture", t)
    truth = read_truth(capture)

    CONSOLE.rule("2/7 ns-process-data images (COLMAP, CPU)")
    processed, t = out / "processed", time.perf_counter()
    process = process_photos(capture / "photos", processed, args.matching)
    photos = sorted(p.name for p in (capture / "photos").iterdir())
    mapping = processed_names(photos)
    if "test_filenames" not in json.loads((processed / "transforms.json").read_text()):
        check_processed_names(mapping, capture / "photos", processed)
        write_split(processed, mapping, truth.held_out)
    poses = pose_errors(estimated_poses(processed, mapping), truth.poses, truth.scene_radius)
    stage("ns-process-data", t)
    CONSOLE.print(f"COLMAP registered {poses.registered} of {poses.photos} photos")

    dataparser = ["--downscale-factor", str(args.downscale)]
    model = ["--pipeline.model.camera-optimizer.mode", args.camera_optimizer]
    nerfacto = out / "nerfacto" / args.nerfacto_method / RUN_NAME
    CONSOLE.rule(
        f"3/7 {args.nerfacto_method}: {args.nerfacto_iterations} iterations, camera optimiser {args.camera_optimizer}"
    )
    t = time.perf_counter()
    train_until(
        "nerfacto",
        args.nerfacto_method,
        nerfacto,
        args.nerfacto_iterations - 1,
        None,
        model,
        processed,
        DEVICE,
        dataparser,
    )
    stage("nerfacto", t)

    edit_args = ["--text", scene.instruction, "--pipeline.editor", args.editor, "--pipeline.seed", str(args.seed)]
    runs = {}
    for number, (label, extra) in enumerate([(EDIT, []), (BASELINE, INSTRUCT_NERF2NERF_OPTIONS)], start=4):
        folder = "relevance-edit" if label == EDIT else "baseline"
        runs[label] = out / folder / args.edit_method / RUN_NAME
        CONSOLE.rule(f"{number}/7 {label}: {args.edit_method}, {args.edit_iterations} iterations")
        t = time.perf_counter()
        final = args.nerfacto_iterations - 1 + args.edit_iterations
        train_until(
            label,
            args.edit_method,
            runs[label],
            final,
            nerfacto / "nerfstudio_models",
            model + edit_args + list(extra),
            processed,
            DEVICE,
            dataparser,
        )
        stage(label, t)

    CONSOLE.rule("6/7 evaluation on the held-out photos")
    t = time.perf_counter()
    held_out = held_out_truth(processed, truth, mapping, scene.instruction, args.downscale)
    renders = {label: render_held_out(run / "config.yml", processed) for label, run in runs.items()}
    renders[BEFORE] = render_held_out(nerfacto / "config.yml", processed)
    rows = {label: measure(held_out, r, None if label == BEFORE else renders[BEFORE]) for label, r in renders.items()}
    stage("evaluation", t)

    video = None
    if args.render_seconds > 0:
        CONSOLE.rule("7/7 ns-render: a video of the edited scene")
        t = time.perf_counter()
        video = out / "edited.mp4"
        if not video.is_file():
            frames = max(2, int(args.render_seconds * 12 / max(1, poses.registered - len(truth.held_out))))
            _run(
                "ns-render",
                [
                    str(BIN / "ns-render"),
                    "interpolate",
                    "--load-config",
                    str(runs[EDIT] / "config.yml"),
                    "--output-path",
                    str(video),
                    "--frame-rate",
                    "12",
                    "--interpolation-steps",
                    str(frames),
                    "--rendered-output-names",
                    "rgb",
                ],
            )
        stage("ns-render", t)

    held_names = [n for n in truth.held_out if n in poses.rotation_degrees]
    summary = {
        "layout": args.layout,
        "instruction": scene.instruction,
        "camera_optimizer": args.camera_optimizer,
        "colmap": {"registered": poses.registered, "photos": poses.photos, **process},
        "poses_all": poses.summary(),
        "poses_held_out": poses.summary(held_names) if held_names else None,
        "metrics": metrics_json(rows),
        "seconds": timings,
        "minutes_total": round((time.perf_counter() - started) / 60, 1),
        "runs": {label: str(run) for label, run in runs.items()},
    }
    markdown = "\n".join(
        [
            f"# {scene.instruction!r} on capture layout {args.layout}: {len(held_out.views)} held-out photos",
            "",
            f"COLMAP registered {poses.registered} of {poses.photos} photos ({process['seconds']:.0f} s). "
            "Poses after a "
            f"similarity alignment to the truth: rotation median {poses.summary()['rotation_median_deg']:.2f} deg "
            f"(max {poses.summary()['rotation_max_deg']:.2f}), position median "
            f"{poses.summary()['position_median_pct']:.2f}% of the scene's radius (max {poses.summary()['position_max_pct']:.2f}%).",  # noqa: E501
            f"Camera optimiser: {args.camera_optimizer}.",
            "",
            metrics_table(rows),
            "",
            "Seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
        ]
    )
    report = write_report(out / "report", held_out, renders, markdown, summary, gif_runs=(EDIT, BASELINE))
    if video is not None and video.is_file():
        shutil.copy(video, report / "edited.mp4")
    CONSOLE.print(markdown)
    CONSOLE.print(f"[bold green]capture demo finished[/]: {report}/metrics.md")
    return report
