"""The embedded toy world: synthetic images, videos and 3D scenes that run on a CPU and can be measured."""

from editaction.toyworld.palette import COLOURS
from editaction.toyworld.scene import SceneObject, SceneSpec, write_scene

__all__ = ["COLOURS", "SceneObject", "SceneSpec", "write_scene"]
