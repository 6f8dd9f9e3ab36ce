"""Edit one image with a text instruction, only where it applies, and write the edit, relevance map and mask.

The logic behind ``scripts/edit_image.py``: ``main`` takes the parsed arguments, prints one summary line or one
``error: ...`` line for a user mistake, and returns the exit code.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from editaction.config import EditConfig, RelevanceSpace
from editaction.editor import Editor, EditorLoadError, check_editor_source
from editaction.images import ImageReadError, read_image, relevance_to_rgb, to_array, write_image
from editaction.resize import check_resolution, working_size
from editaction.settings import EditOptions, RelevanceOptions, SettingsError, load_settings


class UsageError(ValueError):
    """A mistake in the command line, reported as one line."""


@dataclass(kw_only=True)
class EditImageArgs:
    """The command line of ``scripts/edit_image.py``; it supplies ``model``'s default (the toy editor)."""

    image: Path
    """Input image (PNG, JPEG, TIFF, ...; 8 or 16 bit; gray, RGB or RGBA). Never modified."""
    text: str
    """The instruction, e.g. "make the red cube blue"."""
    out: Path = Path("outputs/edit_image")
    """Output directory."""
    model: str
    """Diffusers InstructPix2Pix checkpoint, a directory or hub id (default: the embedded toy editor;
    timbrooks/instruct-pix2pix for real photos)."""
    steps: int | None = None
    """DDIM steps. Default: the editor's recommendation (its edit_settings.json; published InstructPix2Pix: 100)."""
    text_guidance: float | None = None
    """Guidance towards the instruction. Default: the editor's recommendation (published: 7.5)."""
    image_guidance: float | None = None
    """Guidance towards the input image. Default: the editor's recommendation (published: 1.5)."""
    resolution: int = 512
    """Long side in pixels at most that the editor sees (IP2P works at 256-512 px); larger images are edited at
    this size and brought back, unmasked pixels untouched. 0: the image's own size. Outputs keep the input's size."""
    threshold: float = EditConfig.threshold
    """Relevance at or above this is edited; 0 edits everywhere."""
    crop_margin: float | None = EditConfig.crop_margin
    """Edit only the box around the relevant region, widened by this fraction of its longer side (e.g. 0.25):
    faster when the region is small, and with more of the working resolution spent on it. Default: the whole image."""
    noise_samples: int | None = None
    """Noise draws averaged per relevance map. Default: the editor's recommendation (published: 1)."""
    iqr_factor: float | None = None
    """Relevance is clamped at Q3 + k * IQR before scaling; raise k when the edited object covers only a few percent
    of the image, or the clamp flattens the object into the background. Default: the editor's (published: 1.5)."""
    relevance_space: RelevanceSpace | None = None
    """latent (WYS) compares the noise predictions at latent resolution; pixel compares their decoded images,
    sharper when objects span few latent cells, at two VAE decodes per noise draw. Default: the editor's."""
    seed: int = 0
    """Random seed; the same seed and inputs give the same result."""
    no_relevance: bool = False
    """Plain InstructPix2Pix: edit the whole image."""
    overwrite: bool = False
    """Replace outputs that already exist."""
    device: str | None = None
    """cuda or cpu; default: cuda when available."""


def output_paths(args: EditImageArgs) -> dict[str, Path]:
    stem = args.image.stem
    names = {"edited": f"{stem}_edited.png", "relevance": f"{stem}_relevance.png", "mask": f"{stem}_mask.png"}
    if args.no_relevance:
        del names["relevance"]
    return {kind: args.out / name for kind, name in names.items()}


def check_outputs(args: EditImageArgs, paths: dict[str, Path]) -> None:
    """Output names always differ from the input's, and writes are renames: the input is never touched."""
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not args.overwrite:
        raise UsageError(f"output exists: {existing[0]} (pass --overwrite to replace it)")


def run(args: EditImageArgs) -> dict[str, Path]:
    if not args.text.strip():
        raise UsageError('--text is empty: give an instruction such as "make the cube blue"')
    check_editor_source(args.model)
    try:
        recommended = load_settings(args.model).image
    except SettingsError as err:
        raise EditorLoadError(str(err)) from None
    try:
        edit_config = EditOptions(
            steps=args.steps,
            text_guidance=args.text_guidance,
            image_guidance=args.image_guidance,
            threshold=0.0 if args.no_relevance else args.threshold,
            crop_margin=args.crop_margin,
        ).resolve(recommended.edit)
        relevance_config = RelevanceOptions(
            noise_samples=args.noise_samples, iqr_factor=args.iqr_factor, space=args.relevance_space
        ).resolve(recommended.relevance)
        check_resolution(args.resolution)
    except ValueError as err:
        raise UsageError(str(err)) from None
    paths = output_paths(args)
    check_outputs(args, paths)
    image = read_image(args.image)

    editor = Editor.from_pretrained(args.model, device=args.device)
    device_generator = torch.Generator(editor.device.type)
    relevance = None
    started = time.perf_counter()
    if not args.no_relevance:
        relevance = editor.relevance_map(
            image.rgb,
            args.text,
            config=relevance_config,
            generator=device_generator.manual_seed(args.seed),
            resolution=args.resolution,
        )
    result = editor.edit(
        image.rgb,
        args.text,
        relevance=relevance,
        config=edit_config,
        generator=device_generator.manual_seed(args.seed),
        resolution=args.resolution,
    )
    elapsed = time.perf_counter() - started

    write_image(paths["edited"], to_array(result.images[0], like=image))
    write_image(paths["mask"], to_array(result.mask[0].float().expand(3, -1, -1)))
    if relevance is not None:
        write_image(paths["relevance"], relevance_to_rgb(relevance[0, 0]))
    edited_share = result.mask.float().mean().item()
    height, width = working_size(image.size, args.resolution)
    print(
        f"edited {edited_share:.0%} of the image (at {width}x{height} px) in {elapsed:.1f} s on {editor.device}; "
        f"wrote {args.out}/"
    )
    return paths


def main(args: EditImageArgs) -> int:
    """Run the edit; a user mistake prints one ``error: ...`` line. Returns the exit code."""
    try:
        run(args)
    except (UsageError, ImageReadError, EditorLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except torch.cuda.OutOfMemoryError:
        print("error: out of GPU memory; try a smaller image or --device cpu", file=sys.stderr)
        return 1
    return 0
