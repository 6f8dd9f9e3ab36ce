"""The embedded toy world: synthetic images, videos and 3D scenes that run on a CPU and can be measured.

Scaffolding for measuring the product, not part of it: ``editaction`` and ``relevance_nerf``
never import it. It holds the toy scenes and 2D pairs, their metrics, the training of the
embedded toy editor (shipped as package data under ``toyworld/models``), test-size
pipelines, the CPU-sized nerfstudio presets and the toy-scene evaluation.
"""

import dataclasses
from pathlib import Path

from editaction.config import EditConfig, RelevanceConfig
from editaction.settings import EditorSettings, ImageSettings, SceneSettings
from toyworld.palette import COLOURS
from toyworld.scene import SceneObject, SceneSpec, write_scene

TOY_EDITOR = str(Path(__file__).resolve().parent / "models" / "toy-editor")
"""The embedded toy editor trained by scripts/train_toy_editor.py: the offline default of the CLI and demos."""
TOY_ACTION_EDITOR = str(Path(__file__).resolve().parent / "models" / "toy-editor-action")
"""The toy editor after EditAction fine-tuning on move instructions."""
TOY_CAPTURE_EDITOR = str(Path(__file__).resolve().parent / "models" / "toy-editor-capture")
"""The toy editor fine-tuned on capture-world photos as well (``toyworld.capture_pairs``): the capture demo's."""
TOY_RELEVANCE = RelevanceConfig(noise_samples=4, iqr_factor=10.0, space="pixel")
"""Relevance settings for the toy editor, chosen on the validation pairs: an object spans a few of the 16x16 latent
cells, so maps compared in pixel space fit its outline better; it covers a few percent of the view, so WYS's clamp at
Q3 + 1.5 IQR would cut into the object itself; 4 noise draws lower the small model's variance."""

TOY_EDIT = EditConfig(steps=20, text_guidance=1.25, image_guidance=1.0)
"""Edit settings for the toy editor, chosen on the validation pairs: almost no classifier-free guidance. The small
model knows the target colour; stronger text guidance extrapolates past it (green turns blue or yellow) and stronger
image guidance keeps the source colour."""

TOY_SETTINGS = EditorSettings(
    image=ImageSettings(edit=TOY_EDIT, relevance=TOY_RELEVANCE),
    scene=SceneSettings(
        edit=dataclasses.replace(TOY_EDIT, steps=10), relevance=TOY_RELEVANCE, strength_range=(1.0, 1.0)
    ),
)
"""The toy editors' recommended settings, shipped as their ``edit_settings.json``. In 3D every edit starts from pure
noise (strength 1, as its 2D edits do): a weakly guided edit from a lightly noised render moves the colour only part
of the way and the views average to grey, and from slightly below 1 the source colour left in the latent decides the
edit. 10 DDIM steps converge as 20 do in half the time; 5 do not."""

__all__ = [
    "COLOURS",
    "TOY_ACTION_EDITOR",
    "TOY_CAPTURE_EDITOR",
    "TOY_EDIT",
    "TOY_EDITOR",
    "TOY_RELEVANCE",
    "TOY_SETTINGS",
    "SceneObject",
    "SceneSpec",
    "write_scene",
]
