"""Relevance-guided image editing with InstructPix2Pix-family models, and EditAction fine-tuning."""

from editaction.config import EditConfig, RelevanceConfig
from editaction.editor import Editor, EditorLoadError, EditResult
from editaction.images import ImageReadError, LoadedImage, read_image, relevance_to_rgb, to_array, write_image

DEFAULT_MODEL = "timbrooks/instruct-pix2pix"
"""The published InstructPix2Pix weights (Brooks et al. 2023)."""

__all__ = [
    "DEFAULT_MODEL",
    "EditConfig",
    "EditResult",
    "Editor",
    "EditorLoadError",
    "ImageReadError",
    "LoadedImage",
    "RelevanceConfig",
    "read_image",
    "relevance_to_rgb",
    "to_array",
    "write_image",
]
