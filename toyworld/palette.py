"""The colours of the toy world, shared by its 2D images, videos and 3D scenes."""

from __future__ import annotations

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 30),
    "blue": (30, 70, 220),
    "green": (40, 170, 60),
    "yellow": (230, 200, 40),
}
"""Colour names used in instructions -> 8-bit RGB, far apart so an edit's colour is measurable."""
