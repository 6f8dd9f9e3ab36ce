"""CLIP text-image and directional similarity, the edit metrics Instruct-NeRF2NeRF and its successors report.

- text-image: cosine between the edited image and a caption of the wanted result;
- directional: cosine between the change of the image embeddings (before -> after) and
  the change of the caption embeddings (source caption -> target caption).

Weights load only from a local directory or the Hugging Face cache (never downloaded).
"""

from __future__ import annotations

import os

import torch
from jaxtyping import Float
from torch import Tensor
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
"""The CLIP the IN2N/WYS papers measure with (ViT-L/14)."""


class ClipUnavailableError(RuntimeError):
    """No CLIP checkpoint at the given path or in the local cache."""


class ClipSimilarity:
    def __init__(self, model: CLIPModel, tokenizer: CLIPTokenizer, processor: CLIPImageProcessor):
        self.model, self.tokenizer, self.processor = model.eval(), tokenizer, processor

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = DEFAULT_CLIP, device: str = "cpu") -> ClipSimilarity:
        try:
            model = CLIPModel.from_pretrained(name_or_path, local_files_only=True, use_safetensors=True)
            tokenizer = CLIPTokenizer.from_pretrained(name_or_path, local_files_only=True)
            processor = CLIPImageProcessor.from_pretrained(name_or_path, local_files_only=True)
        except (OSError, ValueError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ClipUnavailableError(f"no local CLIP checkpoint {str(name_or_path)!r} ({reason})") from error
        return cls(model.to(device), tokenizer, processor)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.no_grad()
    def image_embeddings(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n d"]:
        """Unit embeddings of images in [0, 1]."""
        pixels = self.processor(images=list(images.float().clamp(0, 1)), do_rescale=False, return_tensors="pt")
        features = self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device))
        return torch.nn.functional.normalize(_tensor(features), dim=-1)

    @torch.no_grad()
    def text_embeddings(self, texts: list[str]) -> Float[Tensor, "n d"]:
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        features = self.model.get_text_features(**tokens)
        return torch.nn.functional.normalize(_tensor(features), dim=-1)

    def text_image(self, images: Float[Tensor, "n 3 h w"], caption: str) -> float:
        """Mean cosine between each image and ``caption``."""
        return float((self.image_embeddings(images) @ self.text_embeddings([caption])[0]).mean())

    def directional(
        self,
        before: Float[Tensor, "n 3 h w"],
        after: Float[Tensor, "n 3 h w"],
        source_caption: str,
        target_caption: str,
    ) -> float:
        """Mean cosine between each view's image change and the caption change."""
        image_change = self.image_embeddings(after) - self.image_embeddings(before)
        captions = self.text_embeddings([source_caption, target_caption])
        text_change = captions[1] - captions[0]
        cosine = torch.nn.functional.cosine_similarity(image_change, text_change[None], dim=-1)
        return float(cosine.mean())


def _tensor(features) -> Tensor:
    """transformers 5 may return a model output instead of a tensor from ``get_*_features``."""
    return features if isinstance(features, Tensor) else features.pooler_output
