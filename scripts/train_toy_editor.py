"""Train the embedded toy editors from scratch on CPU: VAE, CLIP text encoder, IP2P UNet, fine-tunes.

python scripts/train_toy_editor.py --out outputs/toy-editor

Stages (each skipped when its output exists, so an interrupted run continues):
  1. toy edit pairs (toyworld.pairs.TRAINING_SETS): recolours in the evaluation's layouts and in wider, more
     crowded ones with smaller objects, 30% of them naming the object by colour or shape alone; moves (the action
     split); recolours in the capture-like world (toyworld.capture_pairs); no scene holds a held-out colour/shape
     combination
  2. VAE (AutoencoderKL, stride 4) on the pair images
  3. CLIP text encoder, contrastive against the edits (real CLIP tokenizer, built offline)
  4. base editor: the IP2P UNet trained with the EditAction trainer at lambda_action = 0 on the toy recolour
     pairs only (like InstructPix2Pix, whose data has no actions, so the fine-tune has something to add);
     samples whose text is dropped learn to keep the input (TrainConfig.dropped_text_target)
  5. capture editor: the base fine-tuned on the capture-world recolours, so it edits textured, photographed
     scenes (make capture-demo)
  6. action editor: EditAction fine-tune of the base on move pairs (L_action + L_reg, attn2 frozen)
  7. ablation: the same fine-tune without L_action
Results: <out>/base, <out>/capture, <out>/action, <out>/action-no-laction: complete diffusers checkpoints, shipped
as toyworld/models/toy-editor, toy-editor-capture and toy-editor-action (the ablation is not shipped).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from editaction.atomic import atomic_directory, write_text_atomic
from editaction.train.config import TrainConfig
from editaction.train.dataset import EDITED_KEY, INPUT_KEY, read_metadata, read_records, write_metadata
from editaction.train.trainer import EditActionTrainer
from toyworld import TOY_SETTINGS
from toyworld.autoencoder import load_images, train_autoencoder
from toyworld.capture_pairs import CAPTURE_LAYOUTS, CAPTURE_SEED_OFFSET, write_capture_pairs
from toyworld.pairs import MASK_KEY, PARTIAL_REFERENCES, TRAINING_SETS, write_pairs
from toyworld.text_encoder import train_text_encoder
from toyworld.tiny import IP2PArchitecture, build_clip_tokenizer, build_pipeline, save_pipeline

CAPTURE_SET = "recolour-capture"
TOY_ARCHITECTURE = IP2PArchitecture(
    # UNet sized for about 1.0 s per trainer step at batch 32 on 2 CPU cores (3.1M parameters; the first
    # editor's 0.8M fitted its training pairs no better than held-out ones: underfitting). Checkpoint 25 MB,
    # half of it the UNet, a quarter the 49,408 x 32 token embedding.
    unet_channels=(64, 128),
    unet_layers_per_block=1,
    unet_attention_head_dim=8,
    vae_channels=(16, 32, 64),  # three levels: stride 4, 16x16 latents at 64 px
    vae_layers_per_block=1,
    text_hidden=32,
    text_layers=2,
    text_heads=4,
    text_intermediate=64,
    # Chosen on the validation split against IP2P's epsilon: v-prediction weights the
    # clean-image error at high noise, where the edit's colour is decided, instead of hiding it under the noise.
    prediction_type="v_prediction",
)


@dataclass
class ToyEditorArgs:
    out: Path = Path("outputs/toy-editor")
    pairs: tuple[int, ...] = (3000, 1000, 3000)
    """Pairs of each of ``toyworld.pairs.TRAINING_SETS`` (recolour, actions, recolour-wide)."""
    size: int = 64
    vae_steps: int = 2000
    """The first editor's 500 kept the target colour of only 78% of ground-truth edits in new layouts."""
    text_steps: int = 1000
    unet_steps: int = 2000
    unet_batch_size: int = 32
    unet_learning_rate: float = 5e-4
    unet_warmup_steps: int = 100
    conditioning_dropout: float = 0.1
    """IP2P's is 0.05; doubled so more samples teach the no-instruction branch (see ``dropped_text_target``)."""
    changed_region_weight: float = 10.0
    """Loss weight of the latent cells the edit changes (the object covers 2-15% of a view); chosen on validation."""
    capture_pairs: int = 1200
    """Capture-world recolour pairs (``toyworld.capture_pairs``), 12 photos of each random world at most."""
    capture_steps: int = 800
    capture_learning_rate: float = 5e-4
    finetune_steps: int = 150
    finetune_learning_rate: float = 1e-4
    seed: int = 0


def _stage(name: str, done: Path, log: dict) -> bool:
    if done.exists():
        print(f"[{name}] done already: {done}")
        return False
    print(f"[{name}] ...")
    log[name] = {"started": time.time()}
    return True


def _finish(name: str, log: dict, out: Path, **figures) -> None:
    log[name].update(figures, seconds=round(time.time() - log[name].pop("started"), 1))
    write_text_atomic(out / "training_log.json", json.dumps(log, indent=2))
    print(f"[{name}] {log[name]}")


def _read_set(folder: Path) -> tuple[list, torch.Tensor, torch.Tensor]:
    """A pair set's records, input images and edited images."""
    records = read_metadata(folder)
    return records, load_images([r.input_image for r in records]), load_images([r.edited_image for r in records])


def _unet_run(args: ToyEditorArgs, model: Path, data: Path, output: Path, steps: int, lr: float, **settings) -> Path:
    config = TrainConfig(
        model=str(model),
        data_dir=data,
        output_dir=output,
        resolution=args.size,
        batch_size=args.unet_batch_size,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=lr,
        checkpoint_every=max(steps // 4, 1),
        seed=args.seed,
        lr_scheduler="cosine",
        resume="latest" if (output / "checkpoints").exists() else None,
        conditioning_dropout=args.conditioning_dropout,
        # Toy edits are few kinds that do not average out, so the text-free branch is taught "no change"
        # explicitly: the relevance maps (text vs no-text gap) then light up only where the edit goes.
        dropped_text_target="input",
        **settings,
    )
    return EditActionTrainer(config).train()


def main() -> None:
    args = tyro.cli(ToyEditorArgs, description=__doc__)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "training_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    torch.manual_seed(args.seed)
    if len(args.pairs) != len(TRAINING_SETS):
        names = ", ".join(s.name for s in TRAINING_SETS)
        raise SystemExit(f"error: --pairs takes {len(TRAINING_SETS)} counts ({names})")
    data = {name: out / "data" / name for name in [*(s.name for s in TRAINING_SETS), CAPTURE_SET]}
    recolour_sets = [s.name for s in TRAINING_SETS if s.kind == "recolour"]
    if _stage("pairs", out / "data" / "recolour-all" / "metadata.jsonl", log):
        for spec, count in zip(TRAINING_SETS, args.pairs, strict=True):
            if not (data[spec.name] / "metadata.jsonl").exists():
                write_pairs(
                    data[spec.name],
                    count,
                    (spec.kind,),
                    "train",
                    size=args.size,
                    seed=args.seed + spec.seed_offset,
                    layouts=spec.layouts,
                    partial_references=spec.partial_references,
                )
        write_metadata(  # one data set of every toy recolour pair, pointing at the images where they are
            out / "data" / "recolour-all",
            [
                {k: f"../{name}/{v}" if k in (INPUT_KEY, EDITED_KEY, MASK_KEY) else v for k, v in r.items()}
                for name in recolour_sets
                for r in read_records(data[name])
            ],
        )
        _finish("pairs", log, out, **{s.name: n for s, n in zip(TRAINING_SETS, args.pairs, strict=True)})
    if _stage("capture pairs", data[CAPTURE_SET] / "metadata.jsonl", log):
        write_capture_pairs(data[CAPTURE_SET], args.capture_pairs, args.seed + CAPTURE_SEED_OFFSET,
                            CAPTURE_LAYOUTS, partial_references=PARTIAL_REFERENCES)  # fmt: skip
        _finish("capture pairs", log, out, pairs=args.capture_pairs)
    static_dir, action_dir = out / "data" / "recolour-all", data["actions"]

    init = out / "init"
    if _stage("components", init / "model_index.json", log):
        # Each set's images read once: the VAE learns from all of them, the UNet's recolours first.
        sets = {s.name: _read_set(data[s.name]) for s in TRAINING_SETS}
        vae_order = [*recolour_sets, *(s.name for s in TRAINING_SETS if s.kind != "recolour")]
        inputs, edited = (torch.cat([sets[name][part] for name in vae_order]) for part in (1, 2))
        pipe = build_pipeline(TOY_ARCHITECTURE, seed=args.seed)
        vae_figures = train_autoencoder(
            pipe.vae, torch.cat([inputs, edited]), args.vae_steps, batch_size=16, seed=args.seed
        )
        # Contrastive: instructions matched to the edits they name. In the wide layouts an edit can be a few
        # pixels, which names no word; with them in, 300 steps left target words 4% of the norm apart.
        text_sets = [sets[s.name] for s in TRAINING_SETS if s.teaches_text]
        text_figures = train_text_encoder(
            pipe.text_encoder,
            build_clip_tokenizer(),
            torch.cat([inputs for _, inputs, _ in text_sets]),
            torch.cat([edited for _, _, edited in text_sets]),
            [record.instruction for records, _, _ in text_sets for record in records],
            args.text_steps,
            seed=args.seed,
        )
        with atomic_directory(init) as staging:
            save_pipeline(pipe, staging)
        _finish("components", log, out, **vae_figures, **text_figures)

    base_settings = dict(
        lambda_action=0.0,
        lambda_reg=0.0,
        freeze_cross_attention=False,
        lr_warmup_steps=args.unet_warmup_steps,
        changed_region_weight=args.changed_region_weight,
    )
    runs = {
        "base": (
            init,
            static_dir,
            args.unet_steps,
            args.unet_learning_rate,
            base_settings,
        ),
        "capture": (
            out / "base",
            data[CAPTURE_SET],
            args.capture_steps,
            args.capture_learning_rate,
            base_settings,
        ),
        "action": (out / "base", action_dir, args.finetune_steps, args.finetune_learning_rate, {}),
        "action-no-laction": (
            out / "base",
            action_dir,
            args.finetune_steps,
            args.finetune_learning_rate,
            dict(lambda_action=0.0),
        ),
    }
    for name, (model, data, steps, lr, settings) in runs.items():
        if _stage(name, out / name / "model_index.json", log):
            final = _unet_run(args, model, data, out / "runs" / name, steps, lr, **settings)
            with atomic_directory(out / name) as staging:
                shutil.copytree(final, staging, dirs_exist_ok=True)
                TOY_SETTINGS.save(staging)  # the settings the toy editors were tuned for travel with them
            _finish(name, log, out, steps=steps)


if __name__ == "__main__":
    main()
