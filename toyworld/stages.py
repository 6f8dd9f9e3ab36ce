"""Resumable stages of the end-to-end demos (``make demo``, ``make capture-demo``): ns-train runs and a settings record.

Each stage is a command a user can run alone; a demo runs them in order and, run again,
skips the finished ones and continues a stage cut short from its last checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from editaction.atomic import write_text_atomic
from editaction.quiet import environment
from relevance_nerf.checkpoints import latest_step

NS_TRAIN = str(Path(sys.executable).parent / "ns-train")
RUN_NAME = "run"
CONSOLE = Console()
QUIET = environment()
"""The environment of the stages' child processes: ``ns-train`` prints upstream deprecation notes before it loads
the plugin that would silence them."""


class DemoError(RuntimeError):
    pass


def train_until(
    label: str,
    method: str,
    run: Path,
    final_step: int,
    start: Path | None,
    extra: list[str],
    data: Path,
    device: str,
    dataparser: list[str] = (),
) -> None:
    """Run ``ns-train`` until ``run`` holds the checkpoint of ``final_step``; continue a run cut short.

    ``dataparser``: options of nerfstudio-data after ``--data`` (e.g. ``--downscale-factor 4``).
    """
    models = run / "nerfstudio_models"
    latest = latest_step(models)
    if latest == final_step:
        CONSOLE.print(f"[green]{label}: done earlier ({run}), skipped")
        return
    if latest is not None and latest > final_step:
        raise DemoError(f"{run} is already past step {final_step}: it is another run; use another --out")
    if latest is not None:
        CONSOLE.print(f"{label}: continuing from step {latest}")
        start = models
    first = 0 if start is None else latest_step(start) + 1
    command = [
        NS_TRAIN, method, "--vis", "tensorboard", "--output-dir", str(run.parents[2]),
        "--experiment-name", run.parents[1].name, "--timestamp", run.name,
        "--max-num-iterations", str(final_step + 1 - first), "--machine.device-type", device, *extra,
    ]  # fmt: skip
    if start is not None:
        command += ["--load-dir", str(start)]
    command += ["nerfstudio-data", "--data", str(data), *dataparser]
    returncode = subprocess.run(command, env=QUIET).returncode
    reached = latest_step(models)
    if returncode != 0 or reached != final_step:  # ns-train exits 0 when interrupted
        where = "no checkpoint" if reached is None else f"step {reached} of {final_step}"
        raise DemoError(f"{label} stopped ({where}; ns-train {method}); run the demo again to continue it")


def check_folder(out: Path, settings: dict, record_name: str = "demo.json") -> None:
    """Record a demo's settings in ``out``; refuse a folder that holds a demo with other settings."""
    record = out / record_name
    if record.is_file():
        earlier = json.loads(record.read_text())
        if earlier != settings:
            changed = ", ".join(f"{k}: {earlier.get(k)!r} -> {v!r}" for k, v in settings.items() if earlier.get(k) != v)
            raise DemoError(f"{out} holds a demo with other settings ({changed}); choose another --out")
    write_text_atomic(record, json.dumps(settings, indent=2) + "\n")
