"""The shipped toy editors load offline with diffusers and really edit held-out toy pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline

from editaction import EditConfig, Editor
from editaction.masking import binarize
from toyworld import TOY_ACTION_EDITOR, TOY_EDITOR, TOY_RELEVANCE
from toyworld.metrics import iou, mean_squared_error, psnr_of_mse, recolour_succeeded
from toyworld.pairs import make_pair

MAX_REPOSITORY_MB = 30
# Measured with the shipped base editor and TOY_RELEVANCE on these 4 pairs: 2/4 recoloured by the colour test
# (the other two turn grey; the chroma-direction test before it counted 4/4), mean relevance IoU 0.57, PSNR outside
# the object 25.2 dB (of the mean error; one pair spills to 20.8 dB, one stays exact); IoU and PSNR leave a margin.
THRESHOLDS = {"successes": 2, "iou": 0.45, "psnr": 23.0}


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("path", [TOY_EDITOR, TOY_ACTION_EDITOR])
def test_shipped_checkpoints_load_offline_with_diffusers(path):
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(path)
    assert pipe.unet.config.in_channels == 8 and pipe.vae_scale_factor == 4


def test_shipped_checkpoints_are_small():
    """The two share their VAE, text encoder and tokenizer byte for byte, so git stores those once."""
    files = [f for p in (TOY_EDITOR, TOY_ACTION_EDITOR) for f in Path(p).rglob("*") if f.is_file()]
    stored = {hashlib.sha256(f.read_bytes()).hexdigest(): f.stat().st_size for f in files}
    assert sum(stored.values()) < MAX_REPOSITORY_MB * 2**20


def test_toy_editor_recolours_held_out_pairs_only_where_relevant():
    editor = Editor.from_pretrained(TOY_EDITOR, device="cpu")
    editor.set_progress_bar(False)
    rng = np.random.default_rng(2024)  # not a training seed
    successes, ious, errors = [], [], []
    for _ in range(4):
        pair = make_pair(rng, "recolour", held_out=False)
        image, mask = _tensor(pair.input_image), torch.from_numpy(pair.mask)
        generator = torch.Generator().manual_seed(0)
        relevance = editor.relevance_map(image, pair.instruction, config=TOY_RELEVANCE, generator=generator)
        edited = editor.edit(
            image, pair.instruction, relevance=relevance, config=EditConfig(steps=20), generator=generator
        )
        successes.append(recolour_succeeded(edited.images[0], mask, pair.target_colour))
        ious.append(iou(binarize(relevance, 0.5)[0, 0], mask))
        errors.append(mean_squared_error(edited.images[0], image, ~mask))
    assert sum(successes) >= THRESHOLDS["successes"], successes
    assert np.mean(ious) >= THRESHOLDS["iou"], ious
    assert psnr_of_mse(np.mean(errors)) >= THRESHOLDS["psnr"], errors
