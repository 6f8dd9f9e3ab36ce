import pytest
import torch
from diffusers import DDIMScheduler

from editaction import RelevanceConfig
from editaction.relevance import (
    clamp_upper_outliers,
    normalise,
    predicted_clean_latents,
    prediction_gap,
    relevance_from_gap,
)


def test_prediction_gap_sums_absolute_difference_over_channels():
    a = torch.zeros(1, 4, 2, 2)
    b = torch.zeros(1, 4, 2, 2)
    b[0, :, 0, 0] = torch.tensor([1.0, -2.0, 0.5, 0.0])
    gap = prediction_gap(a, b)
    assert gap.shape == (1, 1, 2, 2)
    assert gap[0, 0, 0, 0] == 3.5 and gap[0, 0, 1, 1] == 0


def test_iqr_clamp_on_hand_made_map():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]).view(1, 1, 2, 4)
    # torch.quantile (linear): Q1 = 2.75, Q3 = 6.25, IQR = 3.5 -> upper = 6.25 + 1.5 * 3.5 = 11.5
    clamped = clamp_upper_outliers(values, iqr_factor=1.5)
    assert clamped.flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 11.5]
    # each map of a batch is clamped on its own statistics
    batch = torch.cat([values, values * 2])
    assert clamp_upper_outliers(batch, 1.5)[1].max() == 23.0


def test_normalise_range_and_constant_map_is_safe():
    values = torch.tensor([[[[2.0, 4.0], [6.0, 10.0]]]])
    scaled = normalise(values)
    assert torch.allclose(scaled.flatten(), torch.tensor([0.0, 0.25, 0.5, 1.0]), atol=1e-6)
    constant = normalise(torch.full((1, 1, 3, 3), 7.0))
    assert torch.isfinite(constant).all() and (constant == 0).all()


def test_relevance_from_gap_clamps_then_normalises_a_hand_made_gap():
    gap = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]).view(1, 1, 2, 4)
    # 100 is clamped to Q3 + 1.5 IQR = 11.5 (test above), then (v - 1) / (11.5 - 1)
    expected = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.5]) / 10.5
    assert torch.allclose(relevance_from_gap(gap, (2, 4), iqr_factor=1.5).flatten(), expected, atol=1e-6)


def test_relevance_from_gap_upsamples_bilinearly_to_image_size():
    gap = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)  # (2i + j): no outlier, normalised to (2i + j) / 3
    relevance = relevance_from_gap(gap, (4, 4), iqr_factor=1.5)
    # pixel k of 4 samples the 2-cell grid at (k + 0.5) / 2 - 0.5, clamped to [0, 1]; bilinear is exact on (2i + j)
    position = torch.tensor([0.0, 0.25, 0.75, 1.0])
    expected = (2 * position[:, None] + position[None, :]) / 3
    assert torch.allclose(relevance[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_predicted_clean_latents_inverts_the_forward_process(prediction_type):
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", prediction_type=prediction_type)
    generator = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(2, 2, 4, 8, 8, generator=generator)
    timestep = torch.tensor([800])
    noisy = scheduler.add_noise(clean, noise, timestep)
    target = {"epsilon": noise, "v_prediction": scheduler.get_velocity(clean, noise, timestep), "sample": clean}
    estimate = predicted_clean_latents(noisy, target[prediction_type], scheduler.alphas_cumprod[800], prediction_type)
    assert torch.allclose(estimate, clean, atol=1e-4)
    with pytest.raises(ValueError, match="prediction_type"):
        predicted_clean_latents(noisy, noise, scheduler.alphas_cumprod[800], "flow")


@pytest.mark.parametrize("space", ["latent", "pixel"])
def test_editor_relevance_map_shape_and_range(editor, generator, space):
    images = torch.rand(2, 3, 40, 56, generator=generator)
    config = RelevanceConfig(space=space)
    relevance = editor.relevance_map(images, "make the cube blue", config=config, generator=generator)
    assert relevance.shape == (2, 1, 40, 56)
    assert relevance.min() >= 0 and relevance.max() <= 1


def test_pixel_space_relevance_spans_exactly_0_to_1(editor, generator):
    """Pixel-space maps are min-max normalised at the image's own resolution: each has a 0 and a 1."""
    images = torch.rand(2, 3, 40, 56, generator=generator)
    config = RelevanceConfig(space="pixel")
    relevance = editor.relevance_map(images, "make the cube blue", config=config, generator=generator)
    assert torch.equal(relevance.amin(dim=(1, 2, 3)), torch.zeros(2))
    assert torch.allclose(relevance.amax(dim=(1, 2, 3)), torch.ones(2), atol=1e-6)


def test_latent_relevance_of_a_known_prediction_gap(editor, generator):
    """With- and without-instruction predictions that differ by a ramp (across columns for the first image, across
    rows for the second): the maps are the normalised ramps, upsampled bilinearly from the 5 x 7 latent grid."""
    rows, columns = torch.arange(5.0)[:, None].expand(5, 7), torch.arange(7.0)[None, :].expand(5, 7)

    def known_gap(module, args, kwargs, output):
        prediction = torch.zeros_like(output[0])  # the batch is [image 0, image 1] with, then without, the text
        prediction[0, 0], prediction[1, 1] = columns, -rows  # the L1 gap over channels ignores the sign
        return (prediction,)

    hook = editor.pipe.unet.register_forward_hook(known_gap, with_kwargs=True)
    try:
        images = torch.rand(2, 3, 40, 56, generator=generator)
        relevance = editor.relevance_map(images, "make the cube blue", config=RelevanceConfig(), generator=generator)
    finally:
        hook.remove()
    # pixel k samples the latent grid at (k + 0.5) / 8 - 0.5 (stride 8), clamped to the grid; the ramps are linear
    position = lambda pixels, cells: ((torch.arange(pixels) + 0.5) / 8 - 0.5).clamp(0, cells - 1)  # noqa: E731
    assert torch.allclose(relevance[0, 0], (position(56, 7) / 6).expand(40, 56), atol=1e-6)
    assert torch.allclose(relevance[1, 0], (position(40, 5)[:, None] / 4).expand(40, 56), atol=1e-6)


def test_pixel_space_relevance_is_not_an_upsampled_latent_grid(editor, generator):
    """Latent-space maps are bilinear within each latent cell; pixel-space maps are not."""
    image = torch.rand(1, 3, 32, 32, generator=generator)

    def curvature(space: str) -> float:
        relevance = editor.relevance_map(
            image, "make it red", config=RelevanceConfig(space=space), generator=torch.Generator().manual_seed(0)
        )[0, 0]
        # second differences along rows vanish where a map is linear between sample points
        return (relevance[:, 2:] - 2 * relevance[:, 1:-1] + relevance[:, :-2]).abs().median().item()

    assert curvature("pixel") > 10 * curvature("latent")


def test_relevance_space_is_validated():
    with pytest.raises(ValueError, match="relevance space must be one of latent, pixel"):
        RelevanceConfig(space="voxel")


def test_editor_relevance_of_constant_image_is_finite(editor, generator):
    relevance = editor.relevance_map(torch.full((1, 3, 32, 32), 0.5), "make it red", generator=generator)
    assert torch.isfinite(relevance).all()
    assert relevance.min() >= 0 and relevance.max() <= 1


def test_relevance_is_seeded_and_averages_noise_samples(editor):
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))

    def probe(seed: int, samples: int) -> torch.Tensor:
        return editor.relevance_map(
            image,
            "turn it green",
            config=RelevanceConfig(noise_samples=samples),
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(probe(1, 1), probe(1, 1))
    assert not torch.equal(probe(1, 1), probe(2, 1))
    # averaging draws lowers the spread between seeds
    single = (probe(1, 1) - probe(2, 1)).abs().mean()
    averaged = (probe(1, 8) - probe(2, 8)).abs().mean()
    assert averaged < single
