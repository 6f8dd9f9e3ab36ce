"""Edit pairs from labelled action segments of videos: (first frame, last frame, instruction).

This is how EditAction built its LC (MPII-Cooking) and HC (EPIC-Kitchens) sets. The
annotation file is a CSV with the columns ``video,start,end,instruction``; times are in
seconds (or frame indices with ``unit="frames"``), video paths relative to the video folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2

from editaction.atomic import atomic_directory
from editaction.images import write_image
from editaction.train.dataset import EDITED_KEY, INPUT_KEY, PROMPT_KEY, DatasetError, write_metadata

REQUIRED_COLUMNS = ("video", "start", "end", "instruction")


@dataclass
class ExtractionReport:
    written: int = 0
    skipped: list[str] = field(default_factory=list)
    """One line per rejected annotation row: its line number and why."""


class _Video:
    """Random access to frames of one video, opened once."""

    def __init__(self, path: Path):
        self.capture = cv2.VideoCapture(str(path))
        if not path.is_file() or not self.capture.isOpened():
            raise ValueError(f"cannot open video {path}")
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 0.0
        self.frames = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if self.frames <= 0:
            raise ValueError(f"video {path} has no frames")

    def frame(self, index: int):
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = self.capture.read()
        if not ok:
            raise ValueError(f"cannot decode frame {index}")
        return bgr[..., ::-1]


def _frame_index(value: str, unit: str, fps: float) -> int:
    number = float(value)
    if unit == "frames":
        return int(number)
    if fps <= 0:
        raise ValueError("video has no frame rate; use unit=frames")
    return round(number * fps)


def extract_action_pairs(
    videos: Path, annotations: Path, out: Path, unit: Literal["seconds", "frames"] = "seconds", overwrite: bool = False
) -> ExtractionReport:
    """Write ``out/inputs``, ``out/edited`` and ``out/metadata.jsonl``; bad rows are reported and skipped."""
    if not annotations.is_file():
        raise DatasetError(f"annotation file not found: {annotations}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} is not empty (pass --overwrite to replace it)")
    with annotations.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{annotations}: missing column(s) {', '.join(missing)}")
        rows = list(reader)

    report, records, opened = ExtractionReport(), [], {}
    with atomic_directory(out) as staging:
        for line, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                name = row["video"]
                if name not in opened:
                    try:
                        opened[name] = _Video(videos / name)
                    except ValueError as err:
                        opened[name] = err
                video = opened[name]
                if isinstance(video, Exception):
                    raise video
                first, last = (_frame_index(row[key], unit, video.fps) for key in ("start", "end"))
                if not 0 <= first < last < video.frames:
                    raise ValueError(f"segment frames {first}-{last} outside the video's 0-{video.frames - 1}")
                instruction = (row["instruction"] or "").strip()
                if not instruction:
                    raise ValueError("empty instruction")
                stem = f"{len(records):06d}"
                write_image(staging / "inputs" / f"{stem}.png", video.frame(first))
                write_image(staging / "edited" / f"{stem}.png", video.frame(last))
            except (ValueError, TypeError) as err:
                report.skipped.append(f"{annotations}:{line}: {err}")
                continue
            records.append({INPUT_KEY: f"inputs/{stem}.png", EDITED_KEY: f"edited/{stem}.png", PROMPT_KEY: instruction})
        if not records:
            raise DatasetError(f"no usable segment in {annotations} ({len(report.skipped)} skipped)")
        write_metadata(staging, records)
    report.written = len(records)
    return report
