"""Measure why a toy editor's recolours fail, without training (issue 16): prints markdown tables.

python scripts/diagnose_toy_editor.py --model toyworld/models/toy-editor --split validation --count 20

Parts (``--parts``): data (layouts of training vs new-layout pairs, model size), vae (ground-truth
edits through the VAE), text (does the target colour word reach the UNet and the output?),
guidance (relevance-guided success over text x image guidance scales), fit (the training loss on
training pairs against held-out ones). See ``toyworld.diagnosis``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from editaction import EditConfig, Editor, EditorLoadError
from editaction.atomic import write_text_atomic
from toyworld import TOY_EDITOR, TOY_RELEVANCE
from toyworld.diagnosis import (
    RecolourPair,
    denoising_error,
    guidance_grid,
    layout_summary,
    model_size,
    target_word_probe,
    training_recolour_pairs,
    vae_round_trip,
)
from toyworld.metrics import AFTER_EDIT
from toyworld.pairs import NEW_LAYOUTS, TRAINING_LAYOUTS, evaluation_pairs

Part = Literal["data", "vae", "text", "guidance", "fit"]


@dataclass
class DiagnoseArgs:
    model: Path = Path(TOY_EDITOR)
    split: Literal["validation", "test"] = "validation"
    """Pairs' seeds (``toyworld.pairs.EVALUATION_SEEDS``): diagnose and tune on validation."""
    count: int = 20
    """Recolour pairs per row (the seen and new-layouts rows)."""
    parts: tuple[Part, ...] = ("data", "vae", "text", "guidance", "fit")
    steps: int = 20
    text_scales: tuple[float, ...] = (3.0, 7.5, 12.0)
    image_scales: tuple[float, ...] = (1.0, 1.5)
    seed: int = 1234
    """Seed of the diffusion noise."""
    json_out: Path | None = None


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    args = tyro.cli(DiagnoseArgs, description=__doc__)
    try:
        editor = Editor.from_pretrained(args.model)
    except EditorLoadError as error:
        sys.exit(f"error: {error}")
    editor.set_progress_bar(False)
    rows = {
        row: [RecolourPair.of(p) for p in evaluation_pairs(args.split, row, args.count)]
        for row in ("seen", "new-layouts")
    }
    results: dict[str, object] = {"model": str(args.model), "split": args.split, "pairs_per_row": args.count}
    print(f"\n{args.model}, {args.split} split, {args.count} pairs per row, {args.steps} DDIM steps\n")
    if "data" in args.parts:
        layouts = {"training": layout_summary(TRAINING_LAYOUTS, 1000), "new": layout_summary(NEW_LAYOUTS, 1000)}
        results["layouts"], results["model_size"] = layouts, model_size(editor)
        print(_table(["layouts", *next(iter(layouts.values()))], [[name, *s.values()] for name, s in layouts.items()]))
        print("\nparameters: " + ", ".join(f"{k} {v:,}" for k, v in results["model_size"].items()) + "\n")
    if "vae" in args.parts:
        vae = {row: vae_round_trip(editor, pairs) for row, pairs in rows.items()}
        results["vae"] = vae
        print(
            _table(
                ["ground truth through the VAE", *next(iter(vae.values()))], [[r, *v.values()] for r, v in vae.items()]
            )
        )
        print()
    if "text" in args.parts:
        probe = target_word_probe(editor, rows["seen"], EditConfig(args.steps, threshold=0.0), seed=args.seed)
        results["text"] = probe
        print(_table(["target word probe (seen row)", "value"], [[k, v] for k, v in probe.items()]) + "\n")
    if "guidance" in args.parts:
        grid = guidance_grid(
            editor, rows["seen"], args.text_scales, args.image_scales, EditConfig(args.steps), TOY_RELEVANCE, args.seed
        )
        results["guidance"] = {f"text {t:g} / image {i:g}": counts for (t, i), counts in grid.items()}
        print(
            _table(
                ["text / image guidance (seen row)", "success", *AFTER_EDIT],
                [
                    [
                        f"{t:g} / {i:g}",
                        counts.get("target", 0) / len(rows["seen"]),
                        *(counts.get(k, 0) for k in AFTER_EDIT),
                    ]
                    for (t, i), counts in grid.items()
                ],
            )
        )
    if "fit" in args.parts:
        fit = {"training pairs": training_recolour_pairs(args.count), **rows}
        results["fit"] = {name: denoising_error(editor, pairs, seed=args.seed) for name, pairs in fit.items()}
        print(
            _table(
                ["training loss, full conditioning", *next(iter(results["fit"].values()))],
                [[name, *errors.values()] for name, errors in results["fit"].items()],
            )
        )
    if args.json_out is not None:
        write_text_atomic(args.json_out, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
