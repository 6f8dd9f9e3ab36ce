"""Measure edited scenes on the held-out views of a toy scene, against its unedited ground truth.

A run is rendered from the held-out cameras (``test_filenames``) and compared with the
unedited photographs and the ground-truth mask of the object the instruction names:

- preservation: PSNR and SSIM outside the object's mask;
- edit success: views whose object colour is the requested one at equal brightness
  (``toyworld.metrics.recolour_class``), and the colour class of the object in each view;
- where the edit acted: of the pixels whose render changed from the render before the edit, the share
  on the object (precision), and the share of the object's pixels that changed (recall);
- multi-view consistency: the spread of the object's hue across the views.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from jaxtyping import Bool, Float
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.utils.eval_utils import eval_setup
from torch import Tensor

from editaction.images import ImageReadError, read_image
from relevance_nerf.checkpoints import latest_step
from relevance_nerf.errors import RelevanceEditError
from relevance_nerf.model import RELEVANCE
from toyworld.metrics import (
    changed_pixels,
    chroma_spread,
    mean_chroma,
    precision_recall,
    psnr,
    recolour_class,
    ssim,
)
from toyworld.pairs import Recolour, parse_recolour

MIN_OBJECT_PIXELS = 16
"""Views where the object covers fewer pixels do not count for success, colour, precision and recall (too few)."""
CHANGE_THRESHOLD = 0.1
"""Least difference in some channel (26 of 255 levels) between a run's render and the render before the edit for a
pixel to count as changed: exact recolours of a toy object change almost all its pixels by more, while training on
without edits leaves few pixels above it (docs/toy-world.md). Lower counts more training drift as change, higher
misses faint tints."""


@dataclass(frozen=True)
class HeldOutView:
    name: str
    """File name of the view in the scene's ``images/`` folder."""
    photo: Float[Tensor, "3 h w"]
    object_mask: Bool[Tensor, "h w"]


@dataclass(frozen=True)
class SceneTruth:
    """The held-out views of a toy scene and the object a recolour instruction names."""

    directory: Path
    instruction: str
    edit: Recolour
    object_name: str
    views: list[HeldOutView]


def _parsed(instruction: str) -> Recolour:
    edit = parse_recolour(instruction)
    if edit is None:
        raise RelevanceEditError(
            f"cannot evaluate {instruction!r}: the evaluation measures recolour instructions of the toy world, "
            "e.g. 'make the red cube blue'"
        )
    return edit


def colours_after(objects: list[dict], earlier: Sequence[str]) -> dict[str, str]:
    """Each object's colour after the ``earlier`` recolour instructions (a chain of edits), by object name."""
    colours = {o["name"]: o["colour"] for o in objects}
    for instruction in earlier:
        edit = _parsed(instruction)
        named = [o["name"] for o in objects if (colours[o["name"]], o["shape"]) == (edit.colour, edit.shape)]
        if not named:
            raise RelevanceEditError(f"no {edit.colour} {edit.shape} to recolour at {instruction!r} in the chain")
        colours[named[0]] = edit.target_colour
    return colours


def load_scene_truth(scene: Path, instruction: str, earlier: Sequence[str] = ()) -> SceneTruth:
    """Read a toy scene's held-out photos and the named object's masks; one clear error for each mistake.

    ``earlier``: the instructions of the edits this one builds on; the object is named by its colour after them.
    """
    scene = Path(scene)
    transforms_path, description_path = scene / "transforms.json", scene / "scene.json"
    if not transforms_path.is_file():
        raise RelevanceEditError(
            f"no scene at {scene}: transforms.json is missing (scripts/make_toy_scene.py makes one)"
        )
    if not description_path.is_file():
        raise RelevanceEditError(f"{scene} has no scene.json: evaluation needs a toy scene with ground-truth masks")
    edit = _parsed(instruction)
    objects = json.loads(description_path.read_text())["objects"]
    colours = colours_after(objects, earlier)
    named = [o["name"] for o in objects if (colours[o["name"]], o["shape"]) == (edit.colour, edit.shape)]
    if not named:
        present = ", ".join(f"{colours[o['name']]} {o['shape']}" for o in objects)
        raise RelevanceEditError(f"the scene has no {edit.colour} {edit.shape} (it has: {present})")
    held_out = json.loads(transforms_path.read_text()).get("test_filenames") or []
    if not held_out:
        raise RelevanceEditError(f"{transforms_path} lists no held-out views (test_filenames)")
    views = []
    try:
        for file_path in held_out:
            name = Path(file_path).name
            mask = read_image(scene / "masks" / named[0] / name).rgb[0] > 0.5
            views.append(HeldOutView(name, read_image(scene / file_path).rgb, mask))
    except ImageReadError as error:
        raise RelevanceEditError(str(error)) from error
    return SceneTruth(scene, instruction, edit, named[0], views)


@dataclass(frozen=True)
class RenderedView:
    rgb: Float[Tensor, "3 h w"]
    relevance: Float[Tensor, "h w"] | None
    """Rendered relevance in [0, 1] (relevance-edit runs only)."""


@dataclass(frozen=True)
class RunSettings:
    """What a run was trained with, read from its ``config.yml``: the fairness of a comparison rests on it."""

    method: str
    text: str | None
    editor: str | None
    threshold: float | None
    seed: int | None
    iterations: int


def read_run_config(config_path: Path) -> TrainerConfig:
    if not Path(config_path).is_file():
        raise RelevanceEditError(f"no run at {config_path}: config.yml is missing")
    config = yaml.load(Path(config_path).read_text(), Loader=yaml.Loader)  # nerfstudio's own config format
    if not isinstance(config, TrainerConfig):
        raise RelevanceEditError(f"{config_path} is not a nerfstudio run config")
    return config


def run_settings(config: TrainerConfig) -> RunSettings:
    pipeline = config.pipeline
    edit = getattr(pipeline, "edit", None)
    return RunSettings(
        method=config.method_name or "unknown",
        text=getattr(pipeline, "text", None),
        editor=getattr(pipeline, "editor", None),
        threshold=None if edit is None else edit.threshold,
        seed=getattr(pipeline, "seed", None),
        iterations=config.max_num_iterations,
    )


def render_held_out(config_path: Path, scene: Path, step: int | None = None) -> dict[str, RenderedView]:
    """Render a run's checkpoint of ``step`` (default: the latest) from the scene's held-out cameras, by file name."""
    run_dir = Path(config_path).resolve().parent

    def locate(config: TrainerConfig) -> TrainerConfig:  # the run and scene may have moved since training
        config.output_dir, config.experiment_name = run_dir.parents[2], run_dir.parents[1].name
        config.method_name, config.timestamp = run_dir.parent.name, run_dir.name
        config.pipeline.datamanager.data = Path(scene)
        config.load_step = step
        return config

    read_run_config(config_path)
    if latest_step(run_dir / "nerfstudio_models") is None:
        raise RelevanceEditError(f"{run_dir} holds no checkpoint (nerfstudio_models/step-*.ckpt)")
    _, pipeline, _, _ = eval_setup(Path(config_path), test_mode="test", update_config_callback=locate)
    dataset = pipeline.datamanager.eval_dataset
    renders = {}
    with torch.no_grad():
        for index, filename in enumerate(dataset.image_filenames):
            camera = dataset.cameras[index : index + 1].to(pipeline.device)
            outputs = pipeline.model.get_outputs_for_camera(camera)
            relevance = outputs.get(RELEVANCE)
            renders[Path(filename).name] = RenderedView(
                rgb=outputs["rgb"].clamp(0, 1).permute(2, 0, 1).float().cpu(),
                relevance=None if relevance is None else relevance[..., 0].float().cpu(),
            )
    return renders


@dataclass(frozen=True)
class SceneMetrics:
    psnr_outside: float
    """dB, outside the object's mask, against the unedited photos (higher: better preserved)."""
    ssim_outside: float
    edit_success: float
    """Fraction of views where the object's colour is the requested one (``toyworld.metrics.recolour_class``)."""
    object_colours: dict[str, str]
    """The object's colour class in each measured view, by view name."""
    hue_spread: float
    """Degrees the object's hue varies across views (lower: more consistent)."""
    views: int
    psnr_outside_vs_before: float | None = None
    """dB, outside the object's mask, against the render before the edit: the change the edit made there."""
    ssim_outside_vs_before: float | None = None
    changed_pixels: int | None = None
    """Pixels changed from the render before the edit (``CHANGE_THRESHOLD``), in the views that count."""
    edit_precision: float | None = None
    """Share of the changed pixels that are on the object: NaN when none changed, None without a render before."""
    edit_recall: float | None = None
    """Share of the object's pixels that changed; None without a render before."""


def _object_visible(view: HeldOutView) -> bool:
    """Whether the object covers enough of the view for its colour to be judged."""
    return view.object_mask.sum() >= MIN_OBJECT_PIXELS


def object_colours(truth: SceneTruth, renders: dict[str, RenderedView]) -> dict[str, str]:
    """The edited object's colour class in each held-out view where it is visible, by view name."""
    visible = [view for view in truth.views if _object_visible(view)]
    return {view.name: recolour_class(renders[view.name].rgb, view.object_mask) for view in visible}


def measure(
    truth: SceneTruth, renders: dict[str, RenderedView], before: dict[str, RenderedView] | None = None
) -> SceneMetrics:
    """Metrics of one run's held-out renders; ``before`` (the renders before the edit) adds the ``_vs_before`` pair
    and where the edit acted (precision and recall, pooled over the views that count)."""
    for run in (renders, before or renders):
        missing = [view.name for view in truth.views if view.name not in run]
        if missing:
            raise RelevanceEditError(f"a run has no render of held-out views {missing[:3]}: trained on this scene?")
    outside_psnr, outside_ssim, chromas = [], [], []
    kept_psnr, kept_ssim, changed, on_object = [], [], [], []
    for view in truth.views:
        render = renders[view.name]
        if render.rgb.shape != view.photo.shape:
            raise RelevanceEditError(
                f"render of {view.name} is {tuple(render.rgb.shape)}, the photo {tuple(view.photo.shape)}"
            )
        outside = ~view.object_mask
        outside_psnr.append(min(psnr(render.rgb, view.photo, outside), 100.0))
        outside_ssim.append(ssim(render.rgb, view.photo, outside))
        if before is not None:
            kept_psnr.append(min(psnr(render.rgb, before[view.name].rgb, outside), 100.0))
            kept_ssim.append(ssim(render.rgb, before[view.name].rgb, outside))
        if not _object_visible(view):
            continue
        chromas.append(mean_chroma(render.rgb, view.object_mask))
        if before is not None:
            changed.append(changed_pixels(render.rgb, before[view.name].rgb, CHANGE_THRESHOLD).flatten())
            on_object.append(view.object_mask.flatten())
    colours = object_colours(truth, renders)
    if not colours:
        raise RelevanceEditError(
            f"the {truth.object_name} covers under {MIN_OBJECT_PIXELS} pixels in every held-out view"
        )
    all_changed = torch.cat(changed) if changed else None
    precision, recall = (None, None) if all_changed is None else precision_recall(all_changed, torch.cat(on_object))
    return SceneMetrics(
        psnr_outside=statistics.fmean(outside_psnr),
        ssim_outside=statistics.fmean(outside_ssim),
        edit_success=statistics.fmean(colour == truth.edit.target_colour for colour in colours.values()),
        object_colours=colours,
        hue_spread=chroma_spread(torch.stack(chromas)),
        views=len(truth.views),
        psnr_outside_vs_before=statistics.fmean(kept_psnr) if kept_psnr else None,
        ssim_outside_vs_before=statistics.fmean(kept_ssim) if kept_ssim else None,
        changed_pixels=None if all_changed is None else int(all_changed.sum()),
        edit_precision=precision,
        edit_recall=recall,
    )


def metrics_table(rows: dict[str, SceneMetrics], clip: dict[str, dict[str, float]] | None = None) -> str:
    """A markdown table, one row per run; the vs-before and CLIP columns only when measured.

    Precision and recall read "n/a" without a render before the edit, precision "-" where no pixel changed.
    """
    with_before = any(m.psnr_outside_vs_before is not None for m in rows.values())
    columns = ["PSNR outside (dB)", "SSIM outside"]
    columns += ["PSNR outside vs before (dB)", "SSIM outside vs before"] if with_before else []
    columns += ["edit success", "object colour (views)", "hue spread (deg)", "edit precision", "edit recall"]
    clip_columns = sorted(next(iter(clip.values()))) if clip else []
    lines = [
        "| run | " + " | ".join(columns + clip_columns) + " |",
        "|---" * (1 + len(columns) + len(clip_columns)) + "|",
    ]

    def number(value: float | None, spec: str) -> str:
        return "n/a" if value is None else "-" if math.isnan(value) else format(value, spec)

    for label, m in rows.items():
        cells = [f"{m.psnr_outside:.2f}", f"{m.ssim_outside:.3f}"]
        if with_before:
            cells += [number(m.psnr_outside_vs_before, ".2f"), number(m.ssim_outside_vs_before, ".3f")]
        cells += [
            f"{m.edit_success:.0%}",
            ", ".join(f"{colour} {views}" for colour, views in Counter(m.object_colours.values()).most_common()),
            f"{m.hue_spread:.1f}",
            number(m.edit_precision, ".2f"),
            number(m.edit_recall, ".2f"),
        ]
        cells += [f"{clip[label][name]:.3f}" for name in clip_columns] if clip else []
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metrics_json(rows: dict[str, SceneMetrics]) -> dict[str, dict[str, float | None]]:
    def finite(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {label: {k: finite(v) for k, v in asdict(m).items()} for label, m in rows.items()}


@dataclass(frozen=True)
class ChainEditMetrics:
    instruction: str
    object_name: str
    edit_success: float
    """Share of views whose object has this edit's requested colour (strict, as ``SceneMetrics.edit_success``)."""
    object_colours: dict[str, str]


@dataclass(frozen=True)
class ChainMetrics:
    """A chain of edits judged on one run's renders: each edit's object by its own instruction."""

    edits: list[ChainEditMetrics]
    psnr_outside_all_vs_before: float | None
    """dB, outside every edited object, against the render before the last edit (None without one)."""


def measure_chain(
    truths: Sequence[SceneTruth], renders: dict[str, RenderedView], before: dict[str, RenderedView] | None = None
) -> ChainMetrics:
    """Each edit of a chain (``truths``, oldest first, on the same held-out views) on the run's ``renders``."""
    edits = []
    for truth in truths:
        colours = object_colours(truth, renders)
        success = statistics.fmean(colour == truth.edit.target_colour for colour in colours.values())
        edits.append(ChainEditMetrics(truth.instruction, truth.object_name, success, colours))
    kept = None
    if before is not None:
        values = []
        for position, view in enumerate(truths[-1].views):
            outside = ~torch.stack([truth.views[position].object_mask for truth in truths]).any(dim=0)
            values.append(min(psnr(renders[view.name].rgb, before[view.name].rgb, outside), 100.0))
        kept = statistics.fmean(values)
    return ChainMetrics(edits, kept)


def chain_table(rows: dict[str, ChainMetrics]) -> str:
    """A markdown table: per run, each edit's success and the PSNR outside all edited objects."""
    instructions = [edit.instruction for edit in next(iter(rows.values())).edits]
    lines = [
        "| run | " + " | ".join(f"{text!r} success" for text in instructions) + " | PSNR outside all vs before (dB) |",
        "|---" * (2 + len(instructions)) + "|",
    ]
    for label, chain in rows.items():
        kept = "n/a" if chain.psnr_outside_all_vs_before is None else f"{chain.psnr_outside_all_vs_before:.2f}"
        lines.append(f"| {label} | " + " | ".join(f"{edit.edit_success:.0%}" for edit in chain.edits) + f" | {kept} |")
    return "\n".join(lines)
