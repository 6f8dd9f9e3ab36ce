"""An editor checkpoint's recommended settings, kept beside its weights in ``edit_settings.json``.

An editor is tuned at some guidance, step count and relevance clamp; a fine-tune may need other values than the
published InstructPix2Pix ones. As diffusers keeps a scheduler's config beside the UNet, the checkpoint folder
carries these settings, and every user of the editor (``Editor``, ``scripts/edit_image.py``, the 3D presets)
takes them as defaults that explicit options override. A checkpoint without the file gets the published
InstructPix2Pix / Watch Your Steps defaults.

The file holds the settings that belong to a model, for images and for scenes::

    {"image": {"edit": {"steps": 20, "text_guidance": 1.25, "image_guidance": 1.0},
               "relevance": {"noise_samples": 4, "iqr_factor": 10.0, "space": "pixel"}},
     "scene": {"edit": {"steps": 10}, "relevance": {...}, "strength_range": [1.0, 1.0]}}

Keys left out take the published defaults. Where and whether to edit (the mask threshold, cropping) are
choices of the run, not of the model: the file does not hold them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from editaction.config import EditConfig, EditSchedule, RelevanceConfig, RelevanceSpace

SETTINGS_FILE = "edit_settings.json"
MODEL_EDIT_KEYS = ("steps", "text_guidance", "image_guidance", "schedule")
"""The edit settings a checkpoint may recommend; the rest are the run's choice."""
MODEL_RELEVANCE_KEYS = tuple(f.name for f in dataclasses.fields(RelevanceConfig))


class SettingsError(ValueError):
    """An ``edit_settings.json`` that cannot be used; the message names the file and the problem."""


def _check_strength_range(strength_range: tuple[float, float]) -> None:
    low, high = strength_range
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"strength_range must satisfy 0 < low <= high <= 1, got {tuple(strength_range)}")


@dataclass(frozen=True)
class ImageSettings:
    """Settings for editing single images (InstructPix2Pix and Watch Your Steps 2D by default)."""

    edit: EditConfig = EditConfig()
    relevance: RelevanceConfig = RelevanceConfig()


@dataclass(frozen=True)
class SceneSettings:
    """Settings for the edits of a 3D scene's training views (Instruct-NeRF2NeRF and Watch Your Steps 3D)."""

    edit: EditConfig = EditConfig(steps=20)
    relevance: RelevanceConfig = RelevanceConfig(iqr_factor=2.0)
    strength_range: tuple[float, float] = (0.02, 0.98)
    """Each edit starts from the render noised to a random fraction of the schedule in this range (IN2N)."""

    def __post_init__(self) -> None:
        _check_strength_range(self.strength_range)


@dataclass(frozen=True)
class EditorSettings:
    """What an editor checkpoint recommends; ``EditorSettings()`` is the published defaults."""

    image: ImageSettings = field(default_factory=ImageSettings)
    scene: SceneSettings = field(default_factory=SceneSettings)

    def to_json(self) -> dict[str, Any]:
        def section(settings: ImageSettings | SceneSettings) -> dict[str, Any]:
            edit = {key: getattr(settings.edit, key) for key in MODEL_EDIT_KEYS}
            return {"edit": edit, "relevance": dataclasses.asdict(settings.relevance)}

        return {
            "image": section(self.image),
            "scene": {**section(self.scene), "strength_range": self.scene.strength_range},
        }

    @classmethod
    def from_json(cls, data: Any) -> EditorSettings:
        """Settings from the file's parsed JSON; ``ValueError`` names the first unknown key or invalid value."""
        _check_keys(data, ("image", "scene"), "")
        image, scene = data.get("image", {}), data.get("scene", {})
        _check_keys(image, ("edit", "relevance"), "image.")
        _check_keys(scene, ("edit", "relevance", "strength_range"), "scene.")
        published = cls()
        return cls(
            image=ImageSettings(
                edit=_edit(image.get("edit", {}), published.image.edit, "image.edit."),
                relevance=_relevance(image.get("relevance", {}), published.image.relevance, "image.relevance."),
            ),
            scene=SceneSettings(
                edit=_edit(scene.get("edit", {}), published.scene.edit, "scene.edit."),
                relevance=_relevance(scene.get("relevance", {}), published.scene.relevance, "scene.relevance."),
                strength_range=tuple(scene.get("strength_range", published.scene.strength_range)),
            ),
        )

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / SETTINGS_FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def _check_keys(data: Any, allowed: tuple[str, ...], prefix: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'the file'} must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"unknown setting {prefix}{unknown[0]} (known: {', '.join(allowed)})")


def _edit(data: Any, base: EditConfig, prefix: str) -> EditConfig:
    _check_keys(data, MODEL_EDIT_KEYS, prefix)
    return dataclasses.replace(base, **data)


def _relevance(data: Any, base: RelevanceConfig, prefix: str) -> RelevanceConfig:
    _check_keys(data, MODEL_RELEVANCE_KEYS, prefix)
    return dataclasses.replace(base, **data)


def _settings_file(model: str | os.PathLike) -> Path | None:
    """The checkpoint's settings file: in its folder, or for a hub id in the local cache, else downloaded."""
    path = Path(model)
    if path.is_dir():
        return path / SETTINGS_FILE if (path / SETTINGS_FILE).is_file() else None
    try:
        cached = huggingface_hub.try_to_load_from_cache(str(model), SETTINGS_FILE)
    except ValueError:
        return None  # not a hub id either: loading the editor names the problem
    if isinstance(cached, str):
        return Path(cached)
    if cached is not None or huggingface_hub.constants.HF_HUB_OFFLINE:  # known to be absent, or cannot ask
        return None
    try:
        return Path(huggingface_hub.hf_hub_download(str(model), SETTINGS_FILE))
    except (EntryNotFoundError, HfHubHTTPError, OSError):
        return None  # no file on the hub (or no hub): the published defaults; loading the weights reports the rest


def load_settings(model: str | os.PathLike) -> EditorSettings:
    """The recommended settings of editor ``model`` (a folder or hub id); the published ones without a file."""
    path = _settings_file(model)
    if path is None:
        return EditorSettings()
    try:
        return EditorSettings.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError, TypeError) as err:
        raise SettingsError(f"{path}: {err}") from None


@dataclass(frozen=True)
class EditOptions:
    """Edit options of a run: each model setting left at None takes the editor's recommendation.

    ``threshold`` and ``crop_margin`` are the run's own choice (where to edit), with the published defaults.
    """

    steps: int | None = None
    """DDIM denoising steps. None: the editor's recommendation (published: 100 for images, 20 for scenes)."""
    text_guidance: float | None = None
    """Classifier-free guidance on the instruction. None: the editor's recommendation (published: 7.5)."""
    image_guidance: float | None = None
    """Classifier-free guidance on the input image. None: the editor's recommendation (published: 1.5)."""
    schedule: EditSchedule | None = None
    """How a strength below 1 runs: "truncate" (img2img) or "spread" (IN2N). None: the editor's recommendation."""
    threshold: float = EditConfig.threshold
    """Relevance at or above this is edited (WYS: 0.5). 0 edits everywhere: plain InstructPix2Pix."""
    crop_margin: float | None = EditConfig.crop_margin
    """Edit only the box around the relevant region, widened on each side by this fraction of its longer side.
    None: the whole view."""

    def resolve(self, recommended: EditConfig) -> EditConfig:
        """The edit settings to run: these options over ``recommended``."""
        chosen = {key: getattr(self, key) for key in MODEL_EDIT_KEYS if getattr(self, key) is not None}
        return dataclasses.replace(recommended, threshold=self.threshold, crop_margin=self.crop_margin, **chosen)


@dataclass(frozen=True)
class RelevanceOptions:
    """Relevance options of a run: each left at None takes the editor's recommendation."""

    timestep_fraction: float | None = None
    """Noise level of the probe, a fraction of the training timesteps. None: the editor's (published: 0.8)."""
    noise_samples: int | None = None
    """Noise draws averaged per map. None: the editor's recommendation (published: 1)."""
    iqr_factor: float | None = None
    """Upper outliers are clamped at Q3 + k * IQR. None: the editor's (published: 1.5 for images, 2 for scenes)."""
    space: RelevanceSpace | None = None
    """latent (WYS) or pixel (sharper for objects a few latent cells wide). None: the editor's recommendation."""

    def resolve(self, recommended: RelevanceConfig) -> RelevanceConfig:
        chosen = {key: getattr(self, key) for key in MODEL_RELEVANCE_KEYS if getattr(self, key) is not None}
        return dataclasses.replace(recommended, **chosen)
