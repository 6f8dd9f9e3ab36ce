"""Build an edit-pair data set from videos and labelled action segments.

    python scripts/extract_action_pairs.py --videos videos/ --annotations segments.csv --out data/actions

``segments.csv`` has the columns ``video,start,end,instruction`` (seconds, or frame
indices with ``--unit frames``). Each segment gives one pair: its first frame as the
input, its last frame as the edited image. Rows that cannot be used are listed and skipped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from editaction.train.action_pairs import extract_action_pairs
from editaction.train.dataset import DatasetError


@dataclass
class ExtractArgs:
    videos: Path
    """Folder the annotation's video paths are relative to."""
    annotations: Path
    """CSV with columns video,start,end,instruction."""
    out: Path
    """Data set folder to create (images + metadata.jsonl)."""
    unit: Literal["seconds", "frames"] = "seconds"
    overwrite: bool = False


def main() -> int:
    args = tyro.cli(ExtractArgs, description=__doc__)
    try:
        report = extract_action_pairs(args.videos, args.annotations, args.out, args.unit, args.overwrite)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(f"wrote {report.written} pairs to {args.out} ({len(report.skipped)} rows skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
