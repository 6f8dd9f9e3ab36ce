import dataclasses
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
from PIL import Image

from editaction import EditConfig, Editor, EditorLoadError
from editaction.editor import DEFAULT_UNET, FP16_UNET, _fp16_variant_available, crop_box
from toyworld.tiny import build_pipeline, save_pipeline

FAST = EditConfig(steps=4)


def uint8_image(seed: int, height: int = 32, width: int = 32) -> torch.Tensor:
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255


@pytest.fixture
def unet_inputs(editor) -> list[tuple[int, torch.Tensor]]:
    """(timestep, noisy latents of the first CFG branch) of every UNet call during the test, in order."""
    calls = []

    def record(module, args, kwargs):
        model_input, timestep = args[:2]
        channels = editor.pipe.vae.config.latent_channels
        calls.append((int(timestep), model_input[: model_input.shape[0] // 3, :channels].clone()))

    hook = editor.pipe.unet.register_forward_pre_hook(record, with_kwargs=True)
    yield calls
    hook.remove()


def _clean_latents(editor: Editor, image: torch.Tensor) -> torch.Tensor:
    """The scaled VAE mode of ``image``, straight from the VAE."""
    vae = editor.pipe.vae
    with torch.no_grad():
        return vae.encode(image * 2 - 1).latent_dist.mode() * vae.config.scaling_factor


def _first_noise(editor: Editor, image: torch.Tensor, seed: int) -> torch.Tensor:
    """The first draw of a generator seeded with ``seed``, in the latents' shape."""
    stride = editor.pipe.vae_scale_factor
    shape = (image.shape[0], editor.pipe.vae.config.latent_channels, image.shape[2] // stride, image.shape[3] // stride)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _noised(editor: Editor, clean: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
    """q(x_t | x_0) by hand: sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise."""
    alpha_bar = editor.pipe.scheduler.alphas_cumprod[timestep]
    return alpha_bar.sqrt() * clean + (1 - alpha_bar).sqrt() * noise


@pytest.mark.parametrize(
    ("text_guidance", "image_guidance", "branches"),
    [(7.5, 1.5, 3), (1.25, 1.0, 2)],  # image guidance 1 cancels the unconditional branch: not run
)
def test_threshold_zero_reproduces_diffusers_pipeline(editor, tiny_checkpoint, text_guidance, image_guidance, branches):
    image = uint8_image(1)
    config = EditConfig(steps=5, text_guidance=text_guidance, image_guidance=image_guidance, threshold=0.0)
    rows = []
    hook = editor.pipe.unet.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    ours = editor.edit(
        image,
        "make it blue",
        relevance=torch.rand(1, 1, 32, 32),
        config=config,
        generator=torch.Generator().manual_seed(0),
    )
    hook.remove()
    assert rows == [branches] * 5
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(tiny_checkpoint)
    pipe.set_progress_bar_config(disable=True)
    pil = Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    reference = pipe(
        "make it blue",
        image=pil,
        num_inference_steps=5,
        guidance_scale=text_guidance,
        image_guidance_scale=image_guidance,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).images
    assert ours.mask.all()
    assert torch.allclose(ours.images, reference, atol=1e-5)
    # and it really edits: the output is not the input
    assert (ours.images - image).abs().mean() > 1e-2


def test_pixels_outside_mask_are_bit_identical(editor, generator):
    image = uint8_image(2, 40, 48)
    relevance = torch.zeros(1, 1, 40, 48)
    relevance[..., 8:24, 16:40] = 1.0
    result = editor.edit(image, "make the cube red", relevance=relevance, config=FAST, generator=generator)
    outside = ~result.mask.expand_as(image)
    assert result.mask.sum() == 16 * 24
    assert torch.equal(result.images[outside], image[outside])
    assert not torch.equal(result.images[~outside], image[~outside])


def test_latent_blend_puts_the_input_back_at_the_next_noise_level(editor, unet_inputs, monkeypatch):
    """Outside the latent mask, each step's latents are the input's clean latents noised with the edit's one noise
    draw to the next timestep, and the final latents are the clean latents themselves."""
    image = uint8_image(5)
    relevance = torch.zeros(1, 1, 32, 32)
    relevance[..., :, :16] = 1.0  # the left two of the four latent columns (stride 8)
    decoded = []
    decode = editor.decode_latents
    monkeypatch.setattr(editor, "decode_latents", lambda latents: decoded.append(latents.clone()) or decode(latents))
    editor.edit(image, "make it blue", relevance=relevance, config=FAST, generator=torch.Generator().manual_seed(0))

    clean, noise = _clean_latents(editor, image), _first_noise(editor, image, seed=0)
    timesteps = [t for t, _ in unet_inputs]
    assert timesteps == [751, 501, 251, 1]  # 4 DDIM steps, "leading" spacing, steps_offset 1
    assert torch.equal(unet_inputs[0][1], noise)  # strength 1 starts from the noise draw itself (sigma 1)
    inside, outside = (..., slice(0, 2)), (..., slice(2, 4))
    for (t, latents), previous in zip(unet_inputs[1:], timesteps[:-1], strict=True):
        expected = _noised(editor, clean, noise, t)
        assert torch.allclose(latents[outside], expected[outside], atol=1e-6), t
        assert not torch.allclose(latents[outside], _noised(editor, clean, noise, previous)[outside], atol=1e-3)
        assert not torch.allclose(latents[inside], expected[inside], atol=1e-2), t  # the edit runs inside
    (final,) = decoded
    assert torch.allclose(final[outside], clean[outside], atol=1e-6)
    assert not torch.allclose(final[inside], clean[inside], atol=1e-2)


def test_same_seed_same_result_other_seed_differs(editor):
    image = uint8_image(3)

    def run(seed: int) -> torch.Tensor:
        return editor.edit(image, "make it green", config=FAST, generator=torch.Generator().manual_seed(seed)).images

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_batch_takes_one_instruction_per_image(editor):
    images = torch.cat([uint8_image(10), uint8_image(11)])
    batch = editor.edit(
        images, ["make it red", "make it blue"], config=FAST, generator=torch.Generator().manual_seed(0)
    )
    assert batch.images.shape == (2, 3, 32, 32)
    single = editor.edit(images[1:], "make it blue", config=FAST, generator=torch.Generator().manual_seed(0))
    # noise differs per batch position, but the instruction is per image: the two batch items differ
    assert not torch.allclose(batch.images[0], batch.images[1])
    assert single.images.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("size", [(37, 45), (31, 64), (13, 21)])
def test_any_size_comes_back_at_input_size(editor, generator, size):
    image = torch.rand(1, 3, *size, generator=generator)
    relevance = editor.relevance_map(image, "make it red", generator=generator)
    result = editor.edit(image, "make it red", relevance=relevance, config=FAST, generator=generator)
    assert result.images.shape == image.shape and result.mask.shape == (1, 1, *size)
    outside = ~result.mask.expand_as(image)
    assert torch.equal(result.images[outside], image[outside])


def test_strength_runs_the_tail_of_the_schedule_from_the_noised_input(editor, unet_inputs):
    """strength 0.4 of 10 DDIM steps: the last 4 timesteps, starting at ``images`` (not the condition) noised."""
    image, condition = uint8_image(4), uint8_image(14)
    config = EditConfig(steps=10, strength=0.4)
    editor.edit(image, "make it red", condition=condition, config=config, generator=torch.Generator().manual_seed(0))
    # DDIM "leading" spacing with steps_offset 1 (SD 1.5's scheduler): 901, 801, ..., 1; the last int(10 * 0.4)
    assert [t for t, _ in unet_inputs] == [301, 201, 101, 1]
    clean, noise = _clean_latents(editor, image), _first_noise(editor, image, seed=0)
    assert torch.allclose(unet_inputs[0][1], _noised(editor, clean, noise, 301), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(threshold=1.5),
        dict(threshold=-0.1),
        dict(text_guidance=-1),
        dict(image_guidance=200),
        dict(steps=0),
        dict(strength=0),
        dict(schedule="linear"),
        dict(crop_margin=-0.1),
    ],
)
def test_invalid_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        EditConfig(**kwargs)


def test_empty_instruction_is_rejected(editor):
    with pytest.raises(ValueError, match="empty"):
        editor.edit(uint8_image(0), "  ", config=FAST)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(EditorLoadError, match="not found"):
        Editor.from_pretrained(tmp_path / "missing", device="cpu")
    with pytest.raises(EditorLoadError, match="no model_index.json"):
        Editor.from_pretrained(tmp_path, device="cpu")
    with pytest.raises(EditorLoadError, match="not in the local Hugging Face cache"):
        Editor.from_pretrained("nobody/not-a-cached-model", device="cpu")  # HF_HUB_OFFLINE=1


def test_text_to_image_checkpoint_is_not_an_editor(tmp_path):
    pipe = build_pipeline()
    pipe.register_modules(unet=UNet2DConditionModel.from_config(pipe.unet.config, in_channels=4))
    save_pipeline(pipe, tmp_path / "sd")
    with pytest.raises(EditorLoadError, match="not an InstructPix2Pix checkpoint"):
        Editor.from_pretrained(tmp_path / "sd", device="cpu")


def _first_unet_weight(editor: Editor) -> torch.Tensor:
    return next(editor.pipe.unet.parameters()).detach().flatten()[:8].float()


def test_float16_loads_the_fp16_variant_weights_where_a_checkpoint_has_them(tmp_path):
    default, variant = build_pipeline(seed=0), build_pipeline(seed=1)  # variant weights differ recognisably
    save_pipeline(default, tmp_path)
    variant.to(torch.float16).save_pretrained(tmp_path, safe_serialization=True, variant="fp16")
    default_weight = next(default.unet.parameters()).detach().flatten()[:8]
    variant_weight = next(variant.unet.parameters()).detach().flatten()[:8].float()

    half = Editor.from_pretrained(tmp_path, device="cpu", dtype=torch.float16)
    assert half.dtype == torch.float16
    assert torch.equal(_first_unet_weight(half), variant_weight)
    full = Editor.from_pretrained(tmp_path, device="cpu", dtype=torch.float32)  # fp32 never loads fp16 weights
    assert torch.equal(_first_unet_weight(full), default_weight)


def test_a_checkpoint_without_fp16_variant_loads_its_default_weights_in_float16(tiny_checkpoint):
    half = Editor.from_pretrained(tiny_checkpoint, device="cpu", dtype=torch.float16)
    default = Editor.from_pretrained(tiny_checkpoint, device="cpu", dtype=torch.float32)
    assert torch.equal(_first_unet_weight(half), _first_unet_weight(default).half().float())


def _cache_hub_repo(cache: Path, repo: str, files: list[str]) -> None:
    """A Hugging Face cache entry of ``repo`` holding ``files`` (huggingface_hub's layout: refs and snapshots)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    for name in files:
        (folder / "snapshots" / ("0" * 40) / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "snapshots" / ("0" * 40) / name).write_bytes(b"")


def test_a_hub_id_uses_the_cached_weights_and_asks_the_hub_only_when_nothing_is_cached(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub, "file_exists", lambda repo, name: asked.append((repo, name)) or True)
    _cache_hub_repo(tmp_path, "org/variant", [FP16_UNET, DEFAULT_UNET])
    _cache_hub_repo(tmp_path, "org/default", [DEFAULT_UNET])
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    assert _fp16_variant_available("org/variant")
    assert not _fp16_variant_available("org/default")  # no second download of the fp16 files
    assert asked == []
    assert _fp16_variant_available("org/uncached") and asked == [("org/uncached", FP16_UNET)]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert not _fp16_variant_available("org/other-uncached") and len(asked) == 1


def test_spread_schedule_runs_every_step_below_the_strength_noise_level(editor, unet_inputs):
    """Instruct-NeRF2NeRF's schedule: strength 0.3 of 1000 timesteps, 4 steps spaced over [0, 300], from the input."""
    image, condition = uint8_image(4), uint8_image(14)
    config = EditConfig(steps=4, strength=0.3, schedule="spread")
    editor.edit(image, "make it red", condition=condition, config=config, generator=torch.Generator().manual_seed(0))
    # DDIM "leading" spacing over 300 timesteps with steps_offset 1: 300 // 4 = 75 apart
    assert [t for t, _ in unet_inputs] == [226, 151, 76, 1]
    clean, noise = _clean_latents(editor, image), _first_noise(editor, image, seed=0)
    assert torch.allclose(unet_inputs[0][1], _noised(editor, clean, noise, 226), atol=1e-6)
    # the shared scheduler is left as it was: the next (truncated) edit runs SD's own spacing
    unet_inputs.clear()
    editor.edit(image, "make it red", condition=condition, config=EditConfig(steps=10, strength=0.4))
    assert [t for t, _ in unet_inputs] == [301, 201, 101, 1]


def test_spread_schedule_steps_with_the_unchanged_noise_table(editor):
    """Each DDIM step of the spread schedule goes from alpha_bar(t) to alpha_bar(t - 75), not SD's t - 250."""
    scheduler, timesteps = editor._timesteps(EditConfig(steps=4, strength=0.3, schedule="spread"))
    assert scheduler is not editor.pipe.scheduler
    assert torch.equal(scheduler.alphas_cumprod, editor.pipe.scheduler.alphas_cumprod)
    x0, eps = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    a_t, a_prev = scheduler.alphas_cumprod[151], scheduler.alphas_cumprod[76]
    noisy = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
    stepped = scheduler.step(eps, timesteps[1], noisy, return_dict=False)[0]
    assert torch.allclose(stepped, a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps, atol=1e-5)


def test_crop_box_holds_every_masked_pixel_of_the_batch_with_its_margin():
    mask = torch.zeros(2, 1, 40, 60, dtype=torch.bool)
    mask[0, 0, 10:18, 20:36] = True  # 8 x 16
    mask[1, 0, 12:14, 30:40] = True
    assert crop_box(mask, 0.0) == (10, 18, 20, 40)
    assert crop_box(mask, 0.25) == (5, 23, 15, 45)  # 0.25 x 20 px on each side
    assert crop_box(mask, 2.0) == (0, 40, 0, 60)  # clipped to the image
    assert crop_box(torch.zeros_like(mask), 0.25) is None


def test_a_cropped_edit_runs_on_the_box_and_changes_only_the_mask(editor, generator, vae_input_sizes):
    image = uint8_image(3, 48, 64)
    relevance = torch.zeros(1, 1, 48, 64)
    relevance[..., 16:24, 40:56] = 1.0
    config = dataclasses.replace(FAST, crop_margin=0.25)
    original = image.clone()
    result = editor.edit(image, "make the cube red", relevance=relevance, config=config, generator=generator)
    assert torch.equal(image, original)  # the edit is pasted into a copy, never into the caller's image
    assert vae_input_sizes and set(vae_input_sizes) == {(16, 24)}  # rows 12-28, columns 36-60: 16 x 24 px
    assert result.images.shape == image.shape and torch.equal(result.mask, relevance.bool())
    outside = ~result.mask.expand_as(image)
    assert torch.equal(result.images[outside], image[outside])
    assert not torch.equal(result.images[~outside], image[~outside])


def test_a_cropped_edit_with_nothing_relevant_returns_the_input(editor, unet_inputs):
    image = uint8_image(4, 32, 32)
    config = dataclasses.replace(FAST, crop_margin=0.25)
    result = editor.edit(image, "make the cube red", relevance=torch.zeros(1, 1, 32, 32), config=config)
    assert torch.equal(result.images, image) and not result.mask.any() and not unet_inputs


def test_a_named_condition_is_encoded_once_and_edits_as_an_unnamed_one(editor, vae_input_sizes):
    """The NeRF loop names each edit's condition (its view's unchanged photo): a view edited again skips its encode."""
    image, condition = uint8_image(5, 32, 48), uint8_image(6, 32, 48)
    relevance = torch.zeros(1, 1, 32, 48)
    relevance[..., 8:24, 16:40] = 1.0
    config = dataclasses.replace(FAST, threshold=0.5)

    def run(on: Editor, config: EditConfig = config, **kwargs) -> tuple[torch.Tensor, int]:
        vae_input_sizes.clear()
        generator = torch.Generator().manual_seed(1)
        result = on.edit(image, "make the cube red", condition, relevance, config, generator, **kwargs)
        return result.images, len(vae_input_sizes)

    unnamed, encodes = run(editor)
    assert encodes == 2  # the condition and the input, whose latents are the background outside the mask
    naming = Editor(editor.pipe)
    first, first_encodes = run(naming, condition_ids=[7])
    again, again_encodes = run(naming, condition_ids=[7])
    assert (first_encodes, again_encodes) == (2, 1)
    assert torch.equal(first, unnamed) and torch.equal(again, unnamed)
    # a crop of the same photo is another image, kept under the photo's name and its box
    cropped = dataclasses.replace(config, crop_margin=0.25)
    unnamed_crop, _ = run(editor, cropped)
    crop_encodes = [run(naming, cropped, condition_ids=[7]) for _ in range(2)]
    assert [encodes for _, encodes in crop_encodes] == [2, 1]
    assert all(torch.equal(images, unnamed_crop) for images, _ in crop_encodes)


def test_the_condition_cache_keeps_the_most_recently_used_latents(editor, monkeypatch):
    """Only the rows not kept are encoded, each kept under its own name; the oldest are dropped past the size."""
    naming = Editor(editor.pipe, condition_cache_size=2)
    images = torch.cat([uint8_image(seed) for seed in range(3)])
    expected = torch.cat([editor.encode_images(images[row : row + 1]) for row in range(3)])
    rows_encoded = []
    encode = Editor.encode_images

    def recording(self, batch, generator=None):
        rows_encoded.append(batch.shape[0])
        return encode(self, batch, generator)

    monkeypatch.setattr(Editor, "encode_images", recording)
    for ids, encoded in (([0, 1], [2]), ([0], []), ([2, 0], [1]), ([1], [1]), ([2], [1])):  # [2, 0] drops 1
        rows_encoded.clear()
        latents = naming.encode_condition(images[ids], ids)
        assert rows_encoded == encoded
        torch.testing.assert_close(latents, expected[ids])
    with pytest.raises(ValueError, match="2 condition ids for 1"):
        naming.encode_condition(images[:1], [0, 1])
    with pytest.raises(ValueError, match="must differ"):
        naming.encode_condition(images[:2], [0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        Editor(editor.pipe, condition_cache_size=-1)


@pytest.mark.parametrize("steps", [3, 10, 49, 97])
def test_a_strength_of_one_step_in_the_schedule_runs_that_step(editor, steps):
    """``steps * (1 / steps)`` can fall below 1 in floating point (49 steps); it still means one step."""
    _, timesteps = editor._timesteps(EditConfig(steps=steps, strength=1.0 / steps))
    assert len(timesteps) == 1
