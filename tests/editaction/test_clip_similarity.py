"""CLIP metrics: the two formulas on hand-made embeddings, a tiny random CLIP saved offline, a clear error without
weights."""

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


class HandMadeClip(torch.nn.Module):
    """CLIP features known by construction: an image's is its mean colour, a caption's is looked up in a table."""

    device = torch.device("cpu")

    def __init__(self, captions: dict[str, list[float]]):
        super().__init__()
        tokenizer = build_clip_tokenizer()
        self.table = {tuple(tokenizer(text)["input_ids"]): torch.tensor(vector) for text, vector in captions.items()}

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return pixel_values.mean(dim=(2, 3))

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        rows = zip(input_ids, attention_mask, strict=True)
        return torch.stack([self.table[tuple(ids[mask.bool()].tolist())] for ids, mask in rows])


@pytest.fixture
def hand_made() -> ClipSimilarity:
    captions = {"a blue cube": [3.0, 4.0, 0.0], "a red cube": [2.0, 0.0, 0.0], "a green cube": [0.0, 0.5, 0.0]}
    passthrough = CLIPImageProcessor(do_resize=False, do_center_crop=False, do_normalize=False)
    return ClipSimilarity(HandMadeClip(captions), build_clip_tokenizer(), passthrough)


def colours(*rgb: tuple[float, float, float]) -> torch.Tensor:
    """8 x 8 images of one colour each."""
    return torch.tensor(rgb)[:, :, None, None].expand(-1, -1, 8, 8)


def test_text_image_is_the_mean_cosine_of_known_embeddings(hand_made):
    # unit image embeddings (1, 0, 0), (0, 1, 0), (0.6, 0.8, 0) against the caption's (0.6, 0.8, 0)
    images = colours((0.3, 0.0, 0.0), (0.0, 0.2, 0.0), (0.3, 0.4, 0.0))
    assert hand_made.text_image(images, "a blue cube") == pytest.approx((0.6 + 0.8 + 1.0) / 3, abs=1e-6)


def test_directional_is_the_mean_cosine_of_known_changes(hand_made):
    # image changes (-1, 1, 0) and (-1, 0, 1) against the caption change (1, 0, 0) -> (0, 1, 0): cosines 1 and 1/2
    before, after = colours((0.5, 0.0, 0.0), (0.5, 0.0, 0.0)), colours((0.0, 0.5, 0.0), (0.0, 0.0, 0.5))
    assert hand_made.directional(before, after, "a red cube", "a green cube") == pytest.approx(0.75, abs=1e-6)


def test_a_real_clip_gives_unit_embeddings(clip):
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(clip.image_embeddings(images).norm(dim=-1), torch.ones(3))
    assert torch.allclose(clip.text_embeddings(["a blue cube", "a red cube"]).norm(dim=-1), torch.ones(2))


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
