"""An edit run's state on disk: its chain of instructions, starting images, edited views and relevance targets.

Layout under a run's directory::

    edits/run.json                        the data folder, the chain of edits (instruction and run of each, this
                                          run's last) and the edit turns taken
    edits/start/00012.png                 view 12 as this run started it, where that is not the photo (a run
                                          that builds on an earlier edit starts from that edit's views)
    edits/views/00012.png                 view 12 as last edited
    edits/relevance_targets.safetensors   the 2D relevance targets (N, H, W, 1), uint8, written after the warm-up

Images are what the training buffers hold: 8 bits a channel, written losslessly, so a restored view is bit for
bit the edited one and the store takes at most 4 bytes a training pixel. A run keeps everything it needs: the run
it started from may be moved or deleted afterwards. Files are written under a temporary name and renamed; files
a resumed run takes over unchanged are hard-linked, not copied, where the file system allows.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from jaxtyping import UInt8
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from editaction.atomic import atomic_path, write_text_atomic
from editaction.images import write_image
from relevance_nerf.errors import RelevanceEditError

EDITS_DIR = "edits"
RECORD = "run.json"
TARGETS = "relevance_targets.safetensors"


@dataclass(frozen=True)
class ChainLink:
    instruction: str
    run: str
    """The run directory that made this edit."""


@dataclass
class RunRecord:
    """``edits/run.json``: what the run edits, on which data, after which earlier edits."""

    data: str
    """The data folder the run trains on (resolved)."""
    chain: list[ChainLink]
    """The edits so far, oldest first; the last is this run's."""
    edits_done: int = 0
    """Edit turns taken, so a resumed run continues the view order."""

    @property
    def instruction(self) -> str:
        return self.chain[-1].instruction

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        return cls(data["data"], [ChainLink(**link) for link in data["chain"]], int(data.get("edits_done", 0)))


def _view_name(index: int) -> str:
    return f"{index:05d}.png"


def _read_pixels(path: Path) -> UInt8[Tensor, "h w 3"]:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[-1] != 3:
        raise RelevanceEditError(f"{path} is not an 8-bit RGB image written by relevance-edit")
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1]))


def _take_over(source: Path, target: Path) -> None:
    """``target`` becomes ``source``'s content: a hard link where possible, else a copy (both atomic)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


@dataclass
class EditStore:
    """Reads and writes one run's edit state under ``run_dir / "edits"``."""

    run_dir: Path
    directory: Path = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.directory = self.run_dir / EDITS_DIR

    # ---- queries ------------------------------------------------------------------------------

    def record(self) -> RunRecord | None:
        """The run's record; None when the run holds no edit state (a nerfacto run, for one)."""
        path = self.directory / RECORD
        if not path.is_file():
            if self.directory.is_dir() and any(self.directory.iterdir()):
                raise RelevanceEditError(
                    f"{self.run_dir} was written by an older relevance-edit (no {EDITS_DIR}/{RECORD}): "
                    "start from the nerfacto run it started from"
                )
            return None
        try:
            return RunRecord.from_json(path.read_text())
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise RelevanceEditError(f"{path} is not a relevance-edit run record: {err}") from None

    def view_indices(self) -> list[int]:
        """The views this run has edited."""
        return self._indices("views")

    def start_indices(self) -> list[int]:
        """The views this run started from an earlier edit (the others started as the photos)."""
        return self._indices("start")

    def _indices(self, folder: str) -> list[int]:
        return sorted(int(path.stem) for path in (self.directory / folder).glob("*.png"))

    def view(self, index: int) -> UInt8[Tensor, "h w 3"]:
        """View ``index`` as last edited."""
        return _read_pixels(self.directory / "views" / _view_name(index))

    def start_image(self, index: int) -> UInt8[Tensor, "h w 3"]:
        """View ``index`` as this run started it (only for ``start_indices``)."""
        return _read_pixels(self.directory / "start" / _view_name(index))

    def relevance_targets(self) -> UInt8[Tensor, "n h w 1"] | None:
        path = self.directory / TARGETS
        if not path.is_file():
            return None
        with safe_open(path, framework="pt") as handle:
            return handle.get_tensor("relevance")

    # ---- writes -------------------------------------------------------------------------------

    def write_record(self, record: RunRecord) -> None:
        write_text_atomic(self.directory / RECORD, record.to_json())

    def save_view(self, index: int, pixels: UInt8[Tensor, "h w 3"]) -> None:
        write_image(self.directory / "views" / _view_name(index), pixels.cpu().numpy())

    def save_start_image(self, index: int, pixels: UInt8[Tensor, "h w 3"]) -> None:
        write_image(self.directory / "start" / _view_name(index), pixels.cpu().numpy())

    def save_relevance_targets(self, targets: UInt8[Tensor, "n h w 1"]) -> None:
        with atomic_path(self.directory / TARGETS) as tmp:
            save_file({"relevance": targets.detach().cpu().contiguous()}, tmp)

    def clear_edits(self) -> None:
        """Forget the edited views and relevance targets (a new instruction replaced the run's edit)."""
        shutil.rmtree(self.directory / "views", ignore_errors=True)
        (self.directory / TARGETS).unlink(missing_ok=True)

    def take_over(self, earlier: EditStore, starts: bool, views: bool, targets: bool) -> None:
        """Hold ``earlier``'s starting images, edited views and relevance targets as this run's own."""
        chosen = [name for name, wanted in (("start", starts), ("views", views)) if wanted]
        for folder in chosen:
            for path in sorted((earlier.directory / folder).glob("*.png")):
                _take_over(path, self.directory / folder / path.name)
        if targets and (earlier.directory / TARGETS).is_file():
            _take_over(earlier.directory / TARGETS, self.directory / TARGETS)
