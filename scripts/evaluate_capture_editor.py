"""2D edits of capture-world photos: how well an editor recolours a photographed object, before any 3D.

python scripts/evaluate_capture_editor.py --models toyworld/models/toy-editor toyworld/models/toy-editor-capture

For each layout (the validation ones by default; toyworld.scene_layouts) its capture is photographed as the capture
demo photographs it (kept in --captures), and every second photo, at the demo's training resolution, is edited by its
instruction under the object's true mask (crop margin and scene settings of the toy presets): the strict recolour
test per photo. The editor's own relevance map is compared with the mask too (IoU at threshold 0.5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import tyro

from editaction import Editor
from editaction.images import read_image
from toyworld.capture import layout_capture_spec, read_truth, write_capture
from toyworld.method_configs import TOY_CROP_MARGIN
from toyworld.metrics import iou, recolour_class
from toyworld.pairs import parse_recolour
from toyworld.scene_layouts import SCENE_LAYOUT_SEEDS, layout_scene


@dataclass
class Args:
    models: tuple[str, ...]
    layouts: tuple[int, ...] = SCENE_LAYOUT_SEEDS["validation"]
    captures: Path = Path("outputs/capture-layouts")
    """Where each layout's capture is written once (``<captures>/<layout>``)."""
    photos: int = 12
    downscale: int = 4
    """The capture demo's training resolution: photos / 4."""


def measure(editor: Editor, capture: Path, instruction: str, photos: int, downscale: int) -> tuple[list[str], float]:
    """The colour class of the edited object in each photo, and the mean IoU of the relevance maps with the mask."""
    recolour = parse_recolour(instruction)
    object_name = f"{recolour.colour}_{recolour.shape}"
    truth = read_truth(capture)
    config = dataclasses.replace(editor.settings.scene.edit, crop_margin=TOY_CROP_MARGIN)
    classes, overlaps = [], []
    for name in sorted(p.name for p in (capture / "photos").iterdir())[::2][:photos]:
        photo = read_image(capture / "photos" / name).rgb[None]
        size = (photo.shape[-2] // downscale, photo.shape[-1] // downscale)
        image = F.interpolate(photo, size=size, mode="bicubic", antialias=True).clamp(0, 1)
        mask = F.interpolate(
            torch.from_numpy(truth.mask(object_name, name)).float()[None, None], size=size, mode="area"
        )
        mask = mask[0, 0] > 0.5
        generator = torch.Generator().manual_seed(0)
        edited = editor.edit(image, instruction, relevance=mask[None, None].float(), config=config, generator=generator)
        classes.append(recolour_class(edited.images[0].cpu(), mask))
        relevance = editor.relevance_map(
            image, instruction, config=editor.settings.scene.relevance, generator=generator
        )
        overlaps.append(iou(relevance[0, 0].cpu() >= 0.5, mask))
    return classes, float(np.mean(overlaps))


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    print(
        "| editor | layout | instruction | recoloured | object after edit | relevance IoU |\n|---|---|---|---|---|---|"
    )
    for model in args.models:
        editor = Editor.from_pretrained(model)
        editor.set_progress_bar(False)
        for layout in args.layouts:
            scene = layout_scene(layout)
            capture = args.captures / str(layout)
            if not (capture / "truth" / "capture.json").is_file():
                write_capture(capture, layout_capture_spec(layout))
            classes, overlap = measure(editor, capture, scene.instruction, args.photos, args.downscale)
            target = parse_recolour(scene.instruction).target_colour
            counts = ", ".join(f"{c} {classes.count(c)}" for c in sorted(set(classes), key=classes.count, reverse=True))
            success = f"{classes.count(target)} / {len(classes)}"
            print(f"| {Path(model).name} | {layout} | {scene.instruction} | {success} | {counts} | {overlap:.2f} |")


if __name__ == "__main__":
    main()
