"""Why the toy editor's recolours fail, measured on one checkpoint without training (issue 16).

On the recolour pairs of an evaluation row (``toyworld.pairs.evaluation_pairs``):

- ``vae_round_trip``: the ground-truth edited images through the editor's VAE (encode, decode):
  does the object keep its target colour (``recolour_class``)? A ceiling on any edit's success.
- ``target_word_probe``: each input with each palette colour as the target word: how much the
  text embedding, the UNet's noise prediction and the edited object change with that word.
- ``guidance_grid``: relevance-guided recolours over text x image guidance scales.
- ``denoising_error``: the training loss (noise MSE), over the image and inside the object, on
  the pairs the editor was trained on and on held-out ones: underfitting or not generalising?
- ``layout_summary``: objects per scene, sizes and on-screen pixels of a ``LayoutRange``.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from editaction import EditConfig, Editor, RelevanceConfig
from editaction.masking import to_latent_mask
from editaction.train.losses import prediction_target
from toyworld.metrics import (
    after_edit,
    equal_brightness,
    hue_error_degrees,
    palette_rgb,
    psnr,
    recolour_class,
    relative_chroma,
)
from toyworld.pairs import (
    RECOLOUR,
    TRAIN_SEEDS,
    EditPairRecord,
    LayoutRange,
    generate_pairs,
    make_pair,
    random_layout,
)
from toyworld.palette import COLOURS

SMALL_OBJECT_PIXELS = 100
"""Objects covering fewer pixels are reported apart: about the smallest 5% of training's (64 px views)."""
PROBE_TIMESTEP_FRACTION = 0.5
"""Noise level at which ``target_word_probe`` compares the UNet's predictions (mid-schedule)."""


@dataclass(frozen=True)
class RecolourPair:
    image: Float[Tensor, "3 h w"]
    edited: Float[Tensor, "3 h w"]
    """The ground-truth edit."""
    mask: Bool[Tensor, "h w"]
    source: str
    shape: str
    target: str

    @classmethod
    def of(cls, record: EditPairRecord) -> RecolourPair:
        def tensor(image: np.ndarray) -> Tensor:
            return torch.from_numpy(image).permute(2, 0, 1).float() / 255

        obj = record.object
        mask = torch.from_numpy(record.mask)
        return cls(
            tensor(record.input_image), tensor(record.edited_image), mask, obj.colour, obj.shape, record.target_colour
        )

    def instruction(self, target: str | None = None) -> str:
        return RECOLOUR.format(colour=self.source, shape=self.shape, target_colour=target or self.target)


def training_recolour_pairs(count: int) -> list[RecolourPair]:
    """The first ``count`` recolour pairs the shipped editor was trained on (``scripts/train_toy_editor.py``)."""
    records = generate_pairs(count, ("recolour",), "train", seed=TRAIN_SEEDS[0])
    return [RecolourPair.of(record) for record in records]


def _object_rgb(image: Tensor, mask: Tensor) -> Tensor:
    return image[:, mask].mean(dim=1)


def vae_round_trip(editor: Editor, pairs: list[RecolourPair]) -> dict[str, float]:
    """How the ground-truth edits fare through the VAE (pairs whose object is visible)."""
    pairs = [pair for pair in pairs if pair.mask.any()]
    edited = torch.stack([pair.edited for pair in pairs])
    latents = editor.encode_images(edited) * editor.pipe.vae.config.scaling_factor
    decoded = editor.decode_latents(latents).cpu()
    kept = [recolour_class(image, pair.mask) == pair.target for image, pair in zip(decoded, pairs, strict=True)]
    small = [int(pair.mask.sum()) < SMALL_OBJECT_PIXELS for pair in pairs]

    def share(selected: list[bool]) -> float:
        chosen = [k for k, s in zip(kept, selected, strict=True) if s]
        return statistics.fmean(chosen) if chosen else float("nan")

    def mean(values) -> float:
        return statistics.fmean(values)

    return {
        "pairs": len(pairs),
        "kept_target_colour": mean(kept),
        "kept_small_objects": share(small),
        "kept_other_objects": share([not s for s in small]),
        "relative_chroma_before": mean(relative_chroma(_object_rgb(p.edited, p.mask), p.target) for p in pairs),
        "relative_chroma_after": mean(
            relative_chroma(_object_rgb(d, p.mask), p.target) for d, p in zip(decoded, pairs, strict=True)
        ),
        "hue_error_after_degrees": mean(
            hue_error_degrees(_object_rgb(d, p.mask), p.target) for d, p in zip(decoded, pairs, strict=True)
        ),
        "psnr_object_db": mean(psnr(d, p.edited, p.mask) for d, p in zip(decoded, pairs, strict=True)),
    }


@torch.no_grad()
def target_word_probe(
    editor: Editor, pairs: list[RecolourPair], config: EditConfig, seed: int = 0
) -> dict[str, float | dict[str, int]]:
    """Edit each input with every palette colour as the target word (plain IP2P, no relevance).

    ``embedding_change``: mean ||e_a - e_b|| / ||e_a|| of the text embeddings of two target words.
    ``unet_word_gap``: the UNet's noise predictions for two target words differ by this fraction of
    their difference from the prediction without text (same noisy latents, image conditioned).
    ``outputs``: what each edit made of the object, asked for its own colour or for another.
    ``output_spread``: mean distance at equal brightness between the object's colours for two words,
    over the source colour's chroma (0: the word changes nothing).
    """
    words = list(COLOURS)
    embedding_change, word_gaps, spreads = [], [], []
    outputs: Counter[str] = Counter()
    scheduler = editor.pipe.scheduler
    timestep = torch.tensor(int(PROBE_TIMESTEP_FRACTION * scheduler.config.num_train_timesteps), device=editor.device)
    generator = torch.Generator().manual_seed(seed)
    word_pairs = list(itertools.combinations(range(len(words)), 2))
    for pair in pairs:
        texts = [pair.instruction(word) for word in words]
        text = editor.encode_instructions([*texts, ""])
        embedding_change += [float((text[a] - text[b]).norm() / text[a].norm()) for a, b in word_pairs]

        image = pair.image[None].to(editor.device)
        condition = editor.encode_images(image)
        clean = condition * editor.pipe.vae.config.scaling_factor
        noise = torch.randn(clean.shape, generator=generator).to(editor.device, clean.dtype)
        noisy = scheduler.add_noise(clean, noise, timestep).repeat(len(texts) + 1, 1, 1, 1)
        eps = editor._predict_noise(noisy, timestep, condition.repeat(len(texts) + 1, 1, 1, 1), text)
        text_effect = statistics.fmean(float((eps[k] - eps[-1]).norm()) for k in range(len(words)))
        word_gaps.append(statistics.fmean(float((eps[a] - eps[b]).norm()) for a, b in word_pairs) / text_effect)

        edited = editor.edit(
            image.repeat(len(words), 1, 1, 1), texts, config=config, generator=torch.Generator().manual_seed(seed)
        ).images.cpu()
        colours = [_object_rgb(result, pair.mask) for result in edited]
        for word, result in zip(words, edited, strict=True):
            asked = "own colour" if word == pair.source else "another colour"
            outputs[f"asked {asked}: {after_edit(recolour_class(result, pair.mask), pair.source, word)}"] += 1
        offsets = [equal_brightness(colour) for colour in colours]
        source_chroma = float(equal_brightness(palette_rgb(pair.source)).norm())
        spreads.append(statistics.fmean(float((offsets[a] - offsets[b]).norm()) for a, b in word_pairs) / source_chroma)
    return {
        "embedding_change": statistics.fmean(embedding_change),
        "unet_word_gap": statistics.fmean(word_gaps),
        "output_spread": statistics.fmean(spreads),
        "outputs": dict(sorted(outputs.items())),
    }


def guidance_grid(
    editor: Editor,
    pairs: list[RecolourPair],
    text_scales: tuple[float, ...],
    image_scales: tuple[float, ...],
    edit: EditConfig,
    relevance: RelevanceConfig,
    seed: int = 0,
) -> dict[tuple[float, float], dict[str, int]]:
    """What relevance-guided recolours make of the objects (``AFTER_EDIT`` counts) for each pair of scales."""
    images = torch.stack([pair.image for pair in pairs])
    texts = [pair.instruction() for pair in pairs]
    maps = torch.cat(
        [
            editor.relevance_map(pair.image, text, config=relevance, generator=torch.Generator().manual_seed(seed))
            for pair, text in zip(pairs, texts, strict=True)
        ]
    )
    grid = {}
    for text_scale, image_scale in itertools.product(text_scales, image_scales):
        config = EditConfig(edit.steps, text_scale, image_scale, threshold=edit.threshold)
        edited = editor.edit(
            images, texts, relevance=maps, config=config, generator=torch.Generator().manual_seed(seed)
        ).images.cpu()
        grid[(text_scale, image_scale)] = dict(
            Counter(
                after_edit(recolour_class(result, pair.mask), pair.source, pair.target)
                for result, pair in zip(edited, pairs, strict=True)
            )
        )
    return grid


def layout_summary(layouts: LayoutRange, count: int, seed: int = 0) -> dict[str, object]:
    """Objects per scene, object sizes and the edited object's pixels (64 px views) over ``count`` draws."""
    rng = np.random.default_rng(seed)
    scenes = [random_layout(rng, layouts) for _ in range(count)]
    sizes = [obj.size for scene in scenes for obj in scene]
    pixels = [int(make_pair(rng, "recolour", layouts=layouts).mask.sum()) for _ in range(count)]
    return {
        "objects_per_scene": dict(sorted(Counter(len(scene) for scene in scenes).items())),
        "size_p5_p50_p95": np.percentile(sizes, [5, 50, 95]).round(3).tolist(),
        "object_pixels_p5_p50_p95": np.percentile(pixels, [5, 50, 95]).round(0).tolist(),
        "small_objects": statistics.fmean(p < SMALL_OBJECT_PIXELS for p in pixels),
    }


def model_size(editor: Editor) -> dict[str, int]:
    """Parameters of the editor's parts, and the text encoder's width."""

    def count(module: torch.nn.Module) -> int:
        return sum(parameter.numel() for parameter in module.parameters())

    text_encoder = editor.pipe.text_encoder
    return {
        "unet": count(editor.pipe.unet),
        "text_encoder": count(text_encoder),
        "text_encoder_token_embedding": text_encoder.get_input_embeddings().weight.numel(),
        "vae": count(editor.pipe.vae),
        "text_width": text_encoder.config.hidden_size,
    }


@torch.no_grad()
def denoising_error(editor: Editor, pairs: list[RecolourPair], draws: int = 8, seed: int = 0) -> dict[str, float]:
    """The base editor's training loss with full conditioning: the MSE of its prediction target (the noise, or the
    velocity of a v-prediction model) over all latents and inside the object's.

    Each pair gets ``draws`` timesteps, uniform over the schedule, and noises from ``seed`` (the same for
    every set of pairs, so sets compare on equal draws).
    """
    scheduler, scale = editor.pipe.scheduler, editor.pipe.vae.config.scaling_factor
    generator = torch.Generator().manual_seed(seed)
    whole, inside = [], []
    for pair in pairs:
        latents = editor.encode_images(pair.edited[None], generator) * scale
        condition = editor.encode_images(pair.image[None])
        text = editor.encode_instructions([pair.instruction()])
        cells = to_latent_mask(pair.mask[None, None], tuple(latents.shape[-2:]))[0, 0]
        for _ in range(draws):
            timestep = torch.randint(0, scheduler.config.num_train_timesteps, (1,), generator=generator)
            noise = torch.randn(latents.shape, generator=generator).to(editor.device, latents.dtype)
            noisy = scheduler.add_noise(latents, noise, timestep.to(editor.device))
            model_input = torch.cat([noisy, condition], dim=1)
            predicted = editor.pipe.unet(model_input, timestep.to(editor.device), encoder_hidden_states=text).sample
            target = prediction_target(scheduler, latents, noise, timestep.to(editor.device))
            error = (predicted - target).pow(2).mean(dim=1)[0].cpu()
            whole.append(float(error.mean()))
            if cells.any():
                inside.append(float(error[cells].mean()))
    return {"noise_mse": statistics.fmean(whole), "noise_mse_object": statistics.fmean(inside)}
