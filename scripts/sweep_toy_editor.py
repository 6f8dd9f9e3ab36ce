"""Toy-editor UNet recipes side by side: one data set, trainings in parallel processes, the validation split.

    python scripts/sweep_toy_editor.py --out /tmp/sweep --init outputs/toy-editor/init --report /tmp/sweep.json
    python scripts/sweep_toy_editor.py ... --only eps v-reg10      # some of the variants

Every variant starts from ``--init`` (the VAE, text encoder and tokenizer of ``scripts/train_toy_editor.py``'s
"components" stage; its UNet is replaced by a fresh one per variant) and trains on recolour pairs drawn like that
script's (``toyworld.pairs.TRAINING_SETS``, other seeds, in parallel chunks), batch 32, cosine decay. Each is then
measured on ``--count`` validation pairs per row (seen, new layouts, unseen): relevance IoU, and strict recolour
successes with the true mask and with the model's own relevance at guidance 3 / 1 and 7.5 / 1.5. Made for one GPU
(all variants at once took 7.5 min on an H200); variants still running at ``--deadline`` seconds are stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from train_toy_editor import TOY_ARCHITECTURE  # scripts/, on the path when this script runs

from editaction import EditConfig, Editor
from editaction.masking import binarize
from editaction.train.config import TrainConfig
from editaction.train.dataset import EDITED_KEY, INPUT_KEY, read_records, write_metadata
from editaction.train.trainer import EditActionTrainer
from toyworld import TOY_RELEVANCE
from toyworld.metrics import iou, recolour_class, recolour_succeeded
from toyworld.pairs import MASK_KEY, TRAINING_SETS, evaluation_pairs, write_pairs
from toyworld.tiny import build_scheduler, build_unet

VARIANTS = [
    # name, steps, lr, prediction, snr_gamma, changed-region weight (UNet: "wide" 96/192 channels, "deep" 2 layers
    # per block, "3lvl" 64/128/128; otherwise scripts/train_toy_editor.py's 64/128, 1 layer)
    ("v-reg5-wide", 2000, 5e-4, "v_prediction", None, 5.0),
    ("v-reg5-deep", 2000, 5e-4, "v_prediction", None, 5.0),
    ("v-reg5-lr1e3", 2000, 1e-3, "v_prediction", None, 5.0),
    ("v-reg10", 2000, 5e-4, "v_prediction", None, 10.0),
    ("v-reg5-3lvl", 2000, 5e-4, "v_prediction", None, 5.0),
    ("eps", 2000, 5e-4, "epsilon", None, 1.0),
    ("v", 2000, 5e-4, "v_prediction", None, 1.0),
    ("eps-snr5", 2000, 5e-4, "epsilon", 5.0, 1.0),
    ("eps-reg5", 2000, 5e-4, "epsilon", None, 5.0),
    ("v-snr5", 2000, 5e-4, "v_prediction", 5.0, 1.0),
    ("v-reg5", 2000, 5e-4, "v_prediction", None, 5.0),
    ("v-snr5-reg5", 2000, 5e-4, "v_prediction", 5.0, 5.0),
    ("v-snr5-reg10", 2000, 5e-4, "v_prediction", 5.0, 10.0),
    ("v-snr5-reg5-4k", 4000, 5e-4, "v_prediction", 5.0, 5.0),
]


def _chunk(job):
    out, count, seed, layouts, partial_references = job
    write_pairs(Path(out), count, ("recolour",), "train", 64, seed, layouts, partial_references)
    return out


def make_data(out: Path, per_set: int, chunks: int) -> Path:
    """Recolour pairs of each recolour set of TRAINING_SETS, drawn in parallel chunks, and one set of them all."""
    jobs = []
    for s in TRAINING_SETS:
        if s.kind != "recolour":
            continue
        for c in range(chunks):
            seed = 50_000 + 100 * s.seed_offset + c
            jobs.append((str(out / f"{s.name}-{c}"), per_set // chunks, seed, s.layouts, s.partial_references))
    with mp.get_context("fork").Pool(min(len(jobs), 12)) as pool:
        folders = pool.map(_chunk, jobs)
    records = []
    for folder in folders:
        name = Path(folder).name
        for r in read_records(folder):
            records.append({k: f"../{name}/{v}" if k in (INPUT_KEY, EDITED_KEY, MASK_KEY) else v for k, v in r.items()})
    write_metadata(out / "all", records)
    return out / "all"


def build_model(init: Path, target: Path, prediction: str, name: str = "") -> None:
    """``init`` with a fresh UNet (seed 0) of the variant's size and a scheduler of its prediction type."""
    layers = 2 if "deep" in name else TOY_ARCHITECTURE.unet_layers_per_block
    channels = (96, 192) if "wide" in name else (64, 128, 128) if "3lvl" in name else TOY_ARCHITECTURE.unet_channels
    arch = dataclasses.replace(TOY_ARCHITECTURE, unet_channels=channels, unet_layers_per_block=layers)
    shutil.copytree(init, target)
    torch.manual_seed(0)
    build_unet(arch).save_pretrained(target / "unet", safe_serialization=True)
    build_scheduler(prediction).save_pretrained(target / "scheduler")


def evaluate(model: Path, device: str, count: int) -> dict:
    """Validation figures of one trained variant (see the module docstring)."""
    editor = Editor.from_pretrained(model, device=device, dtype=torch.float32)
    editor.set_progress_bar(False)
    results = {}
    for row in ("seen", "new-layouts", "unseen"):
        pairs = list(evaluation_pairs("validation", row, count))
        images = torch.stack([torch.from_numpy(p.input_image).permute(2, 0, 1).float() / 255 for p in pairs])
        masks = torch.stack([torch.from_numpy(p.mask) for p in pairs])
        texts = [p.instruction for p in pairs]
        rel = editor.relevance_map(
            images, texts, config=TOY_RELEVANCE, generator=torch.Generator().manual_seed(0)
        ).cpu()
        ious = [float(iou(binarize(rel[i : i + 1], 0.5)[0, 0], masks[i])) for i in range(len(pairs))]
        row_out = {"iou": float(np.mean(ious))}
        for tg, ig in ((3.0, 1.0), (7.5, 1.5)):
            cfg = EditConfig(steps=20, text_guidance=tg, image_guidance=ig)
            for name, relevance in (("true", masks[:, None].float()), ("rel", rel)):
                out = editor.edit(
                    images, texts, relevance=relevance, config=cfg, generator=torch.Generator().manual_seed(0)
                ).images.cpu()
                ok = [recolour_succeeded(out[i], masks[i], pairs[i].target_colour) for i in range(len(pairs))]
                row_out[f"{name}@{tg:g}/{ig:g}"] = sum(ok)
                if name == "true" and tg == 3.0:
                    classes = [recolour_class(out[i], masks[i]) for i in range(len(pairs))]
                    row_out["true@3/1 grey"] = classes.count("grey")
        results[row] = row_out
    return results


def run_variant(spec, args) -> None:
    name, steps, lr, prediction, snr, region = spec
    steps = max(int(steps * args.scale), 2)
    work = Path(args.out) / name
    log = work / "log.txt"
    work.mkdir(parents=True, exist_ok=True)
    sys.stdout = sys.stderr = open(log, "w", buffering=1)
    try:
        torch.set_num_threads(1)

        build_model(Path(args.init), work / "model", prediction, name)
        start = time.time()
        config = TrainConfig(
            model=str(work / "model"),
            data_dir=Path(args.out) / "data" / "all",
            output_dir=work / "run",
            resolution=64,
            batch_size=32,
            gradient_accumulation_steps=1,
            max_steps=steps,
            learning_rate=lr,
            checkpoint_every=steps,
            seed=0,
            lr_scheduler="cosine",
            conditioning_dropout=0.1,
            dropped_text_target="input",
            lambda_action=0.0,
            lambda_reg=0.0,
            freeze_cross_attention=False,
            lr_warmup_steps=100,
            snr_gamma=snr,
            changed_region_weight=region,
            num_workers=args.workers,
            log_every=50,
        )
        final = EditActionTrainer(config).train()
        train_s = time.time() - start
        result = {"name": name, "steps": steps, "train_s": round(train_s, 1)}
        result.update(evaluate(final, args.device, args.count))
        result["eval_s"] = round(time.time() - start - train_s, 1)
        (work / "result.json").write_text(json.dumps(result))
        print("RESULT", json.dumps(result))
    except Exception:
        traceback.print_exc()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--init", required=True)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--deadline", type=float, default=470)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--report", default=None)
    args = parser.parse_args()
    start = time.time()
    out = Path(args.out)
    if not (out / "data" / "all" / "metadata.jsonl").exists():
        make_data(out / "data", args.pairs, args.chunks)
    print(f"data {time.time() - start:.0f} s", flush=True)
    specs = [s for s in VARIANTS if not args.only or s[0] in args.only]
    procs = [mp.get_context("spawn").Process(target=run_variant, args=(s, args)) for s in specs]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs) and time.time() - start < args.deadline:
        time.sleep(5)
    for p in procs:
        if p.is_alive():
            p.terminate()
    rows = []
    for s in specs:
        f = out / s[0] / "result.json"
        if f.exists():
            rows.append(json.loads(f.read_text()))
        else:
            tail = (out / s[0] / "log.txt").read_text()[-1500:] if (out / s[0] / "log.txt").exists() else ""
            print(f"--- {s[0]} unfinished; log tail:\n{tail}")
    for r in rows:
        print(json.dumps(r))
    if args.report:
        Path(args.report).write_text(json.dumps(rows, indent=1))
    print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
