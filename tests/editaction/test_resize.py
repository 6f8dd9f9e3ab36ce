"""Editing at a working resolution: sizes, antialiased resizing, the full-size composite, and the editor's use of it."""

import pytest
import torch

from editaction.resize import check_resolution, resize, restore_size, working_size


@pytest.mark.parametrize(
    "size,resolution,expected",
    [
        ((1200, 1600), 512, (384, 512)),
        ((200, 300), 64, (43, 64)),
        ((300, 200), 64, (64, 43)),
        ((32, 32), 512, (32, 32)),  # never upsampled
        ((1200, 1600), 0, (1200, 1600)),  # 0: own size
        ((1000, 3), 10, (10, 1)),  # the short side keeps a pixel
    ],
)
def test_working_size_shrinks_the_long_side_keeping_the_aspect(size, resolution, expected):
    assert working_size(size, resolution) == expected


def test_negative_resolution_is_refused():
    with pytest.raises(ValueError, match="edit resolution must be"):
        check_resolution(-1)
    with pytest.raises(ValueError, match="edit resolution must be"):
        working_size((10, 10), -5)


def test_resize_is_antialiased_and_the_identity_at_its_own_size():
    dots = torch.zeros(1, 3, 16, 16)
    dots[..., ::4, ::4] = 1.0  # plain bilinear at 1/4 samples between the dots and sees none of them
    small = resize(dots, (4, 4))
    assert small.shape == (1, 3, 4, 4)
    assert small.mean().item() == pytest.approx(dots.mean().item(), rel=0.2)
    assert resize(dots, (16, 16)) is dots


def test_restore_size_keeps_the_original_bit_for_bit_outside_the_upsampled_mask(generator):
    original = torch.rand(2, 3, 30, 45, generator=generator)
    edited = torch.rand(2, 3, 10, 15, generator=generator)
    mask = torch.zeros(2, 1, 10, 15, dtype=torch.bool)
    mask[:, :, 2:6, 3:9] = True
    images, full_mask = restore_size(edited, mask, original)
    assert images.shape == original.shape and full_mask.shape == (2, 1, 30, 45)
    assert torch.equal(
        images.expand_as(original)[~full_mask.expand_as(original)], original[~full_mask.expand_as(original)]
    )
    # The mask scales with the image: a 4x6 block of edit pixels covers the matching 12x18 block.
    assert torch.equal(full_mask, _rounded_block(full_mask.shape, slice(6, 18), slice(9, 27)))
    assert not torch.equal(images, original)


def _rounded_block(shape, rows: slice, cols: slice) -> torch.Tensor:
    """A block mask as thresholded bilinear upsampling draws it: its four corner pixels fall below one half."""
    block = torch.zeros(shape, dtype=torch.bool)
    block[..., rows, cols] = True
    for row in (rows.start, rows.stop - 1):
        for col in (cols.start, cols.stop - 1):
            block[..., row, col] = False
    return block


def test_editor_edits_at_the_resolution_and_returns_the_input_size(editor, generator, vae_input_sizes):
    from editaction import EditConfig

    sizes = vae_input_sizes
    images = torch.rand(1, 3, 48, 96, generator=generator)
    relevance = torch.zeros(1, 1, 48, 96)
    relevance[..., 9:39, 18:63] = 1.0  # edges on the 3x grid of the working size
    result = editor.edit(
        images, "make it blue", relevance=relevance, config=EditConfig(steps=2), generator=generator, resolution=32
    )
    assert sizes and all(size == (16, 32) for size in sizes)  # the editor saw long side 32
    assert result.images.shape == images.shape and result.mask.shape == (1, 1, 48, 96)
    outside = ~result.mask.expand_as(images)
    assert torch.equal(result.images[outside], images[outside])
    assert torch.equal(result.mask, _rounded_block(relevance.shape, slice(9, 39), slice(18, 63)))

    sizes.clear()
    relevance = editor.relevance_map(images, "make it blue", generator=generator, resolution=32)
    assert sizes and all(size == (16, 32) for size in sizes)
    assert relevance.shape == (1, 1, 48, 96) and 0 <= relevance.min() and relevance.max() <= 1


def test_a_binary_mask_is_resized_once_at_half_coverage():
    mask = torch.zeros(1, 1, 12, 12, dtype=torch.bool)
    mask[..., 2:5] = True  # 1/3 of the first working column, 2/3 of the second
    small = resize(mask, (4, 4))
    assert small.dtype == torch.bool
    expected = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    expected[..., 1] = True  # antialiased coverage 0.375 and 0.667: only the second reaches one half
    assert torch.equal(small, expected)
    assert torch.equal(resize(small, (12, 12)), resize(small.float(), (12, 12)) >= 0.5)


@pytest.mark.parametrize("threshold", [0.1, 0.9])
def test_a_binary_mask_edited_at_a_working_size_does_not_depend_on_the_threshold(editor, threshold):
    """The mask was thresholded once already: shrinking it for the editor must not threshold it again, which would
    grow it by a working pixel at a low threshold and shrink it at a high one."""
    from editaction import EditConfig

    images = torch.rand(1, 3, 48, 96, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 48, 96, dtype=torch.bool)
    mask[..., 10:38, 20:61] = True  # edges off the 3x grid of the working size (16 x 32)

    def edited_mask(threshold: float) -> torch.Tensor:
        config = EditConfig(steps=2, threshold=threshold)
        generator = torch.Generator().manual_seed(0)
        result = editor.edit(images, "make it blue", relevance=mask, config=config, generator=generator, resolution=32)
        return result.mask

    assert torch.equal(edited_mask(threshold), edited_mask(0.5))


def test_editor_refuses_a_relevance_of_another_size_when_resizing(editor):
    with pytest.raises(ValueError, match="expected the images' size 48x96"):
        editor.edit(torch.rand(1, 3, 48, 96), "x", relevance=torch.ones(1, 1, 24, 48), resolution=32)
