"""The embedded toy world: synthetic images, videos and 3D scenes that run on a CPU and can be measured.

Scaffolding for measuring the product, not part of it: ``editaction`` and ``relevance_nerf``
never import it. It holds the toy scenes and 2D pairs, their metrics, the training of the
embedded toy editor (shipped as package data under ``toyworld/models``), test-size
pipelines, the CPU-sized nerfstudio presets and the toy-scene evaluation.
"""

from pathlib import Path

from editaction.config import EditConfig, RelevanceConfig
from toyworld.palette import COLOURS
from toyworld.scene import SceneObject, SceneSpec, write_scene

TOY_EDITOR = str(Path(__file__).resolve().parent / "models" / "toy-editor")
"""The embedded toy editor trained by scripts/train_toy_editor.py: the offline default of the CLI and demos."""
TOY_ACTION_EDITOR = str(Path(__file__).resolve().parent / "models" / "toy-editor-action")
"""The toy editor after EditAction fine-tuning on move instructions."""
TOY_RELEVANCE = RelevanceConfig(noise_samples=4, iqr_factor=10.0, space="pixel")
"""Relevance settings for the toy editor, chosen on a validation split (seed 999, 120 pairs, threshold 0.5):
an object spans a few of the 16x16 latent cells, so maps compared in pixel space fit its outline better
(IoU 0.57 against 0.42 for the best latent-space setting), and it covers a few percent of the view, so
WYS's clamp at Q3 + 1.5 IQR would cut into the object itself; 4 noise draws lower the small model's variance."""

TOY_EDIT = EditConfig(steps=20, text_guidance=7.5, image_guidance=1.5)
"""Edit settings for the toy editor: 20 DDIM steps (IN2N's), IP2P's guidance 7.5 / 1.5 (on the validation split the
shipped editor did best at 1.5 / 1.0, 42% against 27% of 60 pairs: to be set from validation after its retrain)."""

__all__ = [
    "COLOURS",
    "TOY_ACTION_EDITOR",
    "TOY_EDIT",
    "TOY_EDITOR",
    "TOY_RELEVANCE",
    "SceneObject",
    "SceneSpec",
    "write_scene",
]
