"""Measure the embedded toy editor on held-out toy pairs and print a table (markdown; --json for a file).

python scripts/evaluate_toy.py --model toyworld/models/toy-editor --action-model toyworld/models/toy-editor-action

Recolour pairs of colour/shape combinations seen in training, unseen ones, and new layouts (more objects,
sizes and places than training's), drawn from the --split's seeds (tune on validation, report test):
  success     the object's mean colour is the requested one at equal brightness (toyworld.metrics.recolour_class)
  after edit  what the object's colour became: the target, still the source, grey, or another colour
  PSNR out    PSNR against the input outside the ground-truth mask, with and without relevance guidance
  IoU         binarized relevance map versus the ground-truth mask
Move pairs, per checkpoint: how often the object moved the instructed way by at least half its size, in its shape
and colour (toyworld.metrics.moved_succeeded), of the pairs that test can measure (no other object of its colour
touches it).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import tyro
from tqdm import tqdm

from editaction import (
    EditConfig,
    Editor,
    EditorLoadError,
    RelevanceConfig,
    read_image,
)
from editaction.config import RelevanceSpace
from editaction.masking import binarize
from editaction.train.dataset import INPUT_KEY, PROMPT_KEY, read_records
from toyworld import TOY_ACTION_EDITOR, TOY_EDIT, TOY_EDITOR, TOY_RELEVANCE
from toyworld.metrics import (
    AFTER_EDIT,
    after_edit,
    iou,
    mean_squared_error,
    move_measurable,
    moved_succeeded,
    psnr_of_mse,
    recolour_class,
)
from toyworld.pairs import EVALUATION_ROWS, MASK_KEY, write_evaluation_pairs

EXACT_PSNR = 100.0
"""dB shown when the median pair is left exactly as it was outside the object (its PSNR is infinite)."""


@dataclass
class EvaluateArgs:
    model: Path = Path(TOY_EDITOR)
    """The base toy editor (recolour and relevance rows)."""
    action_models: list[Path] = field(default_factory=lambda: [Path(TOY_ACTION_EDITOR)])
    """Checkpoints compared on move pairs beside ``model`` (e.g. the action-tuned one and its ablation)."""
    split: Literal["validation", "test"] = "test"
    """The pairs' seeds (``toyworld.pairs.EVALUATION_SEEDS``): tune on validation, report test."""
    rows: tuple[str, ...] = tuple(EVALUATION_ROWS)
    """Rows to measure (names in ``toyworld.pairs.EVALUATION_ROWS``)."""
    count: int = 40
    """Pairs per row."""
    steps: int = TOY_EDIT.steps
    threshold: float = TOY_EDIT.threshold
    text_guidance: float = TOY_EDIT.text_guidance
    image_guidance: float = TOY_EDIT.image_guidance
    noise_samples: int = TOY_RELEVANCE.noise_samples
    """Noise draws averaged per relevance map (WYS code: 1)."""
    iqr_factor: float = TOY_RELEVANCE.iqr_factor
    """Relevance outliers are clamped at Q3 + k * IQR (WYS: 1.5; see ``toyworld.TOY_RELEVANCE``)."""
    relevance_space: RelevanceSpace = TOY_RELEVANCE.space
    """Compare the two predictions as latent noise (WYS) or as decoded images (see ``RelevanceConfig.space``)."""
    seed: int = 1234
    """Seed of the diffusion noise."""
    json_out: Path | None = None


def _input_and_mask(folder: Path, record: dict) -> tuple[torch.Tensor, torch.Tensor]:
    image = read_image(folder / record[INPUT_KEY]).rgb
    mask = read_image(folder / record[MASK_KEY]).rgb[0] > 0.5
    return image, mask


def evaluate_recolour(editor: Editor, folder: Path, args: EvaluateArgs) -> dict[str, float]:
    edit = EditConfig(args.steps, args.text_guidance, args.image_guidance, threshold=args.threshold)
    relevance_config = RelevanceConfig(
        noise_samples=args.noise_samples, iqr_factor=args.iqr_factor, space=args.relevance_space
    )
    rows: dict[str, list[float]] = {"success": [], "mse_out_guided": [], "mse_out_plain": [], "iou": []}
    pairs = []
    for record in tqdm(read_records(folder), desc=f"recolour {folder.name}", unit="pair"):
        image, mask = _input_and_mask(folder, record)
        instruction = record[PROMPT_KEY]
        colour = record["object"].split("_")[0]
        relevance = editor.relevance_map(image, instruction, config=relevance_config, generator=_gen(args))
        guided = editor.edit(image, instruction, relevance=relevance, config=edit, generator=_gen(args)).images[0]
        plain = editor.edit(image, instruction, config=edit, generator=_gen(args)).images[0]
        after = recolour_class(guided.cpu(), mask)
        rows["success"].append(float(after == record["target_colour"]))
        pairs.append(
            {
                "instruction": instruction,
                "after_edit": after_edit(after, colour, record["target_colour"]),
                "colour_class": after,
                "object_rgb": guided.cpu()[:, mask].mean(dim=1).tolist() if mask.any() else None,
            }
        )
        rows["mse_out_guided"].append(mean_squared_error(guided.cpu(), image, ~mask))
        rows["mse_out_plain"].append(mean_squared_error(plain.cpu(), image, ~mask))
        rows["iou"].append(iou(binarize(relevance, args.threshold)[0, 0].cpu(), mask))
    results = {"success": statistics.mean(rows["success"]), "iou": statistics.mean(rows["iou"])}
    for run in ("guided", "plain"):
        errors = rows[f"mse_out_{run}"]
        # The median pair is untouched by pairs left exact outside the object (inf dB); the PSNR of the mean
        # error is dominated by the pairs that spill most.
        results[f"psnr_out_{run}_median"] = min(psnr_of_mse(statistics.median(errors)), EXACT_PSNR)
        results[f"psnr_out_{run}_of_mean"] = psnr_of_mse(statistics.mean(errors))
    results["exact_outside"] = sum(error == 0 for error in rows["mse_out_guided"])
    results["after_edit"] = dict(Counter(pair["after_edit"] for pair in pairs))
    results["pairs"] = pairs
    return results


def evaluate_moves(editor: Editor, folder: Path, args: EvaluateArgs) -> tuple[float, int]:
    """Move success over the pairs the motion test can measure (``move_measurable``), and how many those are."""
    edit = EditConfig(args.steps, args.text_guidance, args.image_guidance, threshold=0.0)
    successes = []
    for record in read_records(folder):
        image, mask = _input_and_mask(folder, record)
        colour = record["object"].split("_")[0]
        if move_measurable(image, mask, colour):
            edited = editor.edit(image, record[PROMPT_KEY], config=edit, generator=_gen(args)).images[0].cpu()
            successes.append(moved_succeeded(image, edited, mask, colour, record["direction"]))
    return (statistics.mean(successes) if successes else math.nan), len(successes)


def _gen(args: EvaluateArgs) -> torch.Generator:
    return torch.Generator().manual_seed(args.seed)


def main() -> None:
    args = tyro.cli(EvaluateArgs, description=__doc__)
    unknown = sorted(set(args.rows) - set(EVALUATION_ROWS))
    if unknown:
        sys.exit(f"error: unknown rows {unknown}; choose from {list(EVALUATION_ROWS)}")
    try:
        editor = Editor.from_pretrained(args.model)
        action_editors = {path.name: Editor.from_pretrained(path) for path in args.action_models}
    except EditorLoadError as error:
        sys.exit(f"error: {error}")
    for each in (editor, *action_editors.values()):
        each.set_progress_bar(False)
    results: dict[str, object] = {
        "model": str(args.model),
        "split": args.split,
        "pairs_per_row": args.count,
        "steps": args.steps,
    }
    recolour_rows = [row for row in args.rows if EVALUATION_ROWS[row].kind == "recolour"]
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_evaluation_pairs(Path(tmp), args.split, args.count, args.rows)
        for row in recolour_rows:
            results[f"recolour_{row}"] = evaluate_recolour(editor, folders[row], args)
        if "moves" in folders:
            moves = {}
            for name, each in {args.model.name: editor, **action_editors}.items():
                moves[name], results["move_pairs_measured"] = evaluate_moves(each, folders["moves"], args)
            results["move_success"] = moves

    print(
        f"\n{args.split} split, {args.count} pairs per row, {args.steps} DDIM steps, guidance text "
        f"{args.text_guidance:g} / image {args.image_guidance:g}, threshold {args.threshold}, "
        f"IQR factor {args.iqr_factor:g}, relevance in {args.relevance_space} space\n"
    )
    if recolour_rows:
        print(
            "| recolour pairs | success | after edit: " + " / ".join(AFTER_EDIT) + " "
            "| PSNR out, guided: median / of mean error (dB) "
            "| PSNR out, plain: median / of mean error (dB) | relevance IoU |"
        )
        print("|---|---|---|---|---|---|")
    for name in recolour_rows:
        row = results[f"recolour_{name}"]
        after = " / ".join(str(row["after_edit"].get(kind, 0)) for kind in AFTER_EDIT)
        print(
            f"| {name} | {row['success']:.0%} | {after} | {row['psnr_out_guided_median']:.1f} / "
            f"{row['psnr_out_guided_of_mean']:.1f} | {row['psnr_out_plain_median']:.1f} / "
            f"{row['psnr_out_plain_of_mean']:.1f} | {row['iou']:.2f} |"
        )
    if recolour_rows:
        exact = ", ".join(f"{name} {results[f'recolour_{name}']['exact_outside']}" for name in recolour_rows)
        print(f"\nguided pairs left exact outside the object: {exact} of {args.count}")
    if "move_success" in results:
        print(f"\n| checkpoint | move success, of {results['move_pairs_measured']} measurable pairs |\n|---|---|")
        for name, value in results["move_success"].items():
            print(f"| {name} | {value:.0%} |")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=2, default=lambda v: None if math.isnan(v) else v))


if __name__ == "__main__":
    main()
