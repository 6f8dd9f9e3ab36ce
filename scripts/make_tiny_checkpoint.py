"""Write a tiny random-weight InstructPix2Pix checkpoint (diffusers directory, safetensors).

It has the real architecture classes and the real CLIP tokenizer, so every code path
runs offline; its edits are noise, not meaningful changes. Real users pass
``--model timbrooks/instruct-pix2pix`` (or a fine-tuned checkpoint) instead.

    python scripts/make_tiny_checkpoint.py --out outputs/tiny-ip2p
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tyro

from toyworld.tiny import build_pipeline, save_pipeline


@dataclass
class MakeTinyCheckpointArgs:
    out: Path = Path("outputs/tiny-ip2p")
    """Checkpoint directory to create."""
    seed: int = 0
    """Seed of the random weights."""
    overwrite: bool = False
    """Replace an existing directory."""


def main() -> int:
    args = tyro.cli(MakeTinyCheckpointArgs, description=__doc__)
    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    save_pipeline(build_pipeline(seed=args.seed), staging)
    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
