import torch

from editaction import RelevanceConfig
from editaction.relevance import clamp_upper_outliers, noise_gap, normalise, relevance_from_noise_gap


def test_noise_gap_sums_absolute_difference_over_channels():
    a = torch.zeros(1, 4, 2, 2)
    b = torch.zeros(1, 4, 2, 2)
    b[0, :, 0, 0] = torch.tensor([1.0, -2.0, 0.5, 0.0])
    gap = noise_gap(a, b)
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


def test_relevance_from_gap_upsamples_to_image_size():
    gap = torch.rand(2, 1, 4, 6)
    relevance = relevance_from_noise_gap(gap, (32, 48), iqr_factor=1.5)
    assert relevance.shape == (2, 1, 32, 48)
    assert relevance.min() >= 0 and relevance.max() <= 1


def test_editor_relevance_map_shape_and_range(editor, generator):
    images = torch.rand(2, 3, 40, 56, generator=generator)
    relevance = editor.relevance_map(images, "make the cube blue", generator=generator)
    assert relevance.shape == (2, 1, 40, 56)
    assert relevance.min() >= 0 and relevance.max() <= 1
    assert relevance.max() > 0.9  # min-max normalised: the most relevant pixel is near 1


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
