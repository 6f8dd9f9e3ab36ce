"""Training settings, loadable from YAML presets in ``configs/`` and overridable on the command line."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import yaml


@dataclass
class TrainConfig:
    model: str = "timbrooks/instruct-pix2pix"
    """Starting InstructPix2Pix checkpoint (diffusers directory or hub id); never modified."""
    data_dir: Path = Path("data/actions")
    """Folder with metadata.jsonl (see editaction/train/dataset.py)."""
    output_dir: Path = Path("outputs/editaction")
    """Checkpoints, logs and the final diffusers checkpoint (output_dir/final)."""
    resolution: int = 256
    """Training resolution (EditAction: 256 px)."""
    batch_size: int = 4
    """Samples per device per micro-batch."""
    gradient_accumulation_steps: int = 16
    """Micro-batches per optimizer step (4 x 16 = the paper's batch of 64 on one GPU)."""
    max_steps: int = 10_000
    """Optimizer steps (EditAction: 10k)."""
    learning_rate: float = 1e-4
    """AdamW learning rate (EditAction: 1e-4)."""
    lr_scheduler: Literal["constant_with_warmup", "cosine"] = "constant_with_warmup"
    """Learning-rate schedule after warm-up (EditAction: constant; cosine decays to 0 at ``max_steps``)."""
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    lambda_action: float = 0.5
    """Weight of the contrastive action loss (EditAction author's code: 0.5); 0 trains plain IP2P."""
    ignore_stop_words: bool = True
    """Negatives for the action loss share no token with the right instruction, not counting stop words ("the",
    "a", "of", ...: editaction/train/negatives.py STOP_WORDS); False counts every token (EditAction's rule)."""
    lambda_reg: float = 0.01
    """Weight of the pull towards the frozen starting UNet (author's code: 0.01); 0 skips the reference UNet."""
    freeze_cross_attention: bool = True
    """Freeze every attn2 (cross-attention) parameter (EditAction; False for the ablation)."""
    conditioning_dropout: float = 0.05
    """IP2P: drop the text for p, the image for p, and both for p of the samples."""
    dropped_text_target: Literal["edited", "input"] = "edited"
    """What samples without their text learn to produce: the edited image (IP2P) or the input ("no
    instruction, no change"). IP2P's text-free branch nearly reproduces the input because its many edit
    kinds average out; a data set of few edit kinds (the toy world) needs "input" for the same behaviour,
    on which relevance maps (the text vs no-text gap) rely."""
    changed_region_weight: float = 1.0
    """Loss weight of the latent cells where the edited image differs from the input (1: uniform, as IP2P). An
    edit that touches a few percent of the view otherwise learns mostly to copy the rest."""
    changed_region_tolerance: float = 0.05
    """A pixel counts as changed when an RGB channel moves by more than this (images in [0, 1])."""
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    use_ema: bool = False
    """Keep an exponential moving average of the UNet and export it."""
    ema_decay: float = 0.9999
    checkpoint_every: int = 500
    """Save a resumable checkpoint every N optimizer steps."""
    checkpoints_to_keep: int = 3
    resume: str | None = None
    """'latest' or a checkpoint directory, to continue a run exactly where it stopped."""
    log_every: int = 10
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        self.data_dir, self.output_dir = Path(self.data_dir), Path(self.output_dir)
        positive = ("resolution", "batch_size", "gradient_accumulation_steps", "max_steps", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, got {self.resolution}")
        if not 0 <= self.conditioning_dropout <= 1 / 3:
            raise ValueError(f"conditioning_dropout must be in [0, 1/3], got {self.conditioning_dropout}")
        if self.changed_region_weight < 1:
            raise ValueError(f"changed_region_weight must be at least 1, got {self.changed_region_weight}")
        if self.lambda_action < 0 or self.lambda_reg < 0:
            raise ValueError("lambda_action and lambda_reg must be non-negative")


def load_config(path: str | Path) -> TrainConfig:
    """A ``TrainConfig`` from a YAML preset; unknown keys are an error, not silently ignored."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    known = {field.name for field in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return TrainConfig(**values)
