"""The nerfstudio trainer for relevance-edit: checks the user's input, binds edits to the run directory.

Edits are saved under the run's ``edits/`` folder. Starting with ``--load-dir`` (or
``--load-checkpoint``) from a nerfacto run edits the photos; from an edit run of the same
instruction continues that edit; from an edit run of another instruction builds on it
(``RelevanceEditPipeline.bind_run``). User mistakes end the run with one ``error:`` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import writer
from nerfstudio.utils.rich_utils import CONSOLE

from relevance_nerf.checkpoints import METRIC_PREFIXES, MODEL_PREFIX, latest_step, model_mismatch
from relevance_nerf.errors import RelevanceEditError
from relevance_nerf.model import RELEVANCE_HEAD, current_head_key
from relevance_nerf.pipeline import RelevanceEditPipeline, RelevanceEditPipelineConfig


@dataclass
class RelevanceEditTrainerConfig(TrainerConfig):
    _target: type = field(default_factory=lambda: RelevanceEditTrainer)
    pipeline: RelevanceEditPipelineConfig = field(default_factory=RelevanceEditPipelineConfig)
    text: str | None = None
    """The edit instruction, e.g. "make the red cube blue" (short for --pipeline.text)."""

    def __post_init__(self) -> None:
        if self.text is not None and not self.pipeline.text:
            self.pipeline.text = self.text  # so the saved config.yml holds the instruction

    def set_experiment_name(self) -> None:
        """Name runs after the data folder also when it is given as ``nerfstudio-data --data`` (not "unnamed")."""
        data = self.pipeline.datamanager.dataparser.data
        if self.experiment_name is None and self.pipeline.datamanager.data is None and data != Path():
            self.experiment_name = (data.parent if data.is_file() else data).stem
        super().set_experiment_name()

    def resolved_text(self) -> str:
        """The instruction (the pipeline refuses an empty one), or an error for a conflicting or misplaced one."""
        if self.prompt or self.pipeline.model.prompt:
            raise RelevanceEditError(
                "--prompt is nerfstudio's text-to-3D prompt and is ignored by relevance-edit; "
                'give the instruction with --text "..."'
            )
        if self.text is not None and self.pipeline.text and self.text != self.pipeline.text:
            raise RelevanceEditError(f"--text {self.text!r} and --pipeline.text {self.pipeline.text!r} differ")
        return self.pipeline.text or self.text or ""


def _checkpoint_file(config: TrainerConfig) -> Path | None:
    """The checkpoint this run starts from, after checking that it exists."""
    if config.load_dir is not None:
        load_dir = Path(config.load_dir)
        step = config.load_step if config.load_step is not None else latest_step(load_dir)
        if step is None:
            raise RelevanceEditError(
                f"--load-dir {load_dir} holds no nerfstudio checkpoint (step-*.ckpt); "
                "pass the nerfstudio_models folder of a finished run"
            )
        checkpoint = load_dir / f"step-{step:09d}.ckpt"
        if not checkpoint.is_file():
            raise RelevanceEditError(f"--load-dir {load_dir} has no checkpoint for step {step}")
        return checkpoint
    if config.load_checkpoint is not None:
        checkpoint = Path(config.load_checkpoint)
        if not checkpoint.is_file():
            raise RelevanceEditError(f"--load-checkpoint {checkpoint} does not exist")
        return checkpoint
    return None


def _current_group_names(groups: dict[str, Any]) -> dict[str, Any]:
    return {current_head_key(name): value for name, value in groups.items()}


class RelevanceEditOptimizers(Optimizers):
    """nerfstudio's optimizers; also reads configs and checkpoints that give the head's group its legacy name."""

    def __init__(self, config: dict[str, Any], param_groups: dict[str, list]) -> None:
        super().__init__(_current_group_names(config), param_groups)

    def load_optimizers(self, loaded_state: dict[str, Any]) -> None:
        super().load_optimizers(_current_group_names(loaded_state))

    def load_schedulers(self, loaded_state: dict[str, Any]) -> None:
        super().load_schedulers(_current_group_names(loaded_state))


class RelevanceEditTrainer(Trainer):
    config: RelevanceEditTrainerConfig
    pipeline: RelevanceEditPipeline
    _checkpoint: Path | None = None
    """The checkpoint this run starts from (``step-*.ckpt``), set in ``setup``."""

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        try:
            self.config.pipeline.text = self.config.resolved_text()
            self._checkpoint = _checkpoint_file(self.config)
            if self._checkpoint is None:
                CONSOLE.print(
                    "[yellow]No --load-dir: editing a NeRF trained from scratch. Train nerfacto first "
                    "and pass its nerfstudio_models folder with --load-dir for the intended use."
                )
            super().setup(test_mode)
            self.pipeline.bind_run(self.base_dir, None if self._checkpoint is None else self._checkpoint.parent.parent)
        except RelevanceEditError as error:
            raise SystemExit(f"error: {error}") from None
        self.callbacks.append(  # once, at the first step: train() has set nerfstudio's count by then
            TrainingCallback(
                [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                self._progress_to_last_step,
                iters=(self._start_step,),
            )
        )

    def setup_optimizers(self) -> Optimizers:
        return RelevanceEditOptimizers(self.config.optimizers.copy(), self.pipeline.get_param_groups())

    def _load_checkpoint(self) -> None:
        """nerfstudio's loading, once the checkpoint's model fits this one (a relevance head may be missing:
        plain nerfacto checkpoints have none; so may untrained metrics). nerfstudio loads with strict=False, so
        a checkpoint of another preset, hash-grid implementation or data set would start a partly untrained field."""
        if self._checkpoint is not None:
            saved = torch.load(self._checkpoint, map_location="cpu", weights_only=True, mmap=True)["pipeline"]
            saved = {current_head_key(key, MODEL_PREFIX): value for key, value in saved.items()}
            head = f"{MODEL_PREFIX}{RELEVANCE_HEAD}."
            problem = model_mismatch(self.pipeline.state_dict(), saved, optional=(head, *METRIC_PREFIXES))
            if problem is not None:
                load_dir = self.config.load_dir
                source = f"--load-dir {load_dir}" if load_dir is not None else f"--load-checkpoint {self._checkpoint}"
                raise RelevanceEditError(
                    f"{source} does not match this model ({problem}); was it trained with another preset or data set?"
                )
        super()._load_checkpoint()

    def _progress_to_last_step(self, step: int) -> None:
        """Progress and ETA towards this run's last step: nerfstudio assumes runs start at 0, these start after
        the checkpoint they edit (its table would read 533% and 23 h)."""
        writer.GLOBAL_BUFFER["max_iter"] = self._start_step + self.config.max_num_iterations
