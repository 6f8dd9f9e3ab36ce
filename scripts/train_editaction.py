"""Fine-tune an InstructPix2Pix checkpoint with the EditAction loss.

    python scripts/train_editaction.py --config configs/editaction_cpu_smoke.yaml
    python scripts/train_editaction.py --config configs/editaction_paper.yaml --model timbrooks/instruct-pix2pix \
        --data-dir data/mpii_actions --output-dir outputs/editaction-lc
    accelerate launch --config_file configs/accelerate_multi_gpu.yaml scripts/train_editaction.py --config ...

Any setting of the preset can be overridden on the command line (``--help`` lists them).
``--resume latest`` continues the run in ``--output-dir`` exactly where it stopped. The
result, ``<output-dir>/final``, is a diffusers checkpoint for ``--model`` of the 2D CLI
and of ``ns-train relevance-edit``.
"""

from __future__ import annotations

import argparse
import sys

import tyro

from editaction.editor import EditorLoadError
from editaction.train.config import TrainConfig, load_config
from editaction.train.dataset import DatasetError
from editaction.train.negatives import NoNegativeError
from editaction.train.trainer import TrainingSetupError, train


def parse_args(argv: list[str]) -> TrainConfig:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, rest = pre.parse_known_args(argv)
    default = load_config(known.config) if known.config else TrainConfig()
    return tyro.cli(TrainConfig, default=default, args=rest, description=__doc__)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError as err:  # a bad preset or setting
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        final = train(config)
    except (EditorLoadError, DatasetError, NoNegativeError, TrainingSetupError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
