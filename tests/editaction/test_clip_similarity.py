"""CLIP metrics on a tiny random CLIP saved offline: loading, the two formulas, a clear error without weights."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from editaction.clip_similarity import ClipSimilarity, ClipUnavailableError
from toyworld.tiny import build_clip_tokenizer


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> ClipSimilarity:
    tokenizer = build_clip_tokenizer()
    tower = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(vocab_size=tokenizer.vocab_size, max_position_embeddings=77, **tower),
        vision_config=dict(image_size=32, patch_size=8, **tower),
        projection_dim=16,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clip")
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return ClipSimilarity.from_pretrained(folder)


def test_text_image_is_the_mean_cosine_of_unit_embeddings(clip):
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    expected = (clip.image_embeddings(images) @ clip.text_embeddings(["a blue cube"])[0]).mean()
    assert clip.text_image(images, "a blue cube") == pytest.approx(float(expected), abs=1e-6)
    assert torch.allclose(clip.image_embeddings(images).norm(dim=-1), torch.ones(3))


def test_directional_similarity_follows_the_caption_change(clip):
    before = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    after = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    forward = clip.directional(before, after, "a red cube", "a blue cube")
    assert -1.0 <= forward <= 1.0
    assert clip.directional(before, after, "a blue cube", "a red cube") == pytest.approx(-forward, abs=1e-5)
    assert clip.directional(before, before, "a red cube", "a blue cube") == 0.0  # no change, no direction


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ClipUnavailableError, match="no local CLIP checkpoint"):
        ClipSimilarity.from_pretrained(tmp_path / "nothing")
