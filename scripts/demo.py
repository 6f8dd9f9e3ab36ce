"""The whole system end to end: toy scene -> nerfacto -> relevance-edit and the unmasked baseline -> report.

python scripts/demo.py                                   # embedded toy scene and editor (`make demo`)
python scripts/demo.py --text "make the blue ball green" --out outputs/demo-ball
python scripts/demo.py --scene my-toy-scene --editor path/to/ip2p-checkpoint --preset full
python scripts/demo.py --then "make the blue ball yellow" --out outputs/demo-chain   # two edits in a chain

Stages, each a command a user can also run alone: render the scene
(scripts/make_toy_scene.py), train nerfacto, run ``ns-train relevance-edit`` from it, run
Instruct-NeRF2NeRF as published from it (the same preset with the relevance mask disabled,
threshold 0, and IN2N's strength range and guidance: ``INSTRUCT_NERF2NERF_OPTIONS``), then
scripts/evaluate_scene.py renders the held-out views of all three and writes the report
(image strips, orbit GIF, metrics.md / metrics.json). With ``--then``, each further instruction is an edit run
of each method that builds on that method's previous edit, and the report judges the last runs, every edit of
the chain by its own instruction. ``--preset auto`` picks the full presets
on CUDA and the CPU-sized ones otherwise.

Interrupted? Run the same command again: finished stages are skipped and a stage cut
short continues from its last checkpoint. A folder holds one demo: other settings need
another ``--out``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro

from editaction import EditorLoadError, check_editor_source
from editaction.clip_similarity import DEFAULT_CLIP
from editaction.config import EditSchedule
from relevance_nerf.method_configs import INSTRUCT_NERF2NERF_OPTIONS
from toyworld import TOY_EDITOR, SceneSpec, write_scene
from toyworld.stages import CONSOLE, QUIET, RUN_NAME, DemoError, check_folder, train_until

SCRIPTS = Path(__file__).resolve().parent
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Preset:
    nerfacto: str
    edit: str
    nerfacto_iterations: int
    edit_iterations: int


PRESETS = {
    # CPU: nerfacto-tiny converges on the 64 px toy scene in about 1,500 steps; 300 edit steps as relevance-edit-tiny.
    "tiny": Preset("nerfacto-tiny", "relevance-edit-tiny", 1500, 300),
    # GPU: nerfacto's and relevance-edit's published sizes; 4,000 edit steps as Watch Your Steps.
    "full": Preset("nerfacto-offline", "relevance-edit", 5000, 4000),
}


@dataclass
class DemoArgs:
    out: Path = Path("outputs/demo")
    scene: Path | None = None
    """A toy scene (scripts/make_toy_scene.py); default: the embedded one, rendered into OUT/scene."""
    text: str = "make the red cube blue"
    then: tuple[str, ...] = ()
    """Further instructions, each an edit run that builds on the one before (for both methods): a chain of edits,
    judged edit by edit on the last run."""
    editor: str = TOY_EDITOR
    """InstructPix2Pix-family checkpoint (directory or hub id); default: the embedded toy editor."""
    preset: Literal["auto", "tiny", "full"] = "auto"
    """auto: full on CUDA, tiny otherwise."""
    nerfacto_iterations: int | None = None
    """Default: the preset's."""
    edit_iterations: int | None = None
    """Default: the preset's."""
    edit_schedule: EditSchedule | None = None
    """How both edit runs spend their DDIM steps (``--pipeline.edit.schedule``); default: the preset's."""
    seed: int = 0
    clip: str = DEFAULT_CLIP
    """CLIP checkpoint for the CLIP metrics when it is available locally; 'none' skips them."""


def run_demo(args: DemoArgs) -> Path:
    if not args.text.strip():
        raise DemoError('the instruction is empty: pass --text "make the red cube blue"')
    cuda = DEVICE == "cuda"
    preset_name = ("full" if cuda else "tiny") if args.preset == "auto" else args.preset
    preset = PRESETS[preset_name]
    nerfacto_iterations = args.nerfacto_iterations or preset.nerfacto_iterations
    edit_iterations = args.edit_iterations or preset.edit_iterations
    if preset_name == "full" and not cuda:
        CONSOLE.print("[yellow]the full preset without CUDA: expect hours")
    if args.scene is not None and not (args.scene / "transforms.json").is_file():
        raise DemoError(f"no scene at {args.scene}: transforms.json is missing (scripts/make_toy_scene.py makes one)")
    check_editor_source(args.editor)  # before the first training stage, not after it
    scene = (args.scene or args.out / "scene").resolve()
    out = args.out.resolve()
    settings = {
        "scene": str(scene),
        "text": args.text,
        "editor": args.editor,
        "preset": preset_name,
        "nerfacto_iterations": nerfacto_iterations,
        "edit_iterations": edit_iterations,
        "seed": args.seed,
        "device": DEVICE,
    }
    if args.edit_schedule is not None:  # absent otherwise, so folders of earlier demos still match
        settings["edit_schedule"] = args.edit_schedule
    if args.then:
        settings["then"] = list(args.then)
    check_folder(out, settings)
    CONSOLE.print(f"demo: {args.text!r}, preset {preset_name} on {DEVICE}, into {out}")
    started = time.perf_counter()

    stages = 3 + 2 * (1 + len(args.then))
    CONSOLE.rule(f"1/{stages} scene")
    if not (scene / "transforms.json").is_file():
        write_scene(scene, SceneSpec())
    CONSOLE.print(f"scene: {scene}")

    nerfacto = out / "nerfacto" / preset.nerfacto / RUN_NAME
    CONSOLE.rule(f"2/{stages} {preset.nerfacto}: {nerfacto_iterations} iterations")
    train_until("nerfacto", preset.nerfacto, nerfacto, nerfacto_iterations - 1, None, [], scene, DEVICE)

    edit_args = ["--pipeline.editor", args.editor, "--pipeline.seed", str(args.seed)]
    if args.edit_schedule is not None:
        edit_args += ["--pipeline.edit.schedule", args.edit_schedule]
    instructions = [args.text, *args.then]
    starts = {"relevance-edit": nerfacto, "baseline": nerfacto}  # each method's chain builds on its own edits
    before = dict(starts)
    final = nerfacto_iterations - 1
    for position, instruction in enumerate(instructions):
        final += edit_iterations
        suffix = "" if position == 0 else f"-{position + 1}"
        for offset, (method, extra) in enumerate([("relevance-edit", []), ("baseline", INSTRUCT_NERF2NERF_OPTIONS)]):
            label = method + suffix
            run = out / label / preset.edit / RUN_NAME
            CONSOLE.rule(f"{3 + 2 * position + offset}/{stages} {label}: {instruction!r}, {edit_iterations} iterations")
            options = ["--text", instruction, *edit_args, *extra]
            train_until(label, preset.edit, run, final, starts[method] / "nerfstudio_models", options, scene, DEVICE)
            before[method], starts[method] = starts[method], run
    runs = starts

    CONSOLE.rule(f"{stages}/{stages} evaluation on the held-out views")
    report = out / "report"
    evaluate = [
        sys.executable, str(SCRIPTS / "evaluate_scene.py"), "--scene", str(scene),
        "--edit-run", str(runs["relevance-edit"]), "--baseline-run", str(runs["baseline"]),
        "--before-run", str(before["relevance-edit"]), "--out", str(report), "--clip", args.clip,
    ]  # fmt: skip
    if before["baseline"] != before["relevance-edit"]:  # a chain: the baseline's last edit started from its own run
        evaluate += ["--baseline-before-run", str(before["baseline"])]
    if subprocess.run(evaluate, env=QUIET).returncode != 0:
        raise DemoError("the evaluation failed")
    minutes = (time.perf_counter() - started) / 60
    CONSOLE.print(f"[bold green]demo finished in {minutes:.1f} min[/]: {report}/metrics.md, strips/, orbit.gif")
    CONSOLE.print(  # ns-viewer's own default host is 0.0.0.0: it does not read the run's
        f"inspect the edit: ns-viewer --load-config {runs['relevance-edit']}/config.yml "
        "--viewer.websocket-host 127.0.0.1"
    )
    return report


def main() -> None:
    args = tyro.cli(DemoArgs, description=__doc__)
    try:
        run_demo(args)
    except (DemoError, EditorLoadError, ValueError) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: run the same command again to continue")


if __name__ == "__main__":
    main()
