"""The relevance-edit pipeline: relevance warm-up, then relevance-masked iterative dataset update.

Stage 1 computes the 2D relevance map of every training view with the editor and lets
the relevance field learn them for ``relevance_warmup_steps`` before its masks are used
(Watch Your Steps edits from the first step, with masks from an untrained field; here
``edit_during_warmup`` edits under each view's own 2D map meanwhile). Stage 2
edits ``views_per_edit`` views every ``edit_rate`` steps (Instruct-NeRF2NeRF's iterative
dataset update): render the view (at the editor's working size: it sees no more), binarize
its rendered relevance upsampled to the view, edit the render with the one shared
``editaction.Editor`` conditioned on the view's starting image, and write the result into the
training image inside the mask, the starting image outside it; ``first_round`` edits every view
once at the first edit step. With ``settle_tolerance`` a view whose edit no longer changes
its masked pixels is not edited again.

A view's starting image is its photo, or, for a run started from an edit run of another instruction, that
run's edited view (``bind_run``): Instruct-NeRF2NeRF and Watch Your Steps always start from the photos, so a
second instruction would undo the first edit; here edits build on each other.

Edit and relevance settings left unset take the editor checkpoint's recommendation for scenes
(``editaction.settings``: its ``edit_settings.json``, else the published IN2N / WYS values).

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
from nerfstudio.viewer.viewer_elements import ViewerButton, ViewerCheckbox, ViewerSlider, ViewerText
from rich.progress import track
from torch import Tensor
from torch.cuda.amp.grad_scaler import GradScaler

from editaction import INSTRUCT_PIX2PIX, Editor, EditorLoadError
from editaction.editor import crop_box
from editaction.masking import composite
from editaction.resize import check_resolution, resize, restore_size, working_size
from editaction.settings import EditOptions, RelevanceOptions, SettingsError, load_settings
from relevance_nerf.datamanager import RelevanceEditDataManager, RelevanceEditDataManagerConfig
from relevance_nerf.edit_store import ChainLink, EditStore, RunRecord
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
    edit: EditOptions = field(default_factory=EditOptions)
    """Edit settings; unset ones take the editor's recommendation for scenes (published: 20 DDIM steps, guidance
    7.5 / 1.5 as in Instruct-NeRF2NeRF). threshold 0 edits everywhere (the IN2N baseline) and computes no 2D
    relevance until the threshold is raised (the viewer's slider)."""
    relevance: RelevanceOptions = field(default_factory=RelevanceOptions)
    """2D relevance settings; unset ones take the editor's recommendation for scenes (published: WYS 3D, Q3 + 2 IQR)."""
    strength_range: tuple[float, float] | None = None
    """Each edit starts from the render noised to a random fraction of the noise schedule in this range. None: the
    editor's recommendation (published: IN2N's 0.02-0.98)."""
    edit_resolution: int = 512
    """Long side in pixels at most that the editor sees; larger views are edited and their relevance computed at
    this size, then brought back (IP2P is trained at 256 px, works to about 512 px). 0: the view's own size."""
    relevance_warmup_steps: int = 500
    """Steps the relevance field trains on the 2D maps before its rendered masks are used."""
    edit_during_warmup: bool = False
    """Edit from the first step, under each view's own 2D relevance map (binarised as a rendered one) until the
    field has warmed up, instead of leaving the warm-up's steps without edits."""
    first_round: bool = False
    """Edit every training view once at the first edit step, then follow the schedule: every view trains on an
    edit from the start, as in Instruct-GS2GS's dataset updates."""
    edit_rate: int = 10
    """Edit every this many steps after the warm-up (IN2N: 10)."""
    views_per_edit: int = 1
    """Training views edited at each edit step (IN2N: 1)."""
    settle_tolerance: float = 0.0
    """A view whose edit from at least half the noise schedule (strength >= 0.5) changed its masked pixels by less
    than this (mean absolute change, 0-1 scale) has settled: it is not edited again until the instruction or edit
    settings change. Weaker edits change little by design and cannot tell a finished view from an untouched one.
    0: edit every view to the end (IN2N)."""
    mask_downscale: int = 1
    """Edits from pure noise and edits that crop need a view's rendered mask but not its colours: its relevance is
    rendered this many times coarser than the view (this squared fewer rays; at most at the editor's working size)
    and upsampled. 1: the view's resolution, or the working size when that is smaller."""
    keep_earlier_edits: bool = True
    """A run that builds on earlier edits leaves what they changed out of its edit masks: a second instruction does
    not re-edit the first edit's object, even where the editor's relevance cannot tell the two apart. Off: the new
    instruction may change anything its mask covers, the earlier edits' objects included (to edit one again).
    Masks only: threshold 0 edits everywhere."""
    editor_batch_size: int = 4
    """Views per editor call, for the 2D relevance targets and for the views of one edit step: one batch fills a
    GPU better than one view at a time."""
    seed: int = 0
    """Seeds the view order, edit strengths and diffusion noise."""

    def __post_init__(self) -> None:
        if self.strength_range is not None:
            low, high = self.strength_range
            if not 0.0 < low <= high <= 1.0:
                raise ValueError(f"strength_range must satisfy 0 < low <= high <= 1, got {self.strength_range}")
        for name in ("edit_rate", "views_per_edit", "editor_batch_size", "mask_downscale"):
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


@dataclass(frozen=True)
class EditPlan:
    """The views of one edit step, in the seeded order, and the settled views passed over to reach them."""

    views: list[int]
    passed: int = 0
    """Turns of settled views met on the way: they count, so the order moves on as without them."""


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
        try:
            recommended = load_settings(config.editor).scene
        except SettingsError as error:
            raise RelevanceEditError(str(error)) from error
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self.edit_config = config.edit.resolve(recommended.edit)
        """The edit settings in force: the run's options over the editor's recommendation (the viewer changes them)."""
        self.relevance_config = config.relevance.resolve(recommended.relevance)
        self.strength_range = config.strength_range or recommended.strength_range
        self.settled: set[int] = set()
        """Views whose last strong edit changed less than ``settle_tolerance``: passed over until the edit changes."""
        self.set_edit()  # hands the model the mask threshold
        self.editor: Editor | None = None
        self.store: EditStore | None = None
        self.editing_paused = False
        self.edits_done = 0
        """Edit turns taken (skipped and passed-over ones included): the position in the view order."""
        self.edits_skipped = 0
        """Edit turns of this run skipped for an empty edit mask; ``edits_done`` counts them too."""
        self.edits_start: int | None = None
        """The first step that may edit (the start of the warm-up with ``edit_during_warmup``, else its end)."""
        self.field_ready: int | None = None
        """The step from which edits use the field's rendered masks (after the warm-up)."""
        self.targets_stale = True
        """The relevance targets are not those of the current instruction: they are computed before the next step."""
        self.generator = torch.Generator().manual_seed(config.seed)
        """Draws the view order, edit strengths and diffusion noise: a run is reproducible from its seed."""
        self.view_order = torch.randperm(len(self.datamanager.train_dataset), generator=self.generator).tolist()
        """Training views in the seeded order that edits cycle through."""
        self.step = 0
        """The training step last started (``_before_step``)."""
        self.chain: list[ChainLink] = []
        """The edits this run builds on, oldest first, and its own last (``bind_run``)."""

        # Viewer controls (nerfstudio shows ViewerElements found on the pipeline).
        self.viewer_chain = ViewerText("Earlier edits", "", disabled=True, hint="The edits this run builds on")
        self.viewer_instruction = ViewerText(
            "Instruction",
            config.text,
            hint="Applied with the button below. A new instruction replaces this run's edit (editing restarts from "
            "the run's starting images); to keep this edit and add another, start a new run from this one.",
        )
        self.viewer_apply = ViewerButton("Apply instruction", cb_hook=lambda _: self.apply_viewer_instruction())
        self.viewer_text_guidance = ViewerSlider(
            "Text guidance",
            self.edit_config.text_guidance,
            0.0,
            15.0,
            0.1,
            cb_hook=lambda e: self.set_edit(text_guidance=e.value),
        )
        self.viewer_image_guidance = ViewerSlider(
            "Image guidance",
            self.edit_config.image_guidance,
            0.0,
            5.0,
            0.05,
            cb_hook=lambda e: self.set_edit(image_guidance=e.value),
        )
        self.viewer_threshold = ViewerSlider(
            "Mask threshold",
            self.edit_config.threshold,
            0.0,
            1.0,
            0.01,
            cb_hook=lambda e: self.set_edit(threshold=e.value),
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
        """A new instruction replaces this run's edit: the training images go back to the run's starting images
        and the new instruction's relevance targets are computed before the next training step. (Building on the
        edit is a new run from this one: ``bind_run``.)"""
        if not text.strip() or text == self.config.text:
            return
        self.config.text = text
        self.targets_stale = True
        self.settled.clear()
        self.datamanager.restart()
        if self.chain:
            self.chain[-1] = dataclasses.replace(self.chain[-1], instruction=text)
        if self.store is not None:
            self.store.clear_edits()
            self._write_record()

    def apply_viewer_instruction(self) -> None:
        self.set_text(self.viewer_instruction.value)

    def set_edit(self, **changes: float) -> None:
        """Change the edit settings in force; the only writer of the model's mask threshold.

        The model renders ``edit_mask`` for any view (the viewer shows it) and edits use the same threshold, so
        what the viewer shows is what gets edited.
        """
        self.edit_config = dataclasses.replace(self.edit_config, **changes)
        self.model.edit_mask_threshold = self.edit_config.threshold
        self.settled.clear()

    def pause_editing(self, paused: bool) -> None:
        self.editing_paused = paused

    @property
    def warming_up(self) -> bool:
        """Whether the relevance field is still learning the 2D maps (edits then use each view's own map)."""
        return self.field_ready is not None and self.step < self.field_ready

    # ---- run state ----------------------------------------------------------------------------

    def bind_run(self, run_dir: Path, resume_from: Path | None = None) -> None:
        """Save this run's edits under ``run_dir``, starting from the run at ``resume_from`` (if any).

        Three cases, one log line each: ``resume_from`` holds no edit (a nerfacto run): the edit starts from the
        photos. It is an edit run of the same instruction: this run continues it (its starting images, edited
        views, relevance targets and place in the view order). It is an edit run of another instruction: this
        run builds on it: that run's views, as edited, are this run's starting images, which the editor is
        conditioned on, whose 2D relevance is computed, and which fill everything outside this edit's mask.
        """
        self.store = EditStore(run_dir)
        data = str(self._data_folder())
        earlier = EditStore(resume_from) if resume_from is not None else None
        record = earlier.record() if earlier is not None else None
        if record is not None and Path(record.data) != Path(data):
            raise RelevanceEditError(
                f"{earlier.run_dir} edited the data in {record.data}, not {data}: pass its --data, "
                "or start from a run on this data"
            )
        link = ChainLink(self.text, str(Path(run_dir).resolve()))
        if record is None:
            chain = [link]
            if self.datamanager.has_relevance() and not self.targets_stale:  # computed before the run was bound
                self.store.save_relevance_targets(self.datamanager.relevance_pixels())
            CONSOLE.print(f"Editing {self.text!r} from the photos")
        elif record.instruction == self.text:
            chain = [*record.chain[:-1], link]
            self._continue(earlier, record)
        else:
            if earlier.run_dir.resolve() == Path(run_dir).resolve():
                raise RelevanceEditError(
                    f"{run_dir} holds the edit this run builds on: give the new run its own folder"
                )
            chain = [*record.chain, link]
            self._build_on(earlier, record)
        self.chain = chain
        self.viewer_chain.value = " -> ".join(link.instruction for link in chain[:-1]) or "none (the photos)"
        self._write_record()

    def _data_folder(self) -> Path:
        dataparser = self.datamanager.dataparser.config
        return Path(dataparser.data).resolve()

    def _write_record(self) -> None:
        if self.store is not None:
            self.store.write_record(RunRecord(str(self._data_folder()), self.chain, self.edits_done))

    def _check_fits(self, earlier: EditStore, index: int, pixels: Tensor) -> None:
        if index >= self.datamanager.num_views or pixels.shape != self.datamanager.original_pixels.shape[1:]:
            raise RelevanceEditError(f"the edits in {earlier.directory} do not fit this data set's views")

    def _continue(self, earlier: EditStore, record: RunRecord) -> None:
        """Take up ``earlier``'s edit where it stopped: its starting images, edited views and relevance targets."""
        for index in earlier.start_indices():
            pixels = earlier.start_image(index)
            self._check_fits(earlier, index, pixels)
            self.datamanager.set_start_pixels(index, pixels)
        edited = earlier.view_indices()
        for index in edited:
            pixels = earlier.view(index)
            self._check_fits(earlier, index, pixels)
            self.datamanager.set_image_pixels(index, pixels)
        targets = earlier.relevance_targets()
        if targets is not None:
            if targets.shape != (*self.datamanager.original_pixels.shape[:3], 1):
                raise RelevanceEditError(f"the edits in {earlier.directory} do not fit this data set's views")
            self.datamanager.set_relevance_pixels(targets)
            self.targets_stale = False
        self.store.take_over(earlier, starts=True, views=True, targets=targets is not None)
        self.edits_done = record.edits_done
        CONSOLE.print(
            f"Continuing {self.text!r} from {earlier.run_dir}: restored {len(edited)} edited views"
            + (" and the relevance targets" if targets is not None else "")
        )

    def _build_on(self, earlier: EditStore, record: RunRecord) -> None:
        """Start from ``earlier``'s views as edited (its starting images where it edited none)."""
        edited = earlier.view_indices()
        if not edited:
            raise RelevanceEditError(
                f"{earlier.run_dir} stopped before it edited any view: there is no {record.instruction!r} edit to "
                "build on; continue it with its own instruction, or start from the run before it"
            )
        starts, views = set(earlier.start_indices()), set(edited)
        for index in sorted(starts | views):  # its views as edited, else as it started them; one at a time
            pixels = earlier.view(index) if index in views else earlier.start_image(index)
            self._check_fits(earlier, index, pixels)
            if not torch.equal(pixels, self.datamanager.original_pixels[index].cpu()):  # not the photo
                self.datamanager.set_start_pixels(index, pixels)
                self.store.save_start_image(index, pixels)
        self.targets_stale = True  # relevance is of the starting images
        earlier_edits = " -> ".join(repr(link.instruction) for link in record.chain)
        CONSOLE.print(f"Building {self.text!r} on {earlier_edits} ({earlier.run_dir}, {len(edited)} edited views)")

    # ---- stage 1: relevance targets -----------------------------------------------------------

    @torch.no_grad()
    def compute_relevance_targets(self) -> None:
        """2D relevance of every starting view, the relevance field's supervision; each batch goes into the 8-bit
        targets as it comes, so memory does not grow with the number of views."""
        assert self.editor is not None
        batch = self.config.editor_batch_size
        for start in track(
            range(0, self.datamanager.num_views, batch), description="2D relevance of the training views"
        ):
            views = slice(start, start + batch)
            images = self.datamanager.original_image(views).permute(0, 3, 1, 2)
            relevance = self.editor.relevance_map(
                images,
                self.text,
                config=self.relevance_config,
                generator=self.generator,
                resolution=self.config.edit_resolution,
            )
            self.datamanager.set_relevance(views, relevance.permute(0, 2, 3, 1))  # into the 8-bit buffer at once
        if self.store is not None:
            self.store.save_relevance_targets(self.datamanager.relevance_pixels())
        self.targets_stale = False

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
        render at the editor's working size (``edit_grid``): the editor sees no more pixels than that."""
        size = self.view_size(index)
        outputs = self.render_view(index, grid=self.edit_grid(size, colours))
        mask = edit_mask(outputs[RELEVANCE], self.edit_config.threshold, size=size)
        return mask, outputs["rgb"] if colours else None

    def edit_grid(self, size: tuple[int, int], colours: bool) -> tuple[int, int]:
        """The grid a view of ``size`` is rendered on for an edit. Colours: the editor's working size. The mask
        alone: that size or ``mask_downscale`` times coarser than the view, whichever is coarser."""
        working = working_size(size, self.config.edit_resolution)
        if colours:
            return working
        downscale = self.config.mask_downscale
        return tuple(min(side, max(round(full / downscale), 1)) for side, full in zip(working, size, strict=True))

    def view_size(self, index: int) -> tuple[int, int]:
        return tuple(self.datamanager.original_pixels[index].shape[:2])  # the 8-bit buffer: no float copy

    @torch.no_grad()
    def edit_view(self, index: int) -> Bool[Tensor, "h w 1"]:
        """Edit one training view under its rendered relevance mask; returns the mask."""
        return self.edit_views([index])[0]

    @torch.no_grad()
    def edit_views(self, indices: Sequence[int]) -> list[Bool[Tensor, "h w 1"]]:
        """Edit training views in one editor call, each under its own edit mask; returns their masks.

        Four steps: draw the noise strength the views share, find each view's mask (rendering what the edit
        needs), prepare the editor's inputs, edit and write back. A view with an empty mask skips the editor
        (nothing may change) but still takes its turn: ``edits_done`` counts edit turns, so the order moves on.
        """
        assert self.editor is not None
        strength = self.draw_strength()
        from_noise = strength >= 1.0
        crops = self.edit_config.crop_margin is not None and self.edit_config.threshold > 0
        masks, renders = self._masks_and_renders(indices, colours=not (from_noise or crops))
        edited = [index for index in indices if masks[index].any()]
        for index in indices:
            if index not in edited:
                self.edits_skipped += 1
                CONSOLE.print(
                    f"[yellow]View {index}: empty edit mask, editor skipped ({self.edits_skipped} skipped in this run)"
                )
        if edited:
            inputs = self._editor_inputs(edited, masks, renders, from_noise, crops)
            images, result_masks = self._run_editor(edited, inputs, masks, strength)
            for row, index in enumerate(edited):
                self._write_back(index, images[row : row + 1], result_masks[row : row + 1], strength)
                masks[index] = _to_hwc(result_masks[row : row + 1])
        for index in indices:
            self._end_turn(index)
        return [masks[index] for index in indices]

    def draw_strength(self) -> float:
        """The noise strength of the next edit, drawn in ``strength_range`` (IN2N), at least one DDIM step."""
        low, high = self.strength_range
        strength = low + (high - low) * torch.rand((), generator=self.generator).item()
        if self.edit_config.schedule == "truncate":
            strength = max(strength, 1.0 / self.edit_config.steps)
        return strength

    def _masks_and_renders(
        self, indices: Sequence[int], colours: bool
    ) -> tuple[dict[int, Bool[Tensor, "h w 1"]], dict[int, Tensor | None]]:
        """Each view's edit mask and, with ``colours``, its render at the editor's working size. While the field
        warms up the masks are the views' own 2D maps, known without rendering."""
        masks, renders = {}, {}
        for index in indices:
            if self.warming_up:
                masks[index], renders[index] = self.own_mask(index), None
            else:
                masks[index], renders[index] = self.render_for_edit(index, colours)
            masks[index] = masks[index] & ~self.kept_region(index).to(masks[index].device)
        return masks, renders

    def kept_region(self, index: int) -> Bool[Tensor, "h w 1"]:
        """The pixels of view ``index`` no edit of this run may change: what earlier edits of the chain changed
        (``keep_earlier_edits``, with a mask threshold above 0)."""
        earlier = self.datamanager.earlier_edits
        if earlier is None or not self.config.keep_earlier_edits or self.edit_config.threshold <= 0:
            return torch.zeros(self.view_size(index) + (1,), dtype=torch.bool)
        return earlier[index]

    def _editor_inputs(
        self,
        indices: Sequence[int],
        masks: dict[int, Bool[Tensor, "h w 1"]],
        renders: dict[int, Tensor | None],
        from_noise: bool,
        crops: bool,
    ) -> dict[int, Float[Tensor, "1 3 h w"]]:
        """What the editor starts each view from. From pure noise (strength 1) a render would only be the
        background that the masked edit keeps outside the mask; the view's training image, into which the edit is
        written, is that background exactly, so it is edited instead of a render. An edit that crops renders only
        the box the editor will see (one box for the call); otherwise the render of ``_masks_and_renders``."""
        window = None
        if crops and not from_noise:
            window = crop_box(
                torch.stack([masks[index] for index in indices]).permute(0, 3, 1, 2), self.edit_config.crop_margin
            )
        inputs = {}
        for index in indices:
            if from_noise:
                rgb = self.datamanager.image(index)
            elif renders[index] is not None:
                rgb = renders[index]
            else:
                rgb = self._render_rgb(index, window)
            inputs[index] = _to_chw(rgb.clamp(0.0, 1.0))
        return inputs

    def _run_editor(
        self,
        indices: Sequence[int],
        inputs: dict[int, Float[Tensor, "1 3 h w"]],
        masks: dict[int, Bool[Tensor, "h w 1"]],
        strength: float,
    ) -> tuple[Float[Tensor, "b 3 H W"], Bool[Tensor, "b 1 H W"]]:
        """One editor call over the views, conditioned on their original photos; edits and masks at the views'
        size (an edit at the working size is brought back over the photos)."""
        size = tuple(inputs[indices[0]].shape[-2:])  # the view's, or the editor's working size
        condition = torch.cat([_to_chw(self.datamanager.original_image(index)) for index in indices])
        # the masks as booleans: resized as masks and thresholded once, whatever the edit threshold
        relevance = torch.cat([masks[index].permute(2, 0, 1)[None] for index in indices])
        result = self.editor.edit(
            torch.cat([inputs[index] for index in indices]),
            self.text,
            condition=resize(condition, size),  # as the editor shrinks a view to its working size
            relevance=resize(relevance, size),
            config=dataclasses.replace(self.edit_config, strength=strength),
            generator=self.generator,
            resolution=self.config.edit_resolution,
            condition_ids=list(indices),  # each view's photo, encoded once
        )
        images, result_masks = result.images, result.mask
        if size != self.view_size(indices[0]):
            images, result_masks = restore_size(images, result_masks, condition.to(images.device))
        return images, result_masks

    def _render_rgb(self, index: int, window: tuple[int, int, int, int] | None) -> Float[Tensor, "h w 3"]:
        """The view's colours for an edit: rendered in ``window`` only, its training image elsewhere, or without
        one, the whole view at the editor's working size (``edit_grid``)."""
        if window is None:
            return self.render_view(index, grid=self.edit_grid(self.view_size(index), colours=True))["rgb"]
        top, bottom, left, right = window
        rgb = self.datamanager.image(index).clone()
        rgb[top:bottom, left:right] = self.render_view(index, window)["rgb"].to(rgb.device)
        return rgb

    def own_mask(self, index: int) -> Bool[Tensor, "h w 1"]:
        """The edit mask of view ``index``'s own 2D relevance target, binarised as a rendered one."""
        return edit_mask(self.datamanager.relevance(index), self.edit_config.threshold)

    def _write_back(
        self, index: int, edited: Float[Tensor, "1 3 h w"], mask: Bool[Tensor, "1 1 h w"], strength: float
    ) -> None:
        """Write an edit into view ``index``'s training image: the edit inside ``mask``, the original photo outside
        it; a strong edit that changed the masked pixels less than ``settle_tolerance`` settles the view.

        Outside its current mask a view is what was captured: an earlier edit under a looser mask (a warm-up
        edit's 2D map, a mask the field has since sharpened) does not outlive the view's next edit.
        """
        current = _to_chw(self.datamanager.image(index)).to(edited.device)
        original = _to_chw(self.datamanager.original_image(index)).to(edited.device)
        updated = composite(edited.float(), original, mask)
        change = (updated - current)[mask.expand_as(updated)].abs().mean().item()
        self.datamanager.set_image(index, _to_hwc(updated))
        if strength >= SETTLE_MIN_STRENGTH and change < self.config.settle_tolerance:
            self.settled.add(index)
            CONSOLE.print(
                f"View {index} has settled: its edit changed it by {change:.3f} "
                f"({len(self.settled)} of {self.datamanager.num_views} settled)"
            )

    def _end_turn(self, index: int) -> None:
        """Count the edit turn and save the view as it now is (a resumed run continues the view order)."""
        self.edits_done += 1
        if self.store is not None:
            self.store.save_view(index, self.datamanager.image_pixels(index))
            self._write_record()

    # ---- schedule -----------------------------------------------------------------------------

    def next_view(self) -> int:
        """The view the next edit takes: training views in a seeded order, cycled (resumed runs continue it)."""
        return self.view_order[self.edits_done % len(self.view_order)]

    def plan_edit_step(self) -> EditPlan:
        """The views of the next edit step: the next ``views_per_edit`` (each view once at most) in the seeded
        order, passing over settled views. A query: taking the turns is the edit's (and ``take_passed_turns``)."""
        views: list[int] = []
        count = min(self.config.views_per_edit, len(self.view_order) - len(self.settled))
        passed = 0
        while len(views) < count:
            index = self.view_order[(self.edits_done + passed + len(views)) % len(self.view_order)]
            if index in self.settled:
                passed += 1
            else:
                views.append(index)
        return EditPlan(views, passed)

    def is_edit_step(self, step: int) -> bool:
        """Whether ``step`` edits: after the edit start, every ``edit_rate`` steps, unless paused."""
        if self.editing_paused or self.edits_start is None or step < self.edits_start:
            return False
        return (step - self.edits_start) % self.config.edit_rate == 0

    def _before_step(self, step: int) -> None:
        self.step = step
        if self.editor is None:
            return
        if self.targets_stale and self.edit_config.threshold > 0:  # threshold 0 (IN2N) edits without relevance
            self.compute_relevance_targets()
            self.field_ready = step + self.config.relevance_warmup_steps
            self.edits_start = step if self.config.edit_during_warmup else self.field_ready
        elif self.edits_start is None:  # targets restored from an earlier run (or none needed): no warm-up
            self.edits_start = self.field_ready = step
        if not self.is_edit_step(step):
            return
        if self.config.first_round and step == self.edits_start and not self.edits_done:
            plan = EditPlan(list(self.view_order))
        else:
            plan = self.plan_edit_step()
        self.edits_done += plan.passed
        batch = self.config.editor_batch_size
        for start in range(0, len(plan.views), batch):
            self.edit_views(plan.views[start : start + batch])

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        callbacks.append(
            TrainingCallback(where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], func=self._before_step)
        )
        return callbacks
