"""Wall-clock to a converged 3D edit: edit schedules side by side from one nerfacto checkpoint.

    python bench/converge_3d.py --out outputs/converge      # toy scene, every schedule: about an hour on CPU
    python bench/converge_3d.py --nerfacto-iterations 1000 --edit-iterations 300 --eval-every 30   # 45 min
    python bench/converge_3d.py ... --only "relevance-edit-tiny"    # the baseline and the matching schedules

Every schedule continues the same nerfacto-tiny run with relevance-edit-tiny and saves a checkpoint every
``--eval-every`` steps; each checkpoint is rendered from the held-out views and judged by the strict recolour
test, PSNR outside the object against the pre-edit render, and hue spread across views. Wall-clock is measured
from the start of each ``ns-train`` (relevance targets, edits and checkpoint writes included) to the
checkpoint's file time. A schedule has converged at the first checkpoint from which every later one has
strict success >= 90% and PSNR and hue spread within ``--psnr-tolerance`` / ``--hue-tolerance`` of the
run's final values; the baseline runs twice as long, until it settles. Quality is compared on the means over each
run's second half. Writes ``OUT/curves.png`` and ``OUT/converge.json``; the last lines compare the fastest relevance
schedule with the threshold-0 baseline and the schedule at the issue's filing.
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
BASELINE = "baseline: Instruct-NeRF2NeRF (threshold 0, 1 view / 10 steps, strength 0.02-0.98, guidance 7.5 / 1.5)"
WHOLE_VIEW = ["--pipeline.edit.threshold", "0", "--pipeline.relevance-warmup-steps", "0"]
ROUNDS_50 = ["--pipeline.edit-rate", "50", "--pipeline.edit-count", "24"]
SETTLE = ["--pipeline.settle-tolerance", "0.02"]
CROP = ["--pipeline.edit.crop-margin", "0.25"]  # the margin of bench/README.md's curves
NO_CROP = ["--pipeline.edit.crop-margin", "None"]  # the preset crops (TOY_EDIT_3D): schedules without crop say so
WARM_UP_EDITS = ["--pipeline.edit-during-warmup", "True"]
FIRST_ROUND = ["--pipeline.first-round", "True"]
ONE_VIEW = ["--pipeline.edit-count", "1"]  # the preset edits 2 views per edit step: schedules of 1 view say so
FILING = "relevance-edit-tiny at the issue's filing (1 view / 5 steps, whole view, 20 DDIM steps, no warm-up edits)"
SCHEDULES = {
    BASELINE: INSTRUCT_NERF2NERF_OPTIONS + WHOLE_VIEW,
    "threshold 0 at the preset's edit settings (1 view / 10 steps)": WHOLE_VIEW
    + ONE_VIEW
    + ["--pipeline.edit-rate", "10"],
    FILING: NO_CROP
    + ONE_VIEW
    + ["--pipeline.edit.steps", "20", "--pipeline.edit-during-warmup", "False", "--pipeline.mask-downscale", "1"],
    "relevance-edit-tiny as shipped (2 views / 5 steps, crop 1.0, 10 DDIM steps, edits during warm-up, masks at 1/2 "
    "resolution)": [],
    "relevance-edit-tiny as shipped, 1 view / 5 steps": ONE_VIEW,
    "relevance-edit-tiny as shipped, 4 views / 5 steps": ["--pipeline.edit-count", "4"],
    "relevance-edit-tiny as shipped, masks rendered at full resolution": ["--pipeline.mask-downscale", "1"],
    "relevance-edit-tiny as shipped, masks rendered at 1/3 resolution": ["--pipeline.mask-downscale", "3"],
    "relevance-edit-tiny as shipped, first round, then 1 view / 10 steps": FIRST_ROUND
    + ONE_VIEW
    + ["--pipeline.edit-rate", "10"],
    "relevance-edit-tiny as shipped, first round, then 1 view / 5 steps": FIRST_ROUND + ONE_VIEW,
    "relevance-edit-tiny as shipped, 20 DDIM steps": ["--pipeline.edit.steps", "20"],
    "relevance-edit-tiny as shipped, no warm-up edits": ["--pipeline.edit-during-warmup", "False"],
    "relevance-edit-tiny as shipped, no crop": NO_CROP,
    "relevance-edit-tiny as shipped, no crop, masks rendered at full resolution": NO_CROP
    + ["--pipeline.mask-downscale", "1"],
    "relevance-edit-tiny as shipped, no crop, no warm-up edits": NO_CROP + ["--pipeline.edit-during-warmup", "False"],
    "relevance-edit-tiny as shipped, first round, then 1 view / 5 steps, 20 DDIM steps": FIRST_ROUND
    + ONE_VIEW
    + ["--pipeline.edit.steps", "20"],
    "relevance, IN2N (1 view / 10 steps)": ONE_VIEW + ["--pipeline.edit-rate", "10"] + NO_CROP,
    "relevance, IN2N (1 view / 10 steps), crop": ONE_VIEW + ["--pipeline.edit-rate", "10"] + CROP,
    "relevance, IN2N (1 view / 10 steps), crop, settle 0.02": ONE_VIEW + ["--pipeline.edit-rate", "10"] + CROP + SETTLE,
    "relevance-edit-tiny (1 view / 5 steps), crop": ONE_VIEW + CROP,
    "relevance-edit-tiny (1 view / 5 steps), crop, edits during warm-up": ONE_VIEW + CROP + WARM_UP_EDITS,
    "relevance-edit-tiny (1 view / 5 steps), crop, 10 DDIM steps": ONE_VIEW + CROP + ["--pipeline.edit.steps", "10"],
    "relevance-edit-tiny (1 view / 5 steps), crop, edits during warm-up, 10 DDIM steps": ONE_VIEW
    + CROP
    + WARM_UP_EDITS
    + ["--pipeline.edit.steps", "10"],
    "relevance-edit-tiny (1 view / 5 steps), crop, edits during a 100-step warm-up, 10 DDIM steps": ONE_VIEW
    + CROP
    + WARM_UP_EDITS
    + ["--pipeline.edit.steps", "10", "--pipeline.relevance-warmup-steps", "100"],
    "relevance-edit-tiny (1 view / 5 steps), crop, edits during warm-up, 5 DDIM steps": ONE_VIEW
    + CROP
    + WARM_UP_EDITS
    + ["--pipeline.edit.steps", "5"],
    "relevance, rounds / 50 steps": ROUNDS_50 + NO_CROP,
    "relevance, rounds / 50 steps, settle 0.02": ROUNDS_50 + SETTLE + NO_CROP,
    "relevance, rounds / 50 steps, settle 0.02, crop": ROUNDS_50 + SETTLE + CROP,
    "relevance, rounds / 50 steps, settle 0.02, crop, warm-up 20": ROUNDS_50
    + SETTLE
    + CROP
    + ["--pipeline.relevance-warmup-steps", "20"],
}
"""Name -> ``ns-train relevance-edit-tiny`` options; the preset edits 2 views every 5 steps (one editor call) with the
toy editor's guidance (1.25 / 1) from pure noise (strength 1.0, ``TOY_STRENGTH_RANGE``). Rounds: every view in turn,
as Instruct-GS2GS's dataset updates (all views every 2.5k of 30k steps), here every 50 steps, 4 views per editor
call. Settle: views whose strong edit changed them by less than 0.02 are not edited again. Crop: the editor sees the
mask's box with a margin of 0.25 of its side (the preset's: 1.0). Edits during warm-up: from the first step, under
each view's own 2D relevance map until the field has warmed up (with crop, only the box the editor sees is
rendered). First round: every view edited once at the first edit step, then the schedule. Masks at 1/n resolution:
after the warm-up, an edit from pure noise renders its view's relevance on a grid n times coarser, upsampled to the
mask. At the issue's filing: the preset's schedule then (1 view, whole views, 20 DDIM steps, no warm-up edits) with
today's editor and strength."""
MIN_SUCCESS = 0.9


@dataclass
class ConvergeArgs:
    out: Path = Path("outputs/converge")
    text: str = "make the red cube blue"
    nerfacto_iterations: int = 1500
    """The demo's tiny preset."""
    edit_iterations: int = 400
    baseline_iterations: int | None = None
    """The baseline's iterations (default: twice ``--edit-iterations``). Editing whole views, its PSNR outside keeps
    falling: in a run as long as the others' it often met the rule only at its last checkpoint, a lower bound."""
    eval_every: int = 40
    psnr_tolerance: float = 1.5
    """dB from the run's final PSNR outside the object (vs the pre-edit render). Checkpoint to checkpoint it
    moves by up to 1.8 dB in a run whose edit has settled (relevance-edit-tiny's last five, 2026-11-27): at
    0.5 dB every schedule 'converged' only at or next to its last checkpoint."""
    hue_tolerance: float = 1.5
    """Degrees from the run's final hue spread."""
    seed: int = 0
    only: tuple[str, ...] = ()
    """Run only the schedules whose names contain one of these (the baseline always runs); default: all."""
    skip: tuple[str, ...] = ()
    """Leave out the schedules whose names contain one of these (never the baseline)."""


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
    imported = config.stat().st_mtime  # ns-train writes config.yml once its imports are done
    for checkpoint in track(checkpoints, description="  held-out views of each checkpoint"):
        step, saved = int(checkpoint.stem.split("-")[1]), checkpoint.stat().st_mtime
        with contextlib.redirect_stdout(io.StringIO()):  # nerfstudio's set-up notes, once per checkpoint
            renders = render_held_out(config, scene, step)
        metrics = measure(truth, renders, before)
        points.append(
            {
                "step": step,
                "seconds": saved - started,
                "seconds_after_imports": saved - imported,
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
    for part in (*args.only, *args.skip):
        if not any(part in name for name in SCHEDULES):
            raise SystemExit(f"error: {part!r} (--only / --skip) is in no schedule's name; see SCHEDULES")
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
    curves, reached, reached_after_imports, halves = {}, {}, {}, {}
    for name, extra in SCHEDULES.items():
        if name != BASELINE and (
            (args.only and not any(part in name for part in args.only)) or any(part in name for part in args.skip)
        ):
            continue
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
        reached_after_imports[name] = None if point is None else point["seconds_after_imports"]
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
    summary = {
        "curves": curves,
        "converged_s": reached,
        "converged_after_imports_s": reached_after_imports,
        "second_half": halves,
    }
    write_text_atomic(args.out / "converge.json", json.dumps(summary, indent=2))
    print(
        "| schedule | converged after (s) | after ns-train's imports (s) | final success | final PSNR vs before (dB) "
        "| final hue spread (deg) | second half: lowest success, mean PSNR (dB) / hue spread (deg) |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, points in curves.items():
        final, seconds, after_imports, half = points[-1], reached[name], reached_after_imports[name], halves[name]
        print(
            f"| {name} | {'never' if seconds is None else f'{seconds:.0f}'} "
            f"| {'never' if after_imports is None else f'{after_imports:.0f}'} | {final['success']:.0%} "
            f"| {final['psnr_vs_before']:.1f} | {final['hue_spread']:.1f} "
            f"| {half['success']:.0%}, {half['psnr_vs_before']:.2f} / {half['hue_spread']:.2f} |"
        )
    candidates = {name: s for name, s in reached.items() if name != BASELINE and s is not None}
    baseline = reached[BASELINE]
    if not candidates or baseline is None:
        print("wall-clock to converged: " + ("no relevance schedule converged" if not candidates else
              "the baseline never converged"))  # fmt: skip
        return
    best = min(candidates, key=candidates.get)
    after = reached_after_imports
    if best != FILING and reached.get(FILING) is not None:
        print(
            f"against the schedule at the issue's filing: {best} {candidates[best]:.0f} s, {reached[FILING]:.0f} s, "
            f"ratio {candidates[best] / reached[FILING]:.2f} (after imports {after[best] / after[FILING]:.2f}); "
            f"second-half PSNR {halves[best]['psnr_vs_before']:.2f} against {halves[FILING]['psnr_vs_before']:.2f} dB"
        )
    print(  # ns-train's Python imports (until it writes config.yml) take the same time for every schedule
        f"after ns-train's imports: {best} {after[best]:.0f} s, threshold-0 baseline {after[BASELINE]:.0f} s, "
        f"ratio {after[best] / after[BASELINE]:.2f}"
    )
    print(
        f"wall-clock to converged: {best} {candidates[best]:.0f} s, threshold-0 baseline {baseline:.0f} s, "
        f"ratio {candidates[best] / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
