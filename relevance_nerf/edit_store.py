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

import numpy as np
from jaxtyping import Float
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from editaction.atomic import atomic_path
from editaction.images import write_image

EDITS_DIR = "edits"


@dataclass
class RestoredEdits:
    relevance_targets: Float[Tensor, "n h w 1"] | None = None
    views: dict[int, tuple[Float[Tensor, "h w 3"], Float[Tensor, "h w 1"]]] = field(default_factory=dict)
    edits_done: int = 0
    """Edits the earlier run had made, so the resumed run continues its view order."""


def _save_atomic(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


def _load(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    with safe_open(path, framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}


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
        self, index: int, image: Float[Tensor, "h w 3"], relevance: Float[Tensor, "h w 1"], edits_done: int
    ) -> None:
        """Save view ``index`` as it is after the run's ``edits_done``-th edit."""
        views = self.directory / "views"
        metadata = {**self._metadata(), "edits_done": str(edits_done)}
        _save_atomic({"image": image, "relevance": relevance}, views / f"{index:05d}.safetensors", metadata)
        rgb = np.rint(image.detach().float().clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
        write_image(views / f"{index:05d}.png", rgb)

    def load(self) -> RestoredEdits:
        """What an earlier run saved for the same instruction (files for another instruction are ignored)."""
        restored = RestoredEdits()
        targets_path = self.directory / "relevance_targets.safetensors"
        if targets_path.is_file():
            tensors, metadata = _load(targets_path)
            if metadata.get("instruction") == self.instruction:
                restored.relevance_targets = tensors["relevance"]
        for path in sorted((self.directory / "views").glob("*.safetensors")):
            tensors, metadata = _load(path)
            if metadata.get("instruction") == self.instruction:
                restored.views[int(path.stem)] = (tensors["image"], tensors["relevance"])
                restored.edits_done = max(restored.edits_done, int(metadata.get("edits_done", 0)))
        return restored

    def saved_instructions(self) -> set[str]:
        """Instructions of everything stored here (to tell a user why nothing was restored)."""
        found = set()
        for path in [
            self.directory / "relevance_targets.safetensors",
            *(self.directory / "views").glob("*.safetensors"),
        ]:
            if path.is_file():
                found.add(_load(path)[1].get("instruction", ""))
        return found
