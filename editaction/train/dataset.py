"""Edit-pair data sets: a folder of images with a ``metadata.jsonl``.

One JSON record per line, paths relative to the folder::

    {"input_image_file_name": "inputs/000001.png",
     "edited_image_file_name": "edited/000001.png",
     "edit_prompt": "open the drawer"}

These are the column names of the InstructPix2Pix data sets (``input_image``,
``edited_image``, ``edit_prompt``) in the Hugging Face ``imagefolder`` convention for
several images per row (``<column>_file_name``), so the folder loads with
``datasets.load_dataset("imagefolder", data_dir=...)`` as well as here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from editaction.atomic import write_text_atomic
from editaction.images import ImageReadError, read_image

METADATA_FILE = "metadata.jsonl"
INPUT_KEY, EDITED_KEY, PROMPT_KEY = "input_image_file_name", "edited_image_file_name", "edit_prompt"


class DatasetError(ValueError):
    """The data set folder or one of its records is unusable."""


@dataclass(frozen=True)
class EditPair:
    input_image: Path
    edited_image: Path
    instruction: str


def _numbered_records(root: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-empty line of ``root/metadata.jsonl``."""
    path = root / METADATA_FILE
    if not path.is_file():
        raise DatasetError(f"no {METADATA_FILE} in {root}")
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}:{number}: bad record (JSONDecodeError: {err})") from None


def read_records(root: str | os.PathLike) -> list[dict]:
    """The raw records, extra keys included (the toy pairs add masks and evaluation labels)."""
    return [record for _, record in _numbered_records(Path(root))]


def read_metadata(root: str | os.PathLike) -> list[EditPair]:
    """Parse ``metadata.jsonl``; every record must name two existing images and a non-empty prompt."""
    root = Path(root)
    path = root / METADATA_FILE
    pairs = []
    for number, record in _numbered_records(root):
        try:
            pair = EditPair(root / record[INPUT_KEY], root / record[EDITED_KEY], str(record[PROMPT_KEY]).strip())
        except (KeyError, TypeError) as err:
            raise DatasetError(f"{path}:{number}: bad record ({type(err).__name__}: {err})") from None
        for image in (pair.input_image, pair.edited_image):
            if not image.is_file():
                raise DatasetError(f"{path}:{number}: image not found: {image}")
        if not pair.instruction:
            raise DatasetError(f"{path}:{number}: empty edit_prompt")
        pairs.append(pair)
    if not pairs:
        raise DatasetError(f"{path} has no records")
    return pairs


def write_metadata(root: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Write ``metadata.jsonl`` atomically."""
    target = Path(root) / METADATA_FILE
    write_text_atomic(target, "".join(json.dumps(record) + "\n" for record in records))
    return target


def load_square(path: Path, resolution: int) -> Float[Tensor, "3 r r"]:
    """Resize the shorter side to ``resolution`` and centre-crop (no flips: they would mirror actions)."""
    try:
        image = read_image(path).rgb
    except ImageReadError as err:
        raise DatasetError(str(err)) from None
    height, width = image.shape[-2:]
    scale = resolution / min(height, width)
    size = (max(resolution, round(height * scale)), max(resolution, round(width * scale)))
    image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    return image[:, top : top + resolution, left : left + resolution].clamp(0, 1)


class EditPairDataset(torch.utils.data.Dataset):
    """(input, edited, instruction index) triples at a square training resolution."""

    def __init__(self, root: str | os.PathLike, resolution: int):
        self.pairs = read_metadata(root)
        self.resolution = resolution
        self.instructions = sorted({pair.instruction for pair in self.pairs})
        self._instruction_index = {text: i for i, text in enumerate(self.instructions)}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        pair = self.pairs[index]
        return {
            "input": load_square(pair.input_image, self.resolution),
            "edited": load_square(pair.edited_image, self.resolution),
            "instruction": torch.tensor(self._instruction_index[pair.instruction]),
        }
