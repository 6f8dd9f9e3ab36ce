"""2D edit cost: relevance-guided edit versus diffusers' plain InstructPix2Pix pipeline, side by side.

    python bench/edit_2d.py                      # tiny model, 128 px, 20 steps (CPU: about a minute)
    python bench/edit_2d.py --arch sd15 --size 256 --steps 10   # Stable Diffusion 1.5 sizes, random weights
    python bench/edit_2d.py --arch sd15 --size 512 --steps 4 --repeats 2 --only crop   # the crop rows alone
    python bench/edit_2d.py --arch sd15 --size 256 --steps 4 --repeats 3 --only render   # the photo's latents kept

Weights are random (speed and memory do not depend on their values). Each variant runs
``repeats`` times after one warm-up, taking turns with the others; the table gives the median
and the ratio to diffusers, then the extra memory one run needs at its peak
(bench/measure.py) and its ratio.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import tyro
from diffusers import StableDiffusionInstructPix2PixPipeline
from measure import peak_memory_mib, seconds  # bench/measure.py (scripts run from bench/)

from editaction import EditConfig, Editor, RelevanceConfig
from editaction.config import RelevanceSpace
from toyworld.tiny import SD15_ARCHITECTURE, IP2PArchitecture, build_pipeline


@dataclass
class BenchArgs:
    arch: Literal["tiny", "sd15"] = "tiny"
    size: int = 128
    steps: int = 20
    repeats: int = 3
    device: str | None = None
    only: tuple[str, ...] = ()
    """Run only the variants whose name holds one of these words (the diffusers baseline always runs)."""
    crop_margin: float = 0.25


def interleaved_medians(variants: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict:
    """Median seconds per variant; the variants take turns, so drifting machine load hits all alike."""
    for run in variants.values():  # warm-up
        run()
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            timings[name].append(seconds(run, device))
    return {name: statistics.median(values) for name, values in timings.items()}


def edit_variants(
    pipe: StableDiffusionInstructPix2PixPipeline, size: int, steps: int, device: torch.device, crop_margin: float = 0.25
) -> dict[str, Callable[[], object]]:
    """The variants compared, each one call: diffusers' pipeline first (the baseline), then the Editor's.

    The crop rows edit an object-sized region (a 0.4 x 0.5 box, 20% of the view) with and without cropping to it.
    """
    editor = Editor(pipe)
    image = torch.rand(1, 3, size, size)
    relevance = torch.zeros(1, 1, size, size)
    relevance[..., : size // 2, :] = 1.0
    text = "make the red cube blue"
    plain, masked = EditConfig(steps=steps, threshold=0.0), EditConfig(steps=steps, threshold=0.5)

    def seeded() -> torch.Generator:
        return torch.Generator(device.type).manual_seed(0)

    variants = {
        "diffusers IP2P pipeline": lambda: pipe(
            text, image=image, num_inference_steps=steps, generator=seeded(), output_type="pt"
        ),
        "Editor.edit, no mask": lambda: editor.edit(image, text, config=plain, generator=seeded()),
        "Editor.edit, relevance mask": lambda: editor.edit(
            image, text, relevance=relevance, config=masked, generator=seeded()
        ),
    }
    small = torch.zeros(1, 1, size, size)
    small[..., size // 5 : size * 3 // 5, size // 4 : size * 3 // 4] = 1.0
    cropped = EditConfig(steps=steps, threshold=0.5, crop_margin=crop_margin)
    variants["Editor.edit, relevance mask on 20% of the view"] = lambda: editor.edit(
        image, text, relevance=small, config=masked, generator=seeded()
    )
    variants[f"Editor.edit, crop to that mask (margin {crop_margin:g})"] = lambda: editor.edit(
        image, text, relevance=small, config=cropped, generator=seeded()
    )
    # In 3D the editor sees a render and is conditioned on the view's unchanged photo: named, the photo's latents
    # are kept from the view's first edit (Editor.edit's condition_ids).
    render, named = torch.rand(1, 3, size, size), Editor(pipe)
    variants["Editor.edit, relevance mask, a render conditioned on its photo"] = lambda: editor.edit(
        render, text, condition=image, relevance=relevance, config=masked, generator=seeded()
    )
    kept = "Editor.edit, a render conditioned on its photo, the photo's latents kept (edited again)"
    variants[kept] = lambda: named.edit(
        render, text, condition=image, relevance=relevance, config=masked, generator=seeded(), condition_ids=[0]
    )
    for space in get_args(RelevanceSpace):
        relevance_config = RelevanceConfig(space=space)
        variants[f"relevance_map ({space} space) + masked edit"] = lambda config=relevance_config: editor.edit(
            image,
            text,
            relevance=editor.relevance_map(image, text, config=config, generator=seeded()),
            config=masked,
            generator=seeded(),
        )
    return variants


def main() -> None:
    args = tyro.cli(BenchArgs, description=__doc__)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    torch.set_grad_enabled(False)
    pipe = build_pipeline(SD15_ARCHITECTURE if args.arch == "sd15" else IP2PArchitecture()).to(device)
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    variants = edit_variants(pipe, args.size, args.steps, device, args.crop_margin)
    baseline_name = next(iter(variants))
    variants = {
        name: run
        for name, run in variants.items()
        if name == baseline_name or not args.only or any(word in name for word in args.only)
    }
    print(f"device {device} ({dtype}), arch {args.arch}, {args.size} px, {args.steps} steps, median of {args.repeats}")
    medians = interleaved_medians(variants, args.repeats, device)
    memory = {name: peak_memory_mib(run, device) for name, run in variants.items()}
    baseline = next(iter(variants))
    print("| variant | seconds | x diffusers | peak extra MiB | x diffusers |\n|---|---|---|---|---|")
    for name in variants:
        print(
            f"| {name} | {medians[name]:.3f} | {medians[name] / medians[baseline]:.3f} "
            f"| {memory[name]:.1f} | {memory[name] / memory[baseline]:.2f} |"
        )


if __name__ == "__main__":
    main()
