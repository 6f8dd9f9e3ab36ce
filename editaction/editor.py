"""The one InstructPix2Pix wrapper: relevance maps and relevance-guided edits.

Every part of the project that runs the diffusion UNet (the 2D CLI, the NeRF
pipeline, evaluation) goes through :class:`Editor`. It loads any InstructPix2Pix-
family diffusers checkpoint (``timbrooks/instruct-pix2pix``, an EditAction
fine-tune, the embedded toy editor) with a DDIM scheduler, in fp16 on CUDA.

The denoising loop follows ``StableDiffusionInstructPix2PixPipeline.__call__`` step
for step (so threshold 0 reproduces it exactly, which the tests check) and adds what
that pipeline cannot do: a start strength (editing a noised render, as in 3D) and a
per-step latent blend that keeps unmasked regions on the input's trajectory.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionInstructPix2PixPipeline
from diffusers.utils.torch_utils import randn_tensor
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import httpx as hub_http  # the HTTP client huggingface_hub uses, under a stable name
from jaxtyping import Bool, Float
from torch import Tensor

from editaction.config import EditConfig, RelevanceConfig
from editaction.masking import binarize, composite, to_latent_mask
from editaction.relevance import predicted_clean_latents, prediction_gap, relevance_from_gap
from editaction.resize import resize, restore_size, working_size
from editaction.settings import EditorSettings, SettingsError, load_settings

IP2P_PIPELINE = "StableDiffusionInstructPix2PixPipeline"
FP16_UNET = "unet/diffusion_pytorch_model.fp16.safetensors"
"""diffusers' name of a UNet's fp16 variant weights (timbrooks/instruct-pix2pix ships them for every component;
diffusers loads the default weights of a component without them)."""
DEFAULT_UNET = "unet/diffusion_pytorch_model.safetensors"
CONDITION_CACHE_SIZE = 1024
"""Condition latents an ``Editor`` keeps (``Editor.edit``'s ``condition_ids``): 1024 views' worth is 32 MiB at
SD-1.5's 512 px in fp16 (4 x 64 x 64 latents each)."""


class EditorLoadError(ValueError):
    """The model is missing or is not an InstructPix2Pix-family diffusers checkpoint."""


@dataclass
class EditResult:
    images: Float[Tensor, "b 3 h w"]
    """Edited images in [0, 1], equal to the input outside ``mask``."""
    mask: Bool[Tensor, "b 1 h w"]
    """Pixels the edit was allowed to change."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_checkpoint_dir(path: Path) -> None:
    index = path / "model_index.json"
    if not index.is_file():
        raise EditorLoadError(f"{path} is not a diffusers checkpoint directory (no model_index.json)")
    try:
        components = json.loads(index.read_text())
    except json.JSONDecodeError as err:
        raise EditorLoadError(f"{index} is not valid JSON: {err}") from None
    missing = [name for name in ("unet", "vae", "text_encoder", "tokenizer") if name not in components]
    if missing:
        raise EditorLoadError(f"{path} is not an InstructPix2Pix checkpoint (no {', '.join(missing)})")


def check_editor_source(model: str | os.PathLike) -> None:
    """Fail early, without loading weights, when ``model`` is neither a checkpoint directory nor a usable hub id."""
    path = Path(model)
    if path.exists():
        if not path.is_dir():
            raise EditorLoadError(f"{path} is a file; expected a diffusers checkpoint directory")
        _check_checkpoint_dir(path)
    elif str(model).startswith((".", "/", "~")) or str(model).count("/") != 1:
        raise EditorLoadError(f"model not found: {model} (neither a directory nor a hub id like 'org/name')")
    elif huggingface_hub.constants.HF_HUB_OFFLINE and not isinstance(
        huggingface_hub.try_to_load_from_cache(str(model), "model_index.json"), str
    ):
        raise EditorLoadError(f"{model} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")


def _fp16_variant_available(model: str | os.PathLike) -> bool:
    """Whether ``model`` has fp16 variant weights to load. A hub id prefers what is cached (the variant, else the
    default weights: no second download) and asks the hub for its file list only when online and nothing is cached."""
    path = Path(model)
    if path.is_dir():
        return (path / FP16_UNET).is_file()

    def cached(name: str) -> bool:
        return isinstance(huggingface_hub.try_to_load_from_cache(str(model), name), str)

    if cached(FP16_UNET):
        return True
    if cached(DEFAULT_UNET) or huggingface_hub.constants.HF_HUB_OFFLINE:
        return False
    try:
        return huggingface_hub.file_exists(str(model), FP16_UNET)
    except (HfHubHTTPError, hub_http.TransportError):
        return False  # from_pretrained reports the unreachable hub


def load_pipeline(
    model: str | os.PathLike, device: torch.device, dtype: torch.dtype
) -> StableDiffusionInstructPix2PixPipeline:
    """Load an IP2P-family checkpoint (directory or hub id) with a DDIM scheduler; no safety checker.

    In float16, a checkpoint's fp16 variant weights are loaded where it has them (half the download and memory).
    """
    check_editor_source(model)
    variant = "fp16" if dtype == torch.float16 and _fp16_variant_available(model) else None
    try:
        pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
            str(model),
            dtype=dtype,
            variant=variant,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    except (OSError, ValueError, TypeError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EditorLoadError(f"cannot load editor from {model}: {reason}") from None
    expected = 2 * pipe.vae.config.latent_channels  # noisy latent + image latent
    if pipe.unet.config.in_channels != expected:
        raise EditorLoadError(
            f"{model} is not an InstructPix2Pix checkpoint: its UNet takes "
            f"{pipe.unet.config.in_channels} input channels, expected {expected}"
        )
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    return pipe.to(device)


class Editor:
    """Relevance maps and relevance-guided edits with one InstructPix2Pix model.

    Images are float tensors in [0, 1], shape (B, 3, H, W), of any size: they are
    padded to the VAE's stride internally and results come back at the input size.
    With ``resolution`` > 0, images whose long side exceeds it are edited at that long
    side and brought back (``editaction.resize``).
    """

    def __init__(
        self,
        pipe: StableDiffusionInstructPix2PixPipeline,
        settings: EditorSettings | None = None,
        condition_cache_size: int = CONDITION_CACHE_SIZE,
    ):
        if condition_cache_size < 0:
            raise ValueError(f"condition_cache_size must be non-negative, got {condition_cache_size}")
        self.pipe = pipe
        self.settings = settings if settings is not None else EditorSettings()
        """The checkpoint's recommended settings (``edit_settings.json``); edits and maps default to ``image``."""
        self._instruction_cache: dict[str, Tensor] = {}
        self.condition_cache_size = condition_cache_size  # the least recently used latents are dropped first
        self._condition_cache: OrderedDict[Hashable, Tensor] = OrderedDict()

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Editor:
        """Load from a diffusers directory or hub id with its recommended settings (``editaction.settings``);
        fp16 on CUDA and fp32 on CPU unless ``dtype`` is given."""
        device = torch.device(device) if device is not None else default_device()
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        check_editor_source(model)
        try:
            settings = load_settings(model)
        except SettingsError as err:
            raise EditorLoadError(str(err)) from None
        return cls(load_pipeline(model, device, dtype), settings)

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    def set_progress_bar(self, enabled: bool) -> None:
        self.pipe.set_progress_bar_config(disable=not enabled)

    # ---- conditioning -------------------------------------------------------------------------

    @torch.no_grad()
    def encode_instructions(self, instructions: Sequence[str]) -> Float[Tensor, "b n d"]:
        """CLIP text embeddings, cached per instruction (the NeRF loop re-edits with one text)."""
        missing = [text for text in dict.fromkeys(instructions) if text not in self._instruction_cache]
        if missing:
            tokenizer = self.pipe.tokenizer
            tokens = tokenizer(
                missing,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            )
            use_mask = getattr(self.pipe.text_encoder.config, "use_attention_mask", False)
            mask = tokens.attention_mask.to(self.device) if use_mask else None
            embeddings = self.pipe.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]
            for text, embedding in zip(missing, embeddings.to(self.dtype), strict=True):
                self._instruction_cache[text] = embedding
        return torch.stack([self._instruction_cache[text] for text in instructions])

    @torch.no_grad()
    def encode_images(
        self, images: Float[Tensor, "b 3 h w"], generator: torch.Generator | None = None
    ) -> Float[Tensor, "b c h/f w/f"]:
        """Unscaled VAE latents: the mode without ``generator`` (image conditioning), a sample with it."""
        pixels = images.to(self.device, self.dtype) * 2.0 - 1.0
        posterior = self.pipe.vae.encode(pixels).latent_dist
        return posterior.sample(generator) if generator is not None else posterior.mode()

    @torch.no_grad()
    def encode_condition(
        self, condition: Float[Tensor, "b 3 h w"], keys: Sequence[Hashable] | None = None
    ) -> Float[Tensor, "b c h/f w/f"]:
        """The image conditioning's latents (``encode_images`` without a generator), kept per key: an image whose
        key comes again is not encoded again."""
        if keys is None:
            return self.encode_images(condition)
        if len(keys) != condition.shape[0]:
            raise ValueError(f"got {len(keys)} condition ids for {condition.shape[0]} condition images")
        if len(set(keys)) != len(keys):
            raise ValueError("condition ids must differ within one call: each names one image")
        missing = [row for row, key in enumerate(keys) if key not in self._condition_cache]
        if missing:  # all of them in one call as a whole (the usual case: a batch of views edited first time)
            encoded = self.encode_images(condition if len(missing) == len(keys) else condition[missing])
            for row, latents in zip(missing, encoded, strict=True):
                self._condition_cache[keys[row]] = latents.clone()  # not a view holding the batch's posterior
        for key in keys:
            self._condition_cache.move_to_end(key)
        latents = torch.stack([self._condition_cache[key] for key in keys])
        while len(self._condition_cache) > self.condition_cache_size:
            self._condition_cache.popitem(last=False)
        return latents

    @torch.no_grad()
    def decode_latents(self, latents: Float[Tensor, "b c h w"]) -> Float[Tensor, "b 3 H W"]:
        image = self.pipe.vae.decode(latents / self.pipe.vae.config.scaling_factor, return_dict=False)[0]
        return (image.float() / 2.0 + 0.5).clamp(0.0, 1.0)

    def _predict_noise(
        self, latents: Tensor, timestep: Tensor, image_latents: Tensor, text_embeddings: Tensor
    ) -> Tensor:
        model_input = self.pipe.scheduler.scale_model_input(latents, timestep)
        model_input = torch.cat([model_input, image_latents], dim=1)
        return self.pipe.unet(model_input, timestep, encoder_hidden_states=text_embeddings, return_dict=False)[0]

    def _guided_noise(
        self, latents: Tensor, timestep: Tensor, image_latents: Tensor, text: Tensor, config: EditConfig
    ) -> Tensor:
        """IP2P's two-way classifier-free guidance over the branches [text + image, image, neither].

        With image guidance 1 (the toy editor's) the unconditional branch cancels, eps_u + s_T (eps_T - eps_I) +
        (eps_I - eps_u) = eps_I + s_T (eps_T - eps_I), and is not run: a third fewer UNet rows per step.
        """
        if config.image_guidance == 1.0:
            rows = 2 * latents.shape[0]
            eps_text, eps_image = self._predict_noise(
                torch.cat([latents] * 2), timestep, image_latents[:rows], text[:rows]
            ).chunk(2)
            return eps_image + config.text_guidance * (eps_text - eps_image)
        eps_text, eps_image, eps_uncond = self._predict_noise(
            torch.cat([latents] * 3), timestep, image_latents, text
        ).chunk(3)
        return (
            eps_uncond
            + config.text_guidance * (eps_text - eps_image)
            + config.image_guidance * (eps_image - eps_uncond)
        )

    # ---- relevance ----------------------------------------------------------------------------

    @torch.no_grad()
    def relevance_map(
        self,
        images: Float[Tensor, "b 3 h w"],
        instruction: str | Sequence[str],
        condition: Float[Tensor, "b 3 h w"] | None = None,
        config: RelevanceConfig | None = None,
        generator: torch.Generator | None = None,
        resolution: int = 0,
    ) -> Float[Tensor, "b 1 h w"]:
        """Where ``instruction`` wants to change ``images``, in [0, 1] (Watch Your Steps).

        ``condition`` is the image the model is conditioned on (defaults to ``images``); ``config`` defaults to
        the checkpoint's recommendation for images (``settings.image.relevance``).
        Each noise draw is one UNet call batching the with- and without-instruction branches
        (and, with ``config.space == "pixel"``, one VAE decode of their clean-image estimates).
        Computed at the working size of ``resolution`` and upsampled bilinearly to the input's.
        """
        config = self.settings.image.relevance if config is None else config
        images, condition = _batched(images), _batched(condition)
        size = tuple(images.shape[-2:])
        small = working_size(size, resolution)
        if small != size:
            images, condition = (self._shrunk(tensor, size, small) for tensor in (images, condition))
            return resize(self.relevance_map(images, instruction, condition, config, generator), size)
        images, condition, size = self._prepare_inputs(images, condition)
        batch = images.shape[0]
        instructions = self._instruction_list(instruction, batch)
        text = self.encode_instructions(instructions + [""] * batch)
        scheduler = self.pipe.scheduler
        num_train = scheduler.config.num_train_timesteps
        timestep = torch.tensor(min(int(config.timestep_fraction * num_train), num_train - 1), device=self.device)
        clean = self.encode_images(images, generator) * self.pipe.vae.config.scaling_factor
        image_latents = self.encode_images(condition).repeat(2, 1, 1, 1)
        gap_size = images.shape[-2:] if config.space == "pixel" else clean.shape[-2:]
        gap = torch.zeros((batch, 1, *gap_size), device=self.device)
        alpha_cumprod = scheduler.alphas_cumprod[timestep.cpu()].to(self.device, clean.dtype)
        for _ in range(config.noise_samples):
            noise = randn_tensor(clean.shape, generator=generator, device=self.device, dtype=clean.dtype)
            noisy = scheduler.add_noise(clean, noise, timestep).repeat(2, 1, 1, 1)
            predictions = self._predict_noise(noisy, timestep, image_latents, text)
            if config.space == "pixel":
                clean_estimates = predicted_clean_latents(
                    noisy, predictions, alpha_cumprod, scheduler.config.prediction_type
                )
                predictions = self.decode_latents(clean_estimates)
            gap += prediction_gap(*predictions.chunk(2))
        relevance = relevance_from_gap(gap / config.noise_samples, images.shape[-2:], config.iqr_factor)
        return relevance[..., : size[0], : size[1]]

    # ---- editing ------------------------------------------------------------------------------

    @torch.no_grad()
    def edit(
        self,
        images: Float[Tensor, "b 3 h w"],
        instruction: str | Sequence[str],
        condition: Float[Tensor, "b 3 h w"] | None = None,
        relevance: Float[Tensor, "b 1 h w"] | None = None,
        config: EditConfig | None = None,
        generator: torch.Generator | None = None,
        resolution: int = 0,
        condition_ids: Sequence[Hashable] | None = None,
    ) -> EditResult:
        """Edit ``images`` by ``instruction``, only where ``relevance`` reaches ``config.threshold``.

        ``condition`` is the image IP2P is conditioned on (defaults to ``images``; in 3D the
        original photo while ``images`` is the current render). Without ``relevance``, or
        with threshold 0, this is plain InstructPix2Pix. Images larger than ``resolution``
        are edited at its working size; the result equals ``images`` outside the upsampled mask.
        ``condition_ids`` name the ``condition`` images, one per row, each for the editor's lifetime (a training
        view's index): their latents are kept (``encode_condition``), so the NeRF loop, which conditions every edit
        of a view on its unchanged photo, encodes each photo once at each size or crop box. ``config`` defaults to
        the checkpoint's recommendation for images (``settings.image.edit``).
        """
        config = self.settings.image.edit if config is None else config
        images, condition, relevance = _batched(images), _batched(condition), _batched(relevance)
        size = tuple(images.shape[-2:])
        if condition_ids is not None and condition is None:
            raise ValueError("condition_ids name the condition images: pass the condition too")
        if config.crop_margin is not None and relevance is not None and config.threshold > 0:
            return self._edit_crop(
                images, instruction, condition, relevance, config, generator, resolution, condition_ids
            )
        small = working_size(size, resolution)
        if small != size:
            shrunk = [self._shrunk(tensor, size, small) for tensor in (images, condition, relevance)]
            result = self.edit(
                shrunk[0], instruction, *shrunk[1:], config=config, generator=generator, condition_ids=condition_ids
            )
            return EditResult(*restore_size(result.images, result.mask, images.to(self.device)))
        conditioned_on_input = condition is None
        images, condition, size = self._prepare_inputs(images, condition)
        batch = images.shape[0]
        pipe = self.pipe

        # 1. Conditioning: text branches [T, "", ""], image branches [c_I, c_I, 0] (IP2P CFG).
        instructions = self._instruction_list(instruction, batch)
        text = self.encode_instructions(instructions + [""] * (2 * batch))
        keys = None if condition_ids is None else [(name, size) for name in condition_ids]  # the size before padding
        condition_latents = self.encode_condition(condition, keys)
        image_latents = torch.cat([condition_latents, condition_latents, torch.zeros_like(condition_latents)])

        # 2. Edit mask, in pixels and in latent cells.
        mask = self._edit_mask(relevance, config.threshold, images.shape, size)
        latent_size = tuple(image_latents.shape[-2:])
        latent_mask = None if mask is None else to_latent_mask(mask, latent_size)

        # 3. Timesteps: the whole schedule, or from the noise level that strength sets.
        scheduler, timesteps = self._timesteps(config)
        from_input = config.strength < 1.0

        # 4. Start latents: pure noise (as IP2P), or the input noised to the first timestep.
        shape = (batch, pipe.vae.config.latent_channels, *latent_size)
        noise = randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)
        clean = None
        if latent_mask is not None or from_input:  # the input's own latents (shared when it is the condition)
            clean = condition_latents if conditioned_on_input else self.encode_images(images)
            clean = clean * pipe.vae.config.scaling_factor
        if from_input:
            latents = scheduler.add_noise(clean, noise, timesteps[:1])
        else:
            latents = noise * scheduler.init_noise_sigma

        # 5. Denoise; outside the mask, put the input back at the noise level of the next step.
        with pipe.progress_bar(total=len(timesteps)) as progress:
            for i, t in enumerate(timesteps):
                eps = self._guided_noise(latents, t, image_latents, text, config)
                latents = scheduler.step(eps, t, latents, return_dict=False)[0]
                if latent_mask is not None:
                    background = clean
                    if i + 1 < len(timesteps):
                        background = scheduler.add_noise(clean, noise, timesteps[i + 1 : i + 2])
                    latents = torch.where(latent_mask, latents, background)
                progress.update()

        # 6. Decode, then keep the input bit for bit outside the mask.
        edited = self.decode_latents(latents)
        if mask is not None:
            edited = composite(edited, images.float(), mask)
        keep = (..., slice(0, size[0]), slice(0, size[1]))
        full_mask = mask if mask is not None else torch.ones_like(edited[:, :1], dtype=torch.bool)
        return EditResult(images=edited[keep], mask=full_mask[keep])

    def _edit_crop(
        self,
        images: Tensor,
        instruction: str | Sequence[str],
        condition: Tensor | None,
        relevance: Tensor,
        config: EditConfig,
        generator: torch.Generator | None,
        resolution: int,
        condition_ids: Sequence[Hashable] | None,
    ) -> EditResult:
        """``edit`` on the box around the thresholded relevance (one box for the batch), pasted back into ``images``.

        A cropped condition is named by its image's id, the image's size and the box."""
        if tuple(relevance.shape[-2:]) != tuple(images.shape[-2:]):
            raise ValueError(f"relevance must have the images' size, got shape {tuple(relevance.shape)}")
        full = images.to(self.device, torch.float32, copy=True)  # pasted into: never the caller's tensor
        box = crop_box(binarize(relevance, config.threshold), config.crop_margin)
        if box is None:  # nothing relevant: nothing to edit
            return EditResult(images=full, mask=torch.zeros_like(full[:, :1], dtype=torch.bool))
        top, bottom, left, right = box
        window = (..., slice(top, bottom), slice(left, right))
        crop = self.edit(
            images[window],
            instruction,
            None if condition is None else condition[window],
            relevance[window],
            dataclasses.replace(config, crop_margin=None),
            generator,
            resolution,
            None if condition_ids is None else [(name, tuple(images.shape[-2:]), box) for name in condition_ids],
        )
        full[window] = crop.images.float()
        mask = torch.zeros_like(full[:, :1], dtype=torch.bool)
        mask[window] = crop.mask
        return EditResult(images=full, mask=mask)

    # ---- helpers ------------------------------------------------------------------------------

    def _timesteps(self, config: EditConfig) -> tuple[DDIMScheduler, Tensor]:
        """The scheduler and timesteps of one edit (see ``EditConfig.schedule``)."""
        scheduler = self.pipe.scheduler
        top = int(config.strength * scheduler.config.num_train_timesteps)
        if config.schedule == "spread" and config.strength < 1.0:
            # Instruct-NeRF2NeRF (ip2p.py) sets num_train_timesteps to T before set_timesteps: DDIM then spaces
            # its steps over [0, T] and steps between them, on the unchanged noise table. Done on a copy.
            scheduler = copy.deepcopy(scheduler)
            scheduler.register_to_config(num_train_timesteps=max(top, 1))
            scheduler.set_timesteps(min(config.steps, max(top, 1)), device=self.device)
            return scheduler, scheduler.timesteps
        scheduler.set_timesteps(config.steps, device=self.device)
        # diffusers' img2img truncation; the tolerance keeps e.g. strength 1/49 of 49 steps at one step, not zero
        kept = min(math.floor(config.steps * config.strength + 1e-6), config.steps)
        if kept == 0:
            raise ValueError(f"strength {config.strength:g} leaves no step of {config.steps}; raise either")
        return scheduler, scheduler.timesteps[(config.steps - kept) * scheduler.order :]

    def _prepare_inputs(self, images: Tensor, condition: Tensor | None) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Check shapes (the public methods batched single images already), move to the model's device and pad
        the bottom/right edges to the VAE's stride."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        condition = images if condition is None else condition
        if condition.shape != images.shape:
            raise ValueError(f"condition shape {tuple(condition.shape)} differs from images {tuple(images.shape)}")
        size = tuple(images.shape[-2:])
        return self._pad(images.to(self.device)), self._pad(condition.to(self.device)), size

    def _shrunk(self, tensor: Tensor | None, size: tuple[int, int], small: tuple[int, int]) -> Tensor | None:
        """``tensor`` on the model's device at the working size; it must have the images' size (resizing would hide
        a mismatch)."""
        if tensor is None:
            return None
        if tuple(tensor.shape[-2:]) != size:
            raise ValueError(f"expected the images' size {size[0]}x{size[1]}, got shape {tuple(tensor.shape)}")
        return resize(tensor.to(self.device), small)

    def _pad(self, tensor: Tensor) -> Tensor:
        stride = self.pipe.vae_scale_factor
        height, width = tensor.shape[-2:]
        pad_h, pad_w = -height % stride, -width % stride
        if pad_h == 0 and pad_w == 0:
            return tensor
        return F.pad(tensor.float(), (0, pad_w, 0, pad_h), mode="replicate").to(tensor.dtype)

    def _edit_mask(
        self, relevance: Tensor | None, threshold: float, shape: torch.Size, size: tuple[int, int]
    ) -> Tensor | None:
        """Binary pixel mask, or None when the whole image may change (no relevance or threshold 0)."""
        if relevance is None or threshold <= 0.0:
            return None
        if relevance.shape[0] != shape[0] or tuple(relevance.shape[-2:]) != size or relevance.shape[1] != 1:
            raise ValueError(
                f"relevance must have shape ({shape[0]}, 1, {size[0]}, {size[1]}), got {tuple(relevance.shape)}"
            )
        return binarize(self._pad(relevance.to(self.device).float()), threshold)

    @staticmethod
    def _instruction_list(instruction: str | Sequence[str], batch: int) -> list[str]:
        instructions = [instruction] * batch if isinstance(instruction, str) else list(instruction)
        if len(instructions) != batch:
            raise ValueError(f"got {len(instructions)} instructions for {batch} images")
        if any(not text.strip() for text in instructions):
            raise ValueError("the instruction is empty")
        return instructions


def crop_box(mask: Bool[Tensor, "b 1 h w"], margin: float) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the box holding every masked pixel of the batch, widened on each side by
    ``margin`` times its longer side and clipped to the image; None when no pixel is masked."""
    rows, columns = mask.any(dim=(0, 1, 3)).nonzero(), mask.any(dim=(0, 1, 2)).nonzero()
    if rows.numel() == 0:
        return None
    top, bottom, left, right = rows.min().item(), rows.max().item() + 1, columns.min().item(), columns.max().item() + 1
    pad = math.ceil(margin * max(bottom - top, right - left))
    height, width = mask.shape[-2:]
    return max(top - pad, 0), min(bottom + pad, height), max(left - pad, 0), min(right + pad, width)


def _batched(tensor: Tensor | None) -> Tensor | None:
    return tensor[None] if tensor is not None and tensor.ndim == 3 else tensor
