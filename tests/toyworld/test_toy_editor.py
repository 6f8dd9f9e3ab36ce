"""The shipped toy editors load offline with diffusers and really edit held-out toy pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline

from editaction import Editor
from editaction.masking import binarize
from toyworld import TOY_ACTION_EDITOR, TOY_CAPTURE_EDITOR, TOY_EDIT, TOY_EDITOR, TOY_RELEVANCE
from toyworld.metrics import iou, mean_squared_error, psnr_of_mse, recolour_succeeded
from toyworld.pairs import evaluation_pairs

MAX_CHECKPOINT_MB = 30  # per shipped checkpoint: the toy editors ship inside the package
ROWS = {"seen": 8, "new-layouts": 4}
"""Pairs of each row of toyworld.pairs.EVALUATION_ROWS the test edits: held-out seeds, never trained on."""
# Set on the validation split (measure_rows("validation"), shipped base editor, TOY_EDIT) a margin below what the
# shipped editor reaches (figures: docs/results.md); never lower one to pass.
THRESHOLDS = {"successes": 10, "iou": 0.48, "psnr": 24.0}


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("path", [TOY_EDITOR, TOY_ACTION_EDITOR, TOY_CAPTURE_EDITOR])
def test_shipped_checkpoints_load_offline_with_diffusers(path):
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(path)
    assert pipe.unet.config.in_channels == 8 and pipe.vae_scale_factor == 4


def test_shipped_checkpoints_are_small():
    """Each within budget; they share their VAE and text-encoder weights and vocabulary byte for byte."""
    digests = []
    for path in (TOY_EDITOR, TOY_ACTION_EDITOR, TOY_CAPTURE_EDITOR):
        files = {f.relative_to(path): f for f in Path(path).rglob("*") if f.is_file()}
        assert sum(f.stat().st_size for f in files.values()) <= MAX_CHECKPOINT_MB * 2**20
        digests.append({name: hashlib.sha256(f.read_bytes()).hexdigest() for name, f in files.items()})
    shared = [name for name in digests[0] if name.parts[0] in ("vae", "text_encoder") and name.suffix == ".safetensors"]
    shared.append(Path("tokenizer", "tokenizer.json"))
    assert shared and all(digests[0][name] == other.get(name) for other in digests[1:] for name in shared)


def measure_rows(split: str) -> tuple[int, float, float]:
    """Recolours that pass the strict test, mean relevance IoU, and PSNR outside the object (of the mean error)."""
    editor = Editor.from_pretrained(TOY_EDITOR, device="cpu")
    editor.set_progress_bar(False)
    successes, ious, errors = 0, [], []
    for row, count in ROWS.items():
        for pair in evaluation_pairs(split, row, count):
            image, mask = _tensor(pair.input_image), torch.from_numpy(pair.mask)
            generator = torch.Generator().manual_seed(0)
            relevance = editor.relevance_map(image, pair.instruction, config=TOY_RELEVANCE, generator=generator)
            edited = editor.edit(image, pair.instruction, relevance=relevance, config=TOY_EDIT, generator=generator)
            successes += recolour_succeeded(edited.images[0], mask, pair.target_colour)
            ious.append(iou(binarize(relevance, TOY_EDIT.threshold)[0, 0], mask))
            errors.append(mean_squared_error(edited.images[0], image, ~mask))
    return successes, float(np.mean(ious)), psnr_of_mse(float(np.mean(errors)))


def test_toy_editor_recolours_held_out_pairs_only_where_relevant():
    successes, mean_iou, psnr_outside = measure_rows("test")
    assert successes >= THRESHOLDS["successes"], successes
    assert mean_iou >= THRESHOLDS["iou"], mean_iou
    assert psnr_outside >= THRESHOLDS["psnr"], psnr_outside
