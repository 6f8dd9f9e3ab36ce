"""Relevance-guided image editing with InstructPix2Pix-family models, and EditAction fine-tuning."""

from editaction.config import EditConfig, RelevanceConfig
from editaction.editor import Editor, EditorLoadError, EditResult, check_editor_source
from editaction.images import ImageReadError, LoadedImage, read_image, relevance_to_rgb, to_array, write_image
from editaction.quiet import quiet_upstream_warnings

quiet_upstream_warnings()  # every project entry point imports editaction before nerfstudio

INSTRUCT_PIX2PIX = "timbrooks/instruct-pix2pix"
"""The published InstructPix2Pix weights (Brooks et al. 2023), for real photos and scenes (GPU)."""
__all__ = [
    "INSTRUCT_PIX2PIX",
    "check_editor_source",
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
