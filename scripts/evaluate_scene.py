"""Evaluate a relevance-edit run against the unmasked baseline on the held-out views of a toy scene.

python scripts/evaluate_scene.py --scene outputs/demo/scene \
    --edit-run outputs/demo/relevance-edit/relevance-edit-tiny/run \
    --baseline-run outputs/demo/baseline/relevance-edit-tiny/run \
    --before-run outputs/demo/nerfacto/nerfacto-tiny/run --out outputs/demo/report

The baseline is the same method, iterations, seed and editor with the relevance mask
disabled (``--pipeline.edit.threshold 0``; the demo also gives it Instruct-NeRF2NeRF's strength
range and guidance, ``relevance_nerf.method_configs.INSTRUCT_NERF2NERF_OPTIONS``); ``--before-run``
(the nerfacto run both started from) adds the unedited reconstruction as a reference row.
Metrics (against the unedited photos and the named object's ground-truth mask): PSNR and
SSIM outside the mask, edit success and the object's colour in each view (at equal brightness:
the requested colour, another palette colour, grey or other), hue spread across views, and,
with ``--before-run``, where each edit changed its render: the share of changed pixels on the
object (precision) and of the object's pixels changed (recall); CLIP text-image and directional
similarity when a CLIP checkpoint is available locally (``--clip``), else those columns are skipped.

An edit run that builds on earlier edits (its ``edits/run.json`` chain) is judged on the object its instruction
names after them, and in a second table on every edit of the chain, each by its own instruction, with PSNR
outside all edited objects; ``--before-run`` is then the run the last edit started from.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from nerfstudio.utils.rich_utils import CONSOLE

import relevance_nerf  # noqa: F401  (nerfstudio checkpoints under torch's weights_only loader)
from editaction.clip_similarity import DEFAULT_CLIP, ClipSimilarity, ClipUnavailableError
from relevance_nerf.edit_store import EditStore
from relevance_nerf.errors import RelevanceEditError
from toyworld.evaluation import (
    CHANGE_THRESHOLD,
    MIN_OBJECT_PIXELS,
    RenderedView,
    RunSettings,
    SceneTruth,
    chain_table,
    load_scene_truth,
    measure,
    measure_chain,
    metrics_json,
    metrics_table,
    read_run_config,
    render_held_out,
    run_settings,
)
from toyworld.metrics import HUE_TOLERANCE_DEGREES, MIN_RELATIVE_CHROMA
from toyworld.report import write_report

EDIT, BASELINE, BEFORE = "relevance-edit", "baseline (no mask)", "before edit"
BASELINE_BEFORE = "baseline before edit"


@dataclass
class EvaluateSceneArgs:
    scene: Path
    """The toy scene the runs were trained on (transforms.json, scene.json, masks/)."""
    edit_run: Path
    """The relevance-edit run: its folder or its config.yml."""
    out: Path
    """Report folder (strips/, orbit.gif, metrics.md, metrics.json); replaced only by a report of the same runs."""
    baseline_run: Path | None = None
    """The same edit with the relevance mask disabled (threshold 0)."""
    before_run: Path | None = None
    baseline_before_run: Path | None = None
    """The run the baseline's last edit started from, when it differs from ``--before-run`` (a chain of baseline
    edits builds on the baseline's own earlier edit)."""
    """The unedited nerfacto run the edits started from (reference row; needed for precision and recall)."""
    clip: str = DEFAULT_CLIP
    """CLIP checkpoint (directory or hub id, local cache only) for the CLIP metrics; 'none' skips them."""


def edit_chain(run_dir: Path) -> list[str]:
    """The instructions of an edit run's chain, oldest first (empty for a run without an edit record)."""
    record = EditStore(run_dir).record()
    return [] if record is None else [link.instruction for link in record.chain]


def _config_path(run: Path) -> Path:
    return run / "config.yml" if run.is_dir() else run


def _check_comparable(edit: RunSettings, baseline: RunSettings) -> None:
    """The baseline must differ from the edit run only in its mask threshold."""
    a, b = dataclasses.asdict(edit), dataclasses.asdict(baseline)
    differing = [k for k in a if k != "threshold" and a[k] != b[k]]
    if differing:
        raise RelevanceEditError(
            "the runs are not comparable: " + ", ".join(f"{k} {a[k]!r} vs {b[k]!r}" for k in differing)
        )
    if b["threshold"] != 0:
        CONSOLE.print(f"[yellow]note: the baseline's mask threshold is {b['threshold']}, not 0 (unmasked)")


def _clip_scores(
    name: str, truth: SceneTruth, renders: dict[str, dict[str, RenderedView]]
) -> tuple[dict[str, dict[str, float]] | None, str]:
    if name.lower() == "none":
        return None, "CLIP metrics skipped (--clip none)"
    try:
        clip = ClipSimilarity.from_pretrained(name, device="cuda" if torch.cuda.is_available() else "cpu")
    except ClipUnavailableError as error:
        return None, f"CLIP metrics skipped: {error}"
    edit = truth.edit
    source, target = f"a {edit.colour} {edit.shape}", f"a {edit.target_colour} {edit.shape}"
    photos = torch.stack([view.photo for view in truth.views])
    scores = {}
    for label, run in renders.items():
        images = torch.stack([run[view.name].rgb for view in truth.views])
        scores[label] = {
            "CLIP text-image": clip.text_image(images, target),
            "CLIP directional": clip.directional(photos, images, source, target),
        }
    return scores, f"CLIP metrics with {name}; captions {source!r} -> {target!r}"


def evaluate(args: EvaluateSceneArgs) -> Path:
    runs = {EDIT: _config_path(args.edit_run)}
    if args.baseline_run is not None:
        runs[BASELINE] = _config_path(args.baseline_run)
    if args.before_run is not None:
        runs[BEFORE] = _config_path(args.before_run)
    if args.baseline_before_run is not None:
        runs[BASELINE_BEFORE] = _config_path(args.baseline_before_run)
    settings = {label: run_settings(read_run_config(path)) for label, path in runs.items()}
    chains = {label: edit_chain(path.parent) for label, path in runs.items() if label in (EDIT, BASELINE)}
    if BASELINE in settings:
        _check_comparable(settings[EDIT], settings[BASELINE])
        if chains[BASELINE][:-1] != chains[EDIT][:-1]:
            raise RelevanceEditError(f"the runs build on other edits: {chains[EDIT]} vs {chains[BASELINE]}")
    text = settings[EDIT].text or ""
    chain = chains[EDIT] or [text]
    truth = load_scene_truth(args.scene, text, chain[:-1])

    previous = args.out / "metrics.json"
    recorded = {label: str(path.resolve()) for label, path in runs.items()}
    if previous.is_file() and json.loads(previous.read_text()).get("runs") != recorded:
        raise RelevanceEditError(f"{args.out} holds the report of other runs; choose another --out")

    renders = {}
    for label, path in runs.items():
        CONSOLE.rule(f"rendering {len(truth.views)} held-out views: {label}")
        renders[label] = render_held_out(path, args.scene)
    befores = {EDIT: renders.get(BEFORE), BASELINE: renders.get(BASELINE_BEFORE, renders.get(BEFORE))}
    rows = {label: measure(truth, run, befores.get(label)) for label, run in renders.items()}
    clip, clip_note = _clip_scores(args.clip, truth, renders)
    chain_rows, chain_text = None, []
    if len(chain) > 1:
        truths = [load_scene_truth(args.scene, instruction, chain[:i]) for i, instruction in enumerate(chain)]
        chain_rows = {label: measure_chain(truths, renders[label], befores[label]) for label in chains}
        chain_text = [
            "",
            f"## The chain of {len(chain)} edits, on the last run's renders",
            "",
            chain_table(chain_rows),
            "",
            "Each edit's object by its own instruction (strict colour test); PSNR outside every edited object "
            "against the render before the last edit (--before-run: the run the last edit started from).",
        ]

    table = metrics_table(rows, clip)
    markdown = "\n".join(
        [
            f"# {text!r} on {truth.directory.name}: {len(truth.views)} held-out views",
            "",
            table,
            "",
            f"Against the unedited photos and the ground-truth mask of the {truth.object_name}. "
            "PSNR/SSIM outside the mask: preservation (higher is better), against the photos and, 'vs before', "
            "against the render before the edit (the change the edit made outside the object). "
            "Edit success: views whose object's mean colour, at equal brightness, is the requested palette colour "
            f"(hue within {HUE_TOLERANCE_DEGREES:g} degrees, at least {MIN_RELATIVE_CHROMA:.0%} of its chroma); "
            "object colour: that class per view (grey: too little chroma; other: between palette hues). "
            "Hue spread across views: lower is better. "
            "Edit precision: of the pixels whose render changed from the render before the edit (some channel by "
            f"more than {CHANGE_THRESHOLD:g}), the share on the object; edit recall: the share of the object's "
            f"pixels that changed; both pooled over the views where the object covers {MIN_OBJECT_PIXELS} pixels "
            "or more. '-': no pixel changed; "
            + ("n/a: the before-edit row itself." if BEFORE in renders else "n/a: needs --before-run."),
            "",
            clip_note + ".",
            "",
            "Runs: " + "; ".join(f"{label}: {dataclasses.asdict(s)}" for label, s in settings.items()),
            *chain_text,
        ]
    )
    summary = {
        "instruction": text,
        "scene": str(truth.directory.resolve()),
        "object": truth.object_name,
        "runs": recorded,
        "settings": {label: dataclasses.asdict(s) for label, s in settings.items()},
        "metrics": metrics_json(rows),
        "clip": clip,
        "clip_note": clip_note,
        "chain": None if chain_rows is None else {label: dataclasses.asdict(c) for label, c in chain_rows.items()},
    }
    gif_runs = tuple(label for label in (EDIT, BASELINE) if label in renders)
    write_report(args.out, truth, renders, markdown, summary, gif_runs)
    CONSOLE.print(table)
    if chain_rows is not None:
        CONSOLE.print(chain_table(chain_rows))
    if BEFORE not in renders:
        CONSOLE.print("[yellow]edit precision and recall not measured: they need --before-run")
    CONSOLE.print(clip_note)
    CONSOLE.print(f"report: {args.out}")
    return args.out


def main() -> None:
    args = tyro.cli(EvaluateSceneArgs, description=__doc__)
    try:
        evaluate(args)
    except RelevanceEditError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
