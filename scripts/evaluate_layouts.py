"""The 3D method on toy layouts nobody tuned on: one demo per layout, one table.

python scripts/evaluate_layouts.py --split validation --out outputs/layouts
python scripts/evaluate_layouts.py --split test --out outputs/layouts

Each layout of ``toyworld.scene_layouts.SCENE_LAYOUT_SEEDS[split]`` (3-4 objects placed at random, one
recoloured to a random other colour) is rendered and run through ``scripts/demo.py`` (nerfacto,
relevance-edit, the Instruct-NeRF2NeRF baseline, the held-out evaluation) into ``OUT/<split>-<seed>``; the table
gathers each report's figures. Choose settings on ``validation``, report ``test``. Interrupted? Run it again:
finished demos are skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from editaction.atomic import write_text_atomic
from editaction.config import EditSchedule
from toyworld import TOY_EDITOR, write_scene
from toyworld.scene_layouts import SCENE_LAYOUT_SEEDS, layout_scene

SCRIPTS = Path(__file__).resolve().parent


@dataclass
class EvaluateLayoutsArgs:
    out: Path = Path("outputs/layouts")
    split: Literal["validation", "test"] = "validation"
    editor: str = TOY_EDITOR
    edit_schedule: EditSchedule | None = None
    """Passed to every demo (default: the preset's)."""
    clip: str = "none"
    """CLIP metrics off by default: the layouts are judged by the strict colour test."""


def run_layout(args: EvaluateLayoutsArgs, seed: int) -> dict:
    layout = layout_scene(seed)
    folder = args.out / f"{args.split}-{seed}"
    scene = folder / "scene"
    if not (scene / "transforms.json").is_file():
        write_scene(scene, layout.spec)
    command = [
        sys.executable, str(SCRIPTS / "demo.py"), "--scene", str(scene), "--text", layout.instruction,
        "--editor", args.editor, "--out", str(folder / "demo"), "--clip", args.clip,
    ]  # fmt: skip
    if args.edit_schedule is not None:
        command += ["--edit-schedule", args.edit_schedule]
    if subprocess.run(command).returncode != 0:
        sys.exit(f"error: the demo of layout {seed} failed (see above); run the same command again to continue")
    metrics = json.loads((folder / "demo" / "report" / "metrics.json").read_text())
    return {"seed": seed, "instruction": layout.instruction, "metrics": metrics}


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[dict]) -> str:
    lines = [
        "| layout | instruction | run | strict success | PSNR outside vs before (dB) | hue spread (deg) "
        "| edit precision | edit recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for run in ("relevance-edit", "baseline (no mask)"):
            row = result["metrics"]["metrics"][run]
            lines.append(
                f"| {result['seed']} | {result['instruction']} | {run} | {_number(row['edit_success'], '.0%')} "
                f"| {_number(row['psnr_outside_vs_before'], '.1f')} | {_number(row['hue_spread'], '.1f')} "
                f"| {_number(row['edit_precision'], '.2f')} | {_number(row['edit_recall'], '.2f')} |"
            )
    return "\n".join(lines)


def main() -> None:
    args = tyro.cli(EvaluateLayoutsArgs, description=__doc__)
    results = [run_layout(args, seed) for seed in SCENE_LAYOUT_SEEDS[args.split]]
    text = table(results)
    write_text_atomic(args.out / f"{args.split}.md", text + "\n")
    write_text_atomic(args.out / f"{args.split}.json", json.dumps(results, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
