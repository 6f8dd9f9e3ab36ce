"""Wall-clock to a converged 3D edit: the shipped relevance-edit-tiny preset against Instruct-NeRF2NeRF.

    python bench/converge_3d.py --out outputs/converge      # toy scene, both schedules: minutes on 2 CPU cores

Both schedules continue the same nerfacto-tiny run and save a checkpoint every ``--eval-every`` steps; each
checkpoint is rendered from the held-out views and judged by the strict recolour test, PSNR outside the object
against the pre-edit render, and hue spread across views. Wall-clock is measured from the start of each ``ns-train``
(relevance targets, edits and checkpoint writes included) to the checkpoint's file time. A schedule has converged at
the first checkpoint from which every later one has strict success >= 90% and PSNR and hue spread within
``--psnr-tolerance`` / ``--hue-tolerance`` of the run's final values; the baseline runs twice as long, until it
settles. Quality is compared on the means over each run's second half. Writes ``OUT/curves.png`` and
``OUT/converge.json``; the last line gives the preset's wall-clock as a ratio of the baseline's.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from rich.progress import track

from editaction.atomic import write_text_atomic
from relevance_nerf.checkpoints import latest_step
from relevance_nerf.method_configs import INSTRUCT_NERF2NERF_OPTIONS
from toyworld import SceneSpec, write_scene
from toyworld.evaluation import SceneTruth, load_scene_truth, measure, render_held_out

NS_TRAIN = str(Path(sys.executable).parent / "ns-train")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BASELINE = "Instruct-NeRF2NeRF (threshold 0, 1 view / 10 steps, strength 0.02-0.98, guidance 7.5 / 1.5)"
SHIPPED = "relevance-edit-tiny as shipped"
SCHEDULES = {
    BASELINE: INSTRUCT_NERF2NERF_OPTIONS + ["--pipeline.relevance-warmup-steps", "0"],
    SHIPPED: [],
}
"""Name -> ``ns-train relevance-edit-tiny`` options. The baseline edits from the first step, as IN2N has no
relevance field to warm up."""
MIN_SUCCESS = 0.9


@dataclass
class ConvergeArgs:
    out: Path = Path("outputs/converge")
    text: str = "make the red cube blue"
    nerfacto_iterations: int = 1000
    edit_iterations: int = 300
    baseline_iterations: int | None = None
    """The baseline's iterations (default: twice ``--edit-iterations``): editing whole views, its PSNR outside the
    object keeps falling for longer."""
    eval_every: int = 30
    psnr_tolerance: float = 1.5
    """dB from the run's final PSNR outside the object (vs the pre-edit render); PSNR moves by about this much between
    checkpoints of a settled run, so a tighter tolerance finds convergence only at the last checkpoint."""
    hue_tolerance: float = 1.5
    """Degrees from the run's final hue spread."""
    seed: int = 0


def _train(method: str, run: Path, extra: list[str], scene: Path) -> float:
    """Run ``ns-train`` into ``run`` unless it finished earlier with the same method and options; returns its start
    time (epoch seconds).

    An unfinished run is started again from nothing: its wall-clock and checkpoints would not be one run's. A finished
    one with other options (a schedule whose name stayed while the preset's defaults changed) is refused, not reused:
    each run records its method and options, the ``--out`` folder written as OUT, in ``settings.json``."""
    started, settings = run / "started", json.dumps([method, *(o.replace(str(run.parent), "OUT") for o in extra)])
    if (run / "done").is_file():
        if not (run / "settings.json").is_file() or (run / "settings.json").read_text() != settings:
            raise SystemExit(f"error: {run} was trained with other options than {settings}; choose another --out")
        return float(started.read_text())
    if started.is_file():  # an earlier bench run's folder, cut short
        shutil.rmtree(run)
    elif run.exists():
        raise SystemExit(f"error: {run} exists and is not this bench's; choose another --out")
    run.mkdir(parents=True)
    write_text_atomic(started, f"{time.time()}\n")
    write_text_atomic(run / "settings.json", settings)
    command = [
        NS_TRAIN, method, "--vis", "tensorboard", "--machine.device-type", DEVICE, "--output-dir", str(run.parent),
        "--experiment-name", run.name, "--timestamp", "run", *extra, "nerfstudio-data", "--data", str(scene),
    ]  # fmt: skip
    if subprocess.run(command, capture_output=True, text=True).returncode != 0:
        raise SystemExit(f"error: ns-train {method} failed in {run}; run again to retry")
    write_text_atomic(run / "done", "")
    return float(started.read_text())


def _curve(run: Path, scene: Path, started: float, before: dict, truth: SceneTruth, text: str) -> list[dict]:
    """Each checkpoint judged on the held-out views; kept in ``run/curve.json`` for later bench calls."""
    cached = run / "curve.json"
    if cached.is_file() and (saved := json.loads(cached.read_text()))["text"] == text:
        return saved["points"]
    config = next(run.glob("*/run/config.yml"))
    points = []
    checkpoints = sorted((config.parent / "nerfstudio_models").glob("step-*.ckpt"))
    for checkpoint in track(checkpoints, description="  held-out views of each checkpoint"):
        step, saved = int(checkpoint.stem.split("-")[1]), checkpoint.stat().st_mtime
        with contextlib.redirect_stdout(io.StringIO()):  # nerfstudio's set-up notes, once per checkpoint
            renders = render_held_out(config, scene, step)
        metrics = measure(truth, renders, before)
        points.append(
            {
                "step": step,
                "seconds": saved - started,
                "success": metrics.edit_success,
                "psnr_vs_before": metrics.psnr_outside_vs_before,
                "hue_spread": metrics.hue_spread,
            }
        )
    write_text_atomic(cached, json.dumps({"text": text, "points": points}))
    return points


def second_half(points: list[dict], first_step: int) -> dict:
    """Mean PSNR and hue spread and the lowest success over the checkpoints from ``first_step`` on: the converged
    state with checkpoint-to-checkpoint noise averaged (a window that starts before a schedule converged would
    credit a slower schedule with its less edited, closer-to-before checkpoints)."""
    last = [point for point in points if point["step"] >= first_step] or points[-1:]
    return {
        "success": min(point["success"] for point in last),
        "psnr_vs_before": sum(point["psnr_vs_before"] for point in last) / len(last),
        "hue_spread": sum(point["hue_spread"] for point in last) / len(last),
    }


def converged_at(points: list[dict], psnr_tolerance: float, hue_tolerance: float) -> dict | None:
    """The first point from which every later one meets the success bar and stays near the final values."""
    final = points[-1]

    def settled(point: dict) -> bool:
        return (
            point["success"] >= MIN_SUCCESS
            and abs(point["psnr_vs_before"] - final["psnr_vs_before"]) <= psnr_tolerance
            and abs(point["hue_spread"] - final["hue_spread"]) <= hue_tolerance
        )

    first = None
    for point in reversed(points):
        if not settled(point):
            break
        first = point
    return first


def _plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 5.5))
    for name, points in curves.items():
        seconds = [p["seconds"] for p in points]
        for axis, key in zip(axes, ("success", "psnr_vs_before", "hue_spread"), strict=True):
            axis.plot(seconds, [p[key] for p in points], marker="o", label=name)
    for axis, label in zip(axes, ("strict success", "PSNR outside vs before (dB)", "hue spread (deg)"), strict=True):
        axis.set_xlabel("wall-clock (s)")
        axis.set_ylabel(label)
    figure.tight_layout(rect=(0, 0.25, 1, 1))
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
    figure.savefig(path, dpi=100)


def main() -> None:
    args = tyro.cli(ConvergeArgs, description=__doc__)
    scene = args.out / "scene"
    if not (scene / "transforms.json").is_file():
        write_scene(scene, SceneSpec())
    nerfacto = args.out / "nerfacto"
    print(f"nerfacto-tiny, {args.nerfacto_iterations} iterations", flush=True)
    _train("nerfacto-tiny", nerfacto, ["--max-num-iterations", str(args.nerfacto_iterations)], scene)
    nerfacto_config = next(nerfacto.glob("*/run/config.yml"))
    models = nerfacto_config.parent / "nerfstudio_models"
    truth = load_scene_truth(scene, args.text)
    with contextlib.redirect_stdout(io.StringIO()):
        before = render_held_out(nerfacto_config, scene)
    start_step = latest_step(models)
    common = [
        "--text", args.text, "--pipeline.seed", str(args.seed), "--load-dir", str(models),
        "--steps-per-save", str(args.eval_every),
        "--save-only-latest-checkpoint", "False",
    ]  # fmt: skip
    curves, reached, halves = {}, {}, {}
    for name, extra in SCHEDULES.items():
        iterations = args.edit_iterations
        folder = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")  # one folder per schedule name
        if name == BASELINE:
            iterations = args.baseline_iterations or 2 * args.edit_iterations
            folder += f"-{iterations}-iterations"
        print(f"{name}: {iterations} iterations from step {start_step}", flush=True)
        run = args.out / folder
        options = common + ["--max-num-iterations", str(iterations), *extra]
        started = _train("relevance-edit-tiny", run, options, scene)
        curves[name] = _curve(run, scene, started, before, truth, args.text)
        point = converged_at(curves[name], args.psnr_tolerance, args.hue_tolerance)
        reached[name] = None if point is None else point["seconds"]
        halves[name] = second_half(curves[name], start_step + iterations // 2)
        final = curves[name][-1]
        print(
            f"  final: success {final['success']:.0%}, PSNR vs before {final['psnr_vs_before']:.1f} dB, hue spread "
            f"{final['hue_spread']:.1f} deg; converged: "
            + ("never" if point is None else f"step {point['step']}, {point['seconds']:.0f} s")
            + (" (the last checkpoint: run longer to tell)" if point is final else ""),
            flush=True,
        )
    _plot(curves, args.out / "curves.png")
    summary = {"curves": curves, "converged_s": reached, "second_half": halves}
    write_text_atomic(args.out / "converge.json", json.dumps(summary, indent=2))
    print(
        "| schedule | converged after (s) | final success | final PSNR vs before (dB) | final hue spread (deg) "
        "| second half: lowest success, mean PSNR (dB) / hue spread (deg) |\n"
        "|---|---|---|---|---|---|"
    )
    for name, points in curves.items():
        final, seconds, half = points[-1], reached[name], halves[name]
        print(
            f"| {name} | {'never' if seconds is None else f'{seconds:.0f}'} | {final['success']:.0%} "
            f"| {final['psnr_vs_before']:.1f} | {final['hue_spread']:.1f} "
            f"| {half['success']:.0%}, {half['psnr_vs_before']:.2f} / {half['hue_spread']:.2f} |"
        )
    print(ratio_line(reached))


def ratio_line(reached: dict[str, float | None]) -> str:
    """The preset's wall-clock to converged as a ratio of the baseline's, or which of them never converged."""
    preset, baseline = reached[SHIPPED], reached[BASELINE]
    if preset is None or baseline is None:
        return "wall-clock to converged: " + ("the preset" if preset is None else "the baseline") + " never converged"
    return f"wall-clock to converged: preset {preset:.0f} s, baseline {baseline:.0f} s, ratio {preset / baseline:.2f}"


if __name__ == "__main__":
    main()
