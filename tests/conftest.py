"""Shared fixtures: tiny random-weight InstructPix2Pix checkpoints built offline."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach the network

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random IP2P that recommends the toy editor's settings, as the presets' editor does."""
    from toyworld import TOY_SETTINGS
    from toyworld.tiny import build_pipeline, save_pipeline

    path = save_pipeline(build_pipeline(seed=0), tmp_path_factory.mktemp("tiny-ip2p"))
    TOY_SETTINGS.save(path)
    return path


@pytest.fixture(scope="session")
def editor(tiny_checkpoint):
    from editaction import Editor

    editor = Editor.from_pretrained(tiny_checkpoint, device="cpu")
    editor.set_progress_bar(False)
    return editor


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def vae_input_sizes(monkeypatch) -> list[tuple[int, int]]:
    """(h, w) of every image an ``Editor`` encodes with its VAE during the test: the size the editor works at."""
    from editaction import Editor

    sizes = []
    encode = Editor.encode_images

    def recording(self, images, generator=None):
        sizes.append(tuple(images.shape[-2:]))
        return encode(self, images, generator)

    monkeypatch.setattr(Editor, "encode_images", recording)
    return sizes
