"""Measure the embedded toy editor on held-out toy pairs and print a table (markdown; --json for a file).

python scripts/evaluate_toy.py --model toyworld/models/toy-editor --action-model toyworld/models/toy-editor-action

Recolour pairs (held-out seeds, and unseen colour/shape combinations):
  success     the object's mean colour is closer to the requested colour than to its original
  PSNR out    PSNR against the input outside the ground-truth mask, with and without relevance guidance
  IoU         binarized relevance map versus the ground-truth mask
Move pairs: how often the object's colour centroid moves the instructed way, per checkpoint.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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
from toyworld import TOY_ACTION_EDITOR, TOY_EDITOR, TOY_RELEVANCE
from toyworld.metrics import iou, mean_squared_error, moved_towards, psnr_of_mse, recolour_succeeded
from toyworld.pairs import MASK_KEY, write_pairs

EXACT_PSNR = 100.0
"""dB shown when the median pair is left exactly as it was outside the object (its PSNR is infinite)."""


@dataclass
class EvaluateArgs:
    model: Path = Path(TOY_EDITOR)
    """The base toy editor (recolour and relevance rows)."""
    action_models: list[Path] = field(default_factory=lambda: [Path(TOY_ACTION_EDITOR)])
    """Checkpoints compared on move pairs beside ``model`` (e.g. the action-tuned one and its ablation)."""
    count: int = 40
    """Pairs per row."""
    steps: int = 20
    threshold: float = 0.5
    text_guidance: float = 7.5
    image_guidance: float = 1.5
    noise_samples: int = TOY_RELEVANCE.noise_samples
    """Noise draws averaged per relevance map (WYS code: 1)."""
    iqr_factor: float = TOY_RELEVANCE.iqr_factor
    """Relevance outliers are clamped at Q3 + k * IQR (WYS: 1.5; see ``toyworld.TOY_RELEVANCE``)."""
    relevance_space: RelevanceSpace = TOY_RELEVANCE.space
    """Compare the two predictions as latent noise (WYS) or as decoded images (see ``RelevanceConfig.space``)."""
    seed: int = 1234
    """Seed of the held-out pairs (training used seeds 0 and 1) and of the diffusion noise."""
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
    for record in tqdm(read_records(folder), desc=f"recolour {folder.name}", unit="pair"):
        image, mask = _input_and_mask(folder, record)
        instruction = record[PROMPT_KEY]
        colour = record["object"].split("_")[0]
        relevance = editor.relevance_map(image, instruction, config=relevance_config, generator=_gen(args))
        guided = editor.edit(image, instruction, relevance=relevance, config=edit, generator=_gen(args)).images[0]
        plain = editor.edit(image, instruction, config=edit, generator=_gen(args)).images[0]
        rows["success"].append(float(recolour_succeeded(guided.cpu(), mask, colour, record["target_colour"])))
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
    return results


def evaluate_moves(editor: Editor, folder: Path, args: EvaluateArgs) -> float:
    edit = EditConfig(args.steps, args.text_guidance, args.image_guidance, threshold=0.0)
    successes = []
    for record in read_records(folder):
        image = read_image(folder / record[INPUT_KEY]).rgb
        edited = editor.edit(image, record[PROMPT_KEY], config=edit, generator=_gen(args)).images[0].cpu()
        successes.append(moved_towards(image, edited, record["object"].split("_")[0], record["direction"]))
    return statistics.mean(successes)


def _gen(args: EvaluateArgs) -> torch.Generator:
    return torch.Generator().manual_seed(args.seed)


def main() -> None:
    args = tyro.cli(EvaluateArgs, description=__doc__)
    try:
        editor = Editor.from_pretrained(args.model)
        action_editors = {path.name: Editor.from_pretrained(path) for path in args.action_models}
    except EditorLoadError as error:
        sys.exit(f"error: {error}")
    for each in (editor, *action_editors.values()):
        each.set_progress_bar(False)
    results: dict[str, object] = {"model": str(args.model), "pairs_per_row": args.count, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_pairs(data / "test", args.count, ("recolour",), "test", seed=args.seed)
        write_pairs(data / "unseen", args.count, ("recolour",), "unseen", seed=args.seed + 1)
        write_pairs(data / "moves", args.count, ("move",), "test", seed=args.seed + 2)
        for split in ("test", "unseen"):
            results[f"recolour_{split}"] = evaluate_recolour(editor, data / split, args)
        moves = {args.model.name: evaluate_moves(editor, data / "moves", args)}
        for name, action_editor in action_editors.items():
            moves[name] = evaluate_moves(action_editor, data / "moves", args)
        results["move_success"] = moves

    print(
        f"\n{args.count} pairs per row, {args.steps} DDIM steps, threshold {args.threshold}, "
        f"IQR factor {args.iqr_factor:g}, relevance in {args.relevance_space} space\n"
    )
    print(
        "| recolour split | success | PSNR out, guided: median / of mean error (dB) "
        "| PSNR out, plain: median / of mean error (dB) | relevance IoU |"
    )
    print("|---|---|---|---|---|")
    for split in ("test", "unseen"):
        row = results[f"recolour_{split}"]
        print(
            f"| {split} | {row['success']:.0%} | {row['psnr_out_guided_median']:.1f} / "
            f"{row['psnr_out_guided_of_mean']:.1f} | {row['psnr_out_plain_median']:.1f} / "
            f"{row['psnr_out_plain_of_mean']:.1f} | {row['iou']:.2f} |"
        )
    exact = ", ".join(f"{split} {results[f'recolour_{split}']['exact_outside']}" for split in ("test", "unseen"))
    print(f"\nguided pairs left exact outside the object: {exact} of {args.count}")
    print("\n| checkpoint | move success |\n|---|---|")
    for name, value in moves.items():
        print(f"| {name} | {value:.0%} |")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=2, default=lambda v: None if math.isnan(v) else v))


if __name__ == "__main__":
    main()
