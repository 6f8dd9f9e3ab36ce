"""The relevance-edit pipeline: relevance warm-up, then relevance-masked iterative dataset update.

Stage 1 computes the 2D relevance map of every training view with the editor and lets
the relevance field learn them for ``relevance_warmup_steps`` before its masks are used
(Watch Your Steps edits from the first step, with masks from an untrained field; here
``edit_during_warmup`` edits under each view's own 2D map meanwhile). Stage 2
edits ``edit_count`` views every ``edit_rate`` steps (Instruct-NeRF2NeRF's iterative
dataset update): render the view (at the editor's working size: it sees no more), binarize
its rendered relevance upsampled to the view, edit the render with the one shared
``editaction.Editor`` conditioned on the original photo, and write the result into the
training image inside the mask, the original photo outside it; ``first_round`` edits every view
once at the first edit step. With ``settle_tolerance`` a view whose edit no longer changes
its masked pixels is not edited again.

The editor is loaded only for training (``test_mode == "val"``): ``ns-viewer``,
``ns-render`` and ``ns-eval`` rebuild the pipeline in test mode and never load it, and it
is not a submodule, so nerfstudio checkpoints do not contain it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Bool, Float
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.viewer.viewer_elements import ViewerCheckbox, ViewerSlider, ViewerText
from rich.progress import track
from torch import Tensor
from torch.cuda.amp.grad_scaler import GradScaler

from editaction import INSTRUCT_PIX2PIX, EditConfig, Editor, EditorLoadError, RelevanceConfig
from editaction.editor import crop_box
from editaction.masking import composite
from editaction.resize import check_resolution, resize, restore_size, working_size
from relevance_nerf.datamanager import RelevanceEditDataManager, RelevanceEditDataManagerConfig
from relevance_nerf.edit_store import EditStore
from relevance_nerf.errors import RelevanceEditError
from relevance_nerf.model import RELEVANCE, RelevanceNerfactoModel, RelevanceNerfactoModelConfig
from relevance_nerf.relevance_field import edit_mask


@dataclass
class RelevanceEditPipelineConfig(VanillaPipelineConfig):
    _target: type = field(default_factory=lambda: RelevanceEditPipeline)
    datamanager: RelevanceEditDataManagerConfig = field(default_factory=RelevanceEditDataManagerConfig)
    model: RelevanceNerfactoModelConfig = field(default_factory=RelevanceNerfactoModelConfig)
    text: str = ""
    """The edit instruction, e.g. "make the red cube blue" (ns-train's --text sets it)."""
    editor: str = INSTRUCT_PIX2PIX
    """InstructPix2Pix-family diffusers checkpoint, a directory or hub id (EditAction fine-tunes work too)."""
    edit: EditConfig = field(default_factory=lambda: EditConfig(steps=20))
    """Edit settings; 20 DDIM steps as in Instruct-NeRF2NeRF. threshold 0 edits everywhere (the IN2N baseline) and
    computes no 2D relevance until the threshold is raised (the viewer's slider)."""
    relevance: RelevanceConfig = field(default_factory=lambda: RelevanceConfig(iqr_factor=2.0))
    """2D relevance settings; WYS clamps outliers at Q3 + 2 IQR in 3D."""
    edit_resolution: int = 512
    """Long side in pixels at most that the editor sees; larger views are edited and their relevance computed at
    this size, then brought back (IP2P is trained at 256 px, works to about 512 px). 0: the view's own size."""
    strength_range: tuple[float, float] = (0.02, 0.98)
    """Each edit starts from the render noised to a random fraction of the schedule in this range (IN2N)."""
    relevance_warmup_steps: int = 500
    """Steps the relevance field trains on the 2D maps before its rendered masks are used."""
    edit_during_warmup: bool = False
    """Edit from the first step, under each view's own 2D relevance map (binarised as a rendered one) until the
    field has warmed up, instead of leaving the warm-up's steps without edits."""
    first_round: bool = False
    """Edit every training view once at the first edit step (``views_per_call`` per editor call), then follow the
    schedule: every view trains on an edit from the start, as in Instruct-GS2GS's dataset updates, instead of only
    those the ``edit_count``-per-``edit_rate`` schedule has reached."""
    edit_rate: int = 10
    """Edit every this many steps after the warm-up (IN2N: 10)."""
    edit_count: int = 1
    """Views edited each time (IN2N: 1; all views: rounds, as Instruct-GS2GS's dataset update)."""
    settle_tolerance: float = 0.0
    """A view whose edit from at least half the noise schedule (strength >= 0.5) changed its masked pixels by less
    than this (mean absolute change, 0-1 scale) has settled: it is not edited again until the instruction or edit
    settings change. Weaker edits change little by design and cannot tell a finished view from an untouched one.
    0: edit every view to the end (IN2N)."""
    refresh_relevance: Literal["never", "on-edit"] = "never"
    """Keep each view's 2D relevance target from the warm-up, or recompute it against the render at each edit."""
    mask_downscale: int = 1
    """Edits from pure noise and edits that crop need a view's rendered mask but not its colours: its relevance is
    rendered this many times coarser than the view (this squared fewer rays; at most at the editor's working size)
    and upsampled. 1: the view's resolution, or the working size when that is smaller."""
    views_per_call: int = 4
    """Views per editor call, for the 2D relevance targets and for edits of several views at once (edit_count > 1):
    one batch fills a GPU better than one view at a time."""
    seed: int = 0
    """Seeds the view order, edit strengths and diffusion noise."""

    def __post_init__(self) -> None:
        low, high = self.strength_range
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"strength_range must satisfy 0 < low <= high <= 1, got {self.strength_range}")
        for name in ("edit_rate", "edit_count", "views_per_call", "mask_downscale"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.relevance_warmup_steps < 0:
            raise ValueError(f"relevance_warmup_steps must be at least 0, got {self.relevance_warmup_steps}")
        if self.settle_tolerance < 0:
            raise ValueError(f"settle_tolerance must be non-negative, got {self.settle_tolerance:g}")
        check_resolution(self.edit_resolution)


SETTLE_MIN_STRENGTH = 0.5
"""Only edits from at least this fraction of the noise schedule may settle a view (see ``settle_tolerance``)."""


def _to_chw(image: Float[Tensor, "h w c"]) -> Float[Tensor, "1 c h w"]:
    return image.permute(2, 0, 1)[None].float()


def _to_hwc(image: Float[Tensor, "1 c h w"]) -> Float[Tensor, "h w c"]:
    return image[0].permute(1, 2, 0)


class RelevanceEditPipeline(VanillaPipeline):
    config: RelevanceEditPipelineConfig
    datamanager: RelevanceEditDataManager
    _model: RelevanceNerfactoModel

    def __init__(
        self,
        config: RelevanceEditPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: GradScaler | None = None,
    ):
        if test_mode == "val" and not config.text.strip():  # training: the only mode that edits
            raise RelevanceEditError('the instruction is empty: pass --text "make the red cube blue"')
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self.settled: set[int] = set()
        """Views whose last strong edit changed less than ``settle_tolerance``: passed over until the edit changes."""
        self.set_edit()  # hands the model the mask threshold
        self.editor: Editor | None = None
        self.store: EditStore | None = None
        self.editing_paused = False
        self.edits_done = 0
        self.edits_skipped = 0
        """Edit turns of this run skipped for an empty edit mask; ``edits_done`` counts them too."""
        self._edits_start: int | None = None
        self._field_ready: int | None = None
        """The step from which edits use the field's rendered masks (after the warm-up)."""
        self._warming_up = False
        self._targets_stale = True
        self._generator = torch.Generator().manual_seed(config.seed)
        self._view_order = torch.randperm(len(self.datamanager.train_dataset), generator=self._generator).tolist()

        # Viewer controls (nerfstudio shows ViewerElements found on the pipeline).
        self.viewer_instruction = ViewerText("Instruction", config.text, cb_hook=lambda e: self.set_text(e.value))
        self.viewer_text_guidance = ViewerSlider(
            "Text guidance",
            config.edit.text_guidance,
            0.0,
            15.0,
            0.1,
            cb_hook=lambda e: self.set_edit(text_guidance=e.value),
        )
        self.viewer_image_guidance = ViewerSlider(
            "Image guidance",
            config.edit.image_guidance,
            0.0,
            5.0,
            0.05,
            cb_hook=lambda e: self.set_edit(image_guidance=e.value),
        )
        self.viewer_threshold = ViewerSlider(
            "Mask threshold", config.edit.threshold, 0.0, 1.0, 0.01, cb_hook=lambda e: self.set_edit(threshold=e.value)
        )
        self.viewer_pause = ViewerCheckbox("Pause editing", False, cb_hook=lambda e: self.pause_editing(e.value))

        if test_mode == "val":
            try:
                self.editor = Editor.from_pretrained(config.editor, device=device)
            except EditorLoadError as error:
                raise RelevanceEditError(str(error)) from error
            self.editor.set_progress_bar(False)

    # ---- controls -----------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return self.config.text

    def set_text(self, text: str) -> None:
        """A new instruction: its relevance targets are recomputed before the next training step."""
        if not text.strip() or text == self.config.text:
            return
        self.config.text = text
        self._targets_stale = True
        self.settled.clear()
        if self.store is not None:
            self.store.instruction = text

    def set_edit(self, **changes: float) -> None:
        """Change the edit settings; the only writer of the model's mask threshold.

        The model owns the edit mask: it renders ``edit_mask`` for any view (the viewer shows it) and edits
        use that output, so what the viewer shows is what gets edited. The threshold itself stays in the edit
        settings (``--pipeline.edit.threshold``, the viewer's slider) because the editor binarises with it too.
        """
        self.config.edit = dataclasses.replace(self.config.edit, **changes)
        self.model.config.edit_mask_threshold = self.config.edit.threshold
        self.settled.clear()

    def pause_editing(self, paused: bool) -> None:
        self.editing_paused = paused

    # ---- run state ----------------------------------------------------------------------------

    def bind_run(self, run_dir: Path, resume_from: Path | None = None) -> None:
        """Save edits under ``run_dir``; restore those an earlier run saved under ``resume_from``."""
        self.store = EditStore(run_dir, self.text)
        if self.datamanager.has_relevance() and not self._targets_stale:
            self.store.save_relevance_targets(self.datamanager.relevance(slice(None)))
        if resume_from is None:
            return
        earlier = EditStore(resume_from, self.text)
        restored = earlier.load()
        if restored.relevance_targets is None and not restored.views:
            if restored.other_instructions:
                CONSOLE.print(
                    f"[yellow]{earlier.directory} holds edits for {sorted(restored.other_instructions)}, "
                    f"not {self.text!r}: editing starts from the original images"
                )
            return
        shape = tuple(self.datamanager.original_pixels.shape[1:3])
        if restored.relevance_targets is not None:
            if tuple(restored.relevance_targets.shape) != (self.datamanager.num_views, *shape, 1):
                raise RelevanceEditError(f"edits in {earlier.directory} do not match this data set's views")
            self.datamanager.set_relevance(slice(None), restored.relevance_targets)
            self.store.save_relevance_targets(restored.relevance_targets)
            self._targets_stale = False
        for index, (image, relevance) in restored.views.items():
            if index >= self.datamanager.num_views or tuple(image.shape[:2]) != shape:
                raise RelevanceEditError(f"edits in {earlier.directory} do not match this data set's views")
            self.datamanager.set_image(index, image)
            if relevance is not None:
                self.datamanager.set_relevance(index, relevance)
            self.store.save_view(index, image, relevance, restored.edits_done)
        self.edits_done = restored.edits_done
        CONSOLE.print(f"Restored {len(restored.views)} edited views and the relevance targets from {earlier.directory}")

    # ---- stage 1: relevance targets -----------------------------------------------------------

    @torch.no_grad()
    def compute_relevance_targets(self) -> None:
        """2D relevance of every original training view, the relevance field's supervision."""
        assert self.editor is not None
        maps = []
        batch = self.config.views_per_call
        for start in track(
            range(0, self.datamanager.num_views, batch), description="2D relevance of the training views"
        ):
            images = self.datamanager.original_image(slice(start, start + batch)).permute(0, 3, 1, 2)
            maps.append(
                self.editor.relevance_map(
                    images,
                    self.text,
                    config=self.config.relevance,
                    generator=self._generator,
                    resolution=self.config.edit_resolution,
                )
            )
        targets = torch.cat(maps).permute(0, 2, 3, 1)
        self.datamanager.set_relevance(slice(None), targets)
        if self.store is not None:
            self.store.save_relevance_targets(targets)
        self._targets_stale = False

    # ---- stage 2: edits -----------------------------------------------------------------------

    @torch.no_grad()
    def render_view(
        self, index: int, window: tuple[int, int, int, int] | None = None, grid: tuple[int, int] | None = None
    ) -> dict[str, Tensor]:
        """Render training view ``index`` (or its ``window``, or on a ``grid`` spanning it) with its optimised pose
        and appearance embedding (``RelevanceNerfactoModel.get_outputs_for_training_view``).

        The edit is composited into the view's training image, whose rays see both: a render without them
        would misalign the edit against the image it overwrites (seams, doubled edges on real captures).
        """
        return self.model.get_outputs_for_training_view(self.datamanager.train_dataset.cameras, index, window, grid)

    @torch.no_grad()
    def render_for_edit(self, index: int, colours: bool) -> tuple[Bool[Tensor, "h w 1"], Tensor | None]:
        """One render of view ``index`` for an edit: its edit mask at the view's size and, with ``colours``, its
        render at the editor's working size (``_edit_grid``): the editor sees no more pixels than that."""
        size = self._view_size(index)
        outputs = self.render_view(index, grid=self._edit_grid(size, colours))
        mask = edit_mask(outputs[RELEVANCE], self.config.edit.threshold, size=size)
        return mask, outputs["rgb"] if colours else None

    def _edit_grid(self, size: tuple[int, int], colours: bool) -> tuple[int, int]:
        """The grid a view of ``size`` is rendered on for an edit. Colours: the editor's working size (the view's
        own when the relevance is refreshed from the render, which takes the photo at the view's size). The mask
        alone: that size or ``mask_downscale`` times coarser than the view, whichever is coarser."""
        if colours and self.config.refresh_relevance == "on-edit":
            return size
        working = working_size(size, self.config.edit_resolution)
        if colours:
            return working
        downscale = self.config.mask_downscale
        return tuple(min(side, max(round(full / downscale), 1)) for side, full in zip(working, size, strict=True))

    def _view_size(self, index: int) -> tuple[int, int]:
        return tuple(self.datamanager.original_image(index).shape[:2])

    @torch.no_grad()
    def edit_view(self, index: int) -> Bool[Tensor, "h w 1"]:
        """Edit one training view under its rendered relevance mask; returns the mask."""
        return self.edit_views([index])[0]

    @torch.no_grad()
    def edit_views(self, indices: Sequence[int]) -> list[Bool[Tensor, "h w 1"]]:
        """Edit training views under their rendered relevance masks in one editor call; returns their masks.

        The editor starts from the view's render noised to a random strength (IN2N), rendered at the editor's
        working size (``edit_resolution``) with the mask, or, when the edit crops, only in the box the editor sees.
        From pure noise (strength 1) the render would only be the background that the masked edit keeps outside
        the mask; the view's training image, into which the edit is written, is that background exactly, so it is
        edited instead of a render, and only the mask is rendered (``mask_downscale``). While the field warms up
        (``edit_during_warmup``) the masks are the views' own 2D maps, known before rendering: such an edit from
        pure noise renders nothing. The views share one noise strength. A view with an empty mask skips the editor
        (nothing may change) but still takes its turn: ``edits_done`` counts edit turns, skipped ones included, so
        the order moves on.
        """
        assert self.editor is not None
        low, high = self.config.strength_range
        strength = low + (high - low) * torch.rand((), generator=self._generator).item()
        if self.config.edit.schedule == "truncate":
            strength = max(strength, 1.0 / self.config.edit.steps)  # at least one of its steps
        from_noise = strength >= 1.0 and self.config.refresh_relevance == "never"  # a refresh needs the render
        edit = self.config.edit
        crops = edit.crop_margin is not None and edit.threshold > 0 and self.config.refresh_relevance == "never"
        masks, renders = {}, {}
        for index in indices:
            if self._warming_up:
                masks[index], renders[index] = self._own_mask(index), None
            else:
                masks[index], renders[index] = self.render_for_edit(index, colours=not (from_noise or crops))
        edited = [index for index in indices if masks[index].any()]
        for index in indices:
            if index not in edited:
                self.edits_skipped += 1
                CONSOLE.print(
                    f"[yellow]View {index}: empty edit mask, editor skipped ({self.edits_skipped} skipped in this run)"
                )
        if edited:
            window = None
            if crops and not from_noise:  # the box the editor will crop, rendered alone
                window = crop_box(torch.stack([masks[index] for index in edited]).permute(0, 3, 1, 2), edit.crop_margin)
            inputs = {}
            for index in edited:
                if from_noise:
                    rgb = self.datamanager.image(index)
                elif renders[index] is not None:
                    rgb = renders[index]
                else:
                    rgb = self._render_rgb(index, window)
                inputs[index] = _to_chw(rgb.clamp(0.0, 1.0))
            size = tuple(inputs[edited[0]].shape[-2:])  # the view's, or the editor's working size
            condition = torch.cat([_to_chw(self.datamanager.original_image(index)) for index in edited])
            relevance = torch.cat([_to_chw(masks[index].float()) for index in edited])  # 0/1: exact at view size
            result = self.editor.edit(
                torch.cat([inputs[index] for index in edited]),
                self.text,
                condition=resize(condition, size),  # as the editor shrinks a view to its working size
                relevance=resize(relevance, size),
                config=dataclasses.replace(edit, strength=strength),
                generator=self._generator,
                resolution=self.config.edit_resolution,
                condition_ids=edited,  # each view's photo, encoded once
            )
            images, result_masks = result.images, result.mask
            if size != self._view_size(edited[0]):  # an edit at the working size, at the view's (photo outside)
                images, result_masks = restore_size(images, result_masks, condition.to(images.device))
            for row, index in enumerate(edited):
                change = self._update_view(index, images[row : row + 1], result_masks[row : row + 1], inputs[index])
                if strength >= SETTLE_MIN_STRENGTH and change < self.config.settle_tolerance:
                    self.settled.add(index)
                    CONSOLE.print(
                        f"View {index} has settled: its edit changed it by {change:.3f} "
                        f"({len(self.settled)} of {self.datamanager.num_views} settled)"
                    )
                masks[index] = _to_hwc(result_masks[row : row + 1])
        for index in indices:
            self._end_turn(index)
        return [masks[index] for index in indices]

    def _render_rgb(self, index: int, window: tuple[int, int, int, int] | None) -> Float[Tensor, "h w 3"]:
        """The view's colours for an edit: rendered in ``window`` only, its training image elsewhere, or without
        one, the whole view at the editor's working size (``_edit_grid``)."""
        if window is None:
            return self.render_view(index, grid=self._edit_grid(self._view_size(index), colours=True))["rgb"]
        top, bottom, left, right = window
        rgb = self.datamanager.image(index).clone()
        rgb[top:bottom, left:right] = self.render_view(index, window)["rgb"].to(rgb.device)
        return rgb

    def _own_mask(self, index: int) -> Bool[Tensor, "h w 1"]:
        """The edit mask of view ``index``'s own 2D relevance target, binarised as a rendered one."""
        return edit_mask(self.datamanager.relevance(index), self.config.edit.threshold)

    def _update_view(
        self, index: int, edited: Float[Tensor, "1 3 h w"], mask: Bool[Tensor, "1 1 h w"], render: Tensor
    ) -> float:
        """Write an edit into view ``index``'s training image: the edit inside ``mask``, the original photo outside
        it; returns the mean change inside the mask.

        Outside its current mask a view is what was captured: an earlier edit under a looser mask (a warm-up
        edit's 2D map, a mask the field has since sharpened) does not outlive the view's next edit.
        """
        current = _to_chw(self.datamanager.image(index)).to(edited.device)
        original = _to_chw(self.datamanager.original_image(index)).to(edited.device)
        updated = composite(edited.float(), original, mask)
        change = (updated - current)[mask.expand_as(updated)].abs().mean().item()
        self.datamanager.set_image(index, _to_hwc(updated))
        if self.config.refresh_relevance == "on-edit" and self.datamanager.has_relevance():  # none at threshold 0
            relevance = self.editor.relevance_map(
                _to_chw(self.datamanager.original_image(index)),
                self.text,
                condition=render,
                config=self.config.relevance,
                generator=self._generator,
                resolution=self.config.edit_resolution,
            )
            self.datamanager.set_relevance(index, _to_hwc(relevance))
        return change

    def _end_turn(self, index: int) -> None:
        """Count the edit turn and save the view as it now is (a resumed run continues the view order)."""
        self.edits_done += 1
        if self.store is not None:
            relevance = self.datamanager.relevance(index) if self.datamanager.has_relevance() else None
            self.store.save_view(index, self.datamanager.image(index), relevance, self.edits_done)

    def next_view(self) -> int:
        """The view the next edit takes: training views in a seeded order, cycled (resumed runs continue it)."""
        return self._view_order[self.edits_done % len(self._view_order)]

    def due_views(self) -> list[int]:
        """The views of this edit step: the next ``edit_count`` (each view once at most) in the seeded order.

        Settled views met on the way are passed over; their turns count, so the order moves on as without them.
        """
        views: list[int] = []
        count = min(self.config.edit_count, len(self._view_order) - len(self.settled))
        passed = 0
        while len(views) < count:
            index = self._view_order[(self.edits_done + passed + len(views)) % len(self._view_order)]
            if index in self.settled:
                passed += 1
            else:
                views.append(index)
        self.edits_done += passed
        return views

    def _before_step(self, step: int) -> None:
        if self.editor is None:
            return
        if self._targets_stale and self.config.edit.threshold > 0:  # threshold 0 (IN2N) edits without relevance
            self.compute_relevance_targets()
            self._field_ready = step + self.config.relevance_warmup_steps
            self._edits_start = step if self.config.edit_during_warmup else self._field_ready
        elif self._edits_start is None:  # targets restored from an earlier run: its warm-up is done
            self._edits_start = self._field_ready = step
        self._warming_up = step < self._field_ready
        if self.editing_paused or step < self._edits_start or (step - self._edits_start) % self.config.edit_rate:
            return
        first = self.config.first_round and step == self._edits_start and not self.edits_done
        due = list(self._view_order) if first else self.due_views()
        for start in range(0, len(due), self.config.views_per_call):
            self.edit_views(due[start : start + self.config.views_per_call])

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        callbacks.append(
            TrainingCallback(where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], func=self._before_step)
        )
        return callbacks
