"""Edited views and relevance targets on disk, so a resumed run loses no edit work.

Layout under a run's directory::

    edits/relevance_targets.safetensors   all 2D relevance targets (N, H, W, 1), written after the warm-up
    edits/views/00012.safetensors         view 12 as last edited: "image" (H, W, 3), "relevance" (H, W, 1)
    edits/views/00012.png                 the same image, for people

Every file is written to a temporary name and renamed, and carries the instruction in
its metadata: a run resumed with another instruction starts again from the originals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jaxtyping import Float
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from editaction.atomic import atomic_path
from editaction.images import to_array, write_image

EDITS_DIR = "edits"


@dataclass
class RestoredEdits:
    relevance_targets: Float[Tensor, "n h w 1"] | None = None
    views: dict[int, tuple[Float[Tensor, "h w 3"], Float[Tensor, "h w 1"] | None]] = field(default_factory=dict)
    """Each view's image and relevance target (None: the run had no relevance, threshold 0)."""
    edits_done: int = 0
    """Edits the earlier run had made, so the resumed run continues its view order."""
    other_instructions: set[str] = field(default_factory=set)
    """Instructions of files that were skipped (to tell a user why nothing was restored)."""


def _save_atomic(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


def _load(path: Path, instruction: str) -> tuple[dict[str, Tensor] | None, dict[str, str]]:
    """The file's metadata, and its tensors only when it was saved for ``instruction``."""
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("instruction") != instruction:
            return None, metadata
        return {key: handle.get_tensor(key) for key in handle.keys()}, metadata


class EditStore:
    """Reads and writes one run's edit state under ``run_dir / "edits"``."""

    def __init__(self, run_dir: Path, instruction: str):
        self.directory = Path(run_dir) / EDITS_DIR
        self.instruction = instruction

    def _metadata(self) -> dict[str, str]:
        return {"instruction": self.instruction}

    def save_relevance_targets(self, targets: Float[Tensor, "n h w 1"]) -> None:
        _save_atomic({"relevance": targets}, self.directory / "relevance_targets.safetensors", self._metadata())

    def save_view(
        self, index: int, image: Float[Tensor, "h w 3"], relevance: Float[Tensor, "h w 1"] | None, edits_done: int
    ) -> None:
        """Save view ``index`` as it is after the run's ``edits_done``-th edit (``relevance`` None: it has none)."""
        views = self.directory / "views"
        metadata = {**self._metadata(), "edits_done": str(edits_done)}
        tensors = {"image": image} if relevance is None else {"image": image, "relevance": relevance}
        _save_atomic(tensors, views / f"{index:05d}.safetensors", metadata)
        write_image(views / f"{index:05d}.png", to_array(image.permute(2, 0, 1)))

    def load(self) -> RestoredEdits:
        """What an earlier run saved for the same instruction (files for another instruction are skipped)."""
        restored = RestoredEdits()
        targets_path = self.directory / "relevance_targets.safetensors"
        if targets_path.is_file():
            tensors, metadata = _load(targets_path, self.instruction)
            if tensors is None:
                restored.other_instructions.add(metadata.get("instruction", ""))
            else:
                restored.relevance_targets = tensors["relevance"]
        for path in sorted((self.directory / "views").glob("*.safetensors")):
            tensors, metadata = _load(path, self.instruction)
            if tensors is None:
                restored.other_instructions.add(metadata.get("instruction", ""))
                continue
            restored.views[int(path.stem)] = (tensors["image"], tensors.get("relevance"))
            restored.edits_done = max(restored.edits_done, int(metadata.get("edits_done", 0)))
        return restored
