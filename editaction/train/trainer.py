"""EditAction fine-tuning loop on accelerate (mixed precision, accumulation, multi-GPU, resume).

Every random draw of a micro-batch (data order, timesteps, noise, dropout, negatives)
comes from a generator seeded by (seed, micro-batch, process), never from global RNG
state, so a resumed run continues bit for bit the schedule of an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from jaxtyping import Bool, Float
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from editaction.atomic import atomic_directory
from editaction.editor import Editor, load_pipeline
from editaction.train.config import TrainConfig
from editaction.train.dataset import EditPairDataset
from editaction.train.losses import (
    PREDICTION_TYPES,
    action_loss,
    changed_region_weights,
    per_sample_error,
    prediction_target,
    regularisation_loss,
    total_loss,
)
from editaction.train.negatives import disjoint_candidates, sample_negatives

CROSS_ATTENTION = ".attn2."  # diffusers' name of the text cross-attention in each transformer block
CHECKPOINT_PREFIX = "step-"
UNET_FILE, STATE_FILE = "unet.safetensors", "training_state.pt"


class TrainingSetupError(ValueError):
    """The run cannot start as configured (paths, resume, data)."""


def freeze_cross_attention(unet: torch.nn.Module) -> int:
    """Freeze every cross-attention parameter; returns how many tensors were frozen."""
    frozen = [param for name, param in unet.named_parameters() if CROSS_ATTENTION in name]
    for param in frozen:
        param.requires_grad_(False)
    return len(frozen)


def denoising_target(
    edited: Float[Tensor, "b c h w"],
    source: Float[Tensor, "b c h w"],
    drop_text: Bool[Tensor, " b"],
    dropped_text_target: str,
) -> Float[Tensor, "b c h w"]:
    """The latents each sample learns to produce: the edit, or with "input" the source where the text was dropped."""
    if dropped_text_target == "edited":
        return edited
    return torch.where(drop_text[:, None, None, None], source, edited)


def step_generator(seed: int, micro_step: int, process: int, num_processes: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + micro_step * num_processes + process)


class ResumableBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Index batches addressed by micro-batch number: epoch-wise seeded shuffles, sharded per process."""

    def __init__(self, size: int, batch: int, seed: int, start: int, stop: int, process: int, num_processes: int):
        self.size, self.batch, self.seed = size, batch, seed
        self.start, self.stop = start, stop
        self.process, self.num_processes = process, num_processes
        self._cached_epoch, self._cached_order = -1, torch.empty(0, dtype=torch.long)

    def _order(self, epoch: int) -> torch.Tensor:
        if self._cached_epoch != epoch:  # one shuffle per epoch, a pure function of (seed, epoch)
            generator = torch.Generator().manual_seed(self.seed + 7919 * epoch)
            self._cached_epoch, self._cached_order = epoch, torch.randperm(self.size, generator=generator)
        return self._cached_order

    def __iter__(self) -> Iterator[list[int]]:
        per_micro = self.batch * self.num_processes
        for micro_step in range(self.start, self.stop):
            first = micro_step * per_micro + self.process * self.batch
            positions = range(first, first + self.batch)
            yield [self._order(p // self.size)[p % self.size].item() for p in positions]

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass
class StepLosses:
    total: torch.Tensor
    static: torch.Tensor
    action: torch.Tensor | None
    regularisation: torch.Tensor | None

    def logs(self) -> dict[str, float]:
        values = {"loss/total": self.total, "loss/static": self.static}
        if self.action is not None:
            values["loss/action"] = self.action
        if self.regularisation is not None:
            values["loss/reg"] = self.regularisation
        return {key: value.detach().item() for key, value in values.items()}


class EditActionTrainer:
    """Fine-tunes the UNet of an InstructPix2Pix checkpoint with the EditAction loss."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self._check_paths()
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            log_with="tensorboard",
            project_dir=str(config.output_dir),
        )
        device = self.accelerator.device
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.mixed_precision, torch.float32)
        self.pipe = load_pipeline(config.model, device, torch.float32)
        if self.prediction_type not in PREDICTION_TYPES:
            raise TrainingSetupError(
                f"{config.model}: unsupported scheduler prediction_type {self.prediction_type!r} "
                f"({', '.join(PREDICTION_TYPES)})"
            )
        self.dataset = EditPairDataset(config.data_dir, config.resolution)
        tokenizer = self.pipe.tokenizer
        self.negatives = (
            disjoint_candidates(tokenizer, self.dataset.instructions, config.ignore_stop_words)
            if config.lambda_action
            else None
        )

        vae, text_encoder = self.pipe.vae, self.pipe.text_encoder
        vae.requires_grad_(False)
        text_encoder.requires_grad_(False)
        self.instruction_embeddings, self.empty_embedding = self._embed_instructions()
        if self.weight_dtype != torch.float32:
            vae.to(dtype=self.weight_dtype)
        text_encoder.to("cpu")  # embeddings are precomputed; free the device

        unet = self.pipe.unet
        self.reference_unet = None
        if config.lambda_reg > 0:
            self.reference_unet = UNet2DConditionModel.from_config(unet.config)
            self.reference_unet.load_state_dict(unet.state_dict())
            self.reference_unet.to(device)
            if self.weight_dtype != torch.float32:
                self.reference_unet.to(dtype=self.weight_dtype)
            self.reference_unet.requires_grad_(False).eval()
        if config.freeze_cross_attention:
            freeze_cross_attention(unet)
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        self.trainable = [param for param in unet.parameters() if param.requires_grad]
        self.ema = EMAModel(self.trainable, decay=config.ema_decay) if config.use_ema else None

        optimizer = torch.optim.AdamW(
            self.trainable,
            lr=config.learning_rate,
            betas=(config.adam_beta1, config.adam_beta2),
            weight_decay=config.adam_weight_decay,
            eps=config.adam_epsilon,
        )
        lr_scheduler = get_scheduler(
            config.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=config.lr_warmup_steps * self.accelerator.num_processes,
            num_training_steps=config.max_steps * self.accelerator.num_processes,
        )
        self.unet, self.optimizer, self.lr_scheduler = self.accelerator.prepare(unet, optimizer, lr_scheduler)
        if self.ema is not None:
            self.ema.to(device)
        self.step = 0

    # ---- setup --------------------------------------------------------------------------------

    def _check_paths(self) -> None:
        config = self.config
        output = config.output_dir.resolve()
        model = Path(config.model)
        if model.exists() and (output == model.resolve() or model.resolve() in output.parents):
            raise TrainingSetupError(f"output_dir {config.output_dir} is inside the starting checkpoint {model}")
        if config.resume is None and (self.checkpoint_root.exists() or self.final_dir.exists()):
            raise TrainingSetupError(
                f"{config.output_dir} already holds a run; pass --resume latest to continue it or use a new output_dir"
            )

    @property
    def checkpoint_root(self) -> Path:
        return self.config.output_dir / "checkpoints"

    @property
    def final_dir(self) -> Path:
        return self.config.output_dir / "final"

    def _embed_instructions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of every instruction and of "" once, with the editor's own text encoding."""
        embeddings = Editor(self.pipe).encode_instructions([*self.dataset.instructions, ""]).to(self.weight_dtype)
        return embeddings[:-1], embeddings[-1]

    # ---- one micro-batch ----------------------------------------------------------------------

    def compute_losses(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> StepLosses:
        """The EditAction loss of one micro-batch: shared t and noise for every term."""
        config, device = self.config, self.accelerator.device
        vae, scheduler = self.pipe.vae, self.pipe.scheduler
        size = batch["input"].shape[0]
        with torch.no_grad():
            edited = batch["edited"].to(device, self.weight_dtype) * 2 - 1
            source = batch["input"].to(device, self.weight_dtype) * 2 - 1
            latents = vae.encode(edited).latent_dist.sample(generator) * vae.config.scaling_factor
            image_latents = vae.encode(source).latent_dist.mode()
        noise = torch.randn(latents.shape, generator=generator).to(device, latents.dtype)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (size,), generator=generator).to(device)

        # IP2P conditioning dropout: text for r < 2p, image for p <= r < 3p (both for p <= r < 2p).
        draw, p = torch.rand(size, generator=generator).to(device), config.conditioning_dropout
        drop_text, drop_image = draw < 2 * p, (draw >= p) & (draw < 3 * p)
        source_latents = image_latents * vae.config.scaling_factor
        latents = denoising_target(latents, source_latents, drop_text, config.dropped_text_target)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        target = self.prediction_target(latents, noise, timesteps)
        weights = None
        if config.changed_region_weight != 1:
            weights = changed_region_weights(
                batch["edited"].to(device),
                batch["input"].to(device),
                tuple(latents.shape[-2:]),
                config.changed_region_weight,
                config.changed_region_tolerance,
            )
        right_text = self.instruction_embeddings[batch["instruction"].to(device)]
        text = torch.where(drop_text[:, None, None], self.empty_embedding, right_text)
        image = torch.where(drop_image[:, None, None, None], torch.zeros_like(image_latents), image_latents)

        model_input = torch.cat([noisy, image], dim=1)
        texts, inputs, steps = [text], [model_input], [timesteps]
        if self.negatives is not None:
            negative_ids = sample_negatives(self.negatives, batch["instruction"], generator).to(device)
            texts.append(self.instruction_embeddings[negative_ids])
            inputs.append(torch.cat([noisy, image_latents], dim=1))
            steps.append(timesteps)
        prediction = self.unet(torch.cat(inputs), torch.cat(steps), encoder_hidden_states=torch.cat(texts)).sample
        predicted, *negative = prediction.chunk(len(inputs))

        error = per_sample_error(predicted, target, weights)
        static = error.mean()
        action = None
        if negative:
            complete = ~drop_text & ~drop_image  # the contrast needs the full conditioning
            terms = action_loss(error, per_sample_error(negative[0], target, weights))
            action = terms[complete].mean() if complete.any() else terms.sum() * 0
        regularisation = None
        if self.reference_unet is not None:
            with torch.no_grad():
                reference = self.reference_unet(model_input, timesteps, encoder_hidden_states=text).sample
            regularisation = regularisation_loss(predicted, reference)
        total = total_loss(static, action, regularisation, config.lambda_action, config.lambda_reg)
        return StepLosses(total, static, action, regularisation)

    @property
    def prediction_type(self) -> str:
        """What the UNet predicts: the checkpoint's scheduler config says (IP2P: epsilon)."""
        return self.pipe.scheduler.config.prediction_type

    def prediction_target(
        self, latents: Float[Tensor, "b c h w"], noise: Float[Tensor, "b c h w"], timesteps: Tensor
    ) -> Float[Tensor, "b c h w"]:
        return prediction_target(self.pipe.scheduler, latents, noise, timesteps)

    # ---- loop ---------------------------------------------------------------------------------

    def train(self) -> Path:
        """Run to ``max_steps`` (resuming first if asked) and export ``output_dir/final``."""
        config, accelerator = self.config, self.accelerator
        if config.resume is not None:
            self.load_checkpoint(self._resolve_resume(config.resume))
        accumulation = config.gradient_accumulation_steps
        sampler = ResumableBatchSampler(
            len(self.dataset),
            config.batch_size,
            config.seed,
            start=self.step * accumulation,
            stop=config.max_steps * accumulation,
            process=accelerator.process_index,
            num_processes=accelerator.num_processes,
        )
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=config.num_workers)
        accelerator.init_trackers("editaction", config={k: str(v) for k, v in asdict(config).items()})
        progress = tqdm(
            total=config.max_steps, initial=self.step, desc="EditAction", disable=not accelerator.is_main_process
        )
        micro_step = self.step * accumulation
        for batch in loader:
            generator = step_generator(config.seed, micro_step, accelerator.process_index, accelerator.num_processes)
            with accelerator.accumulate(self.unet):
                losses = self.compute_losses(batch, generator)
                accelerator.backward(losses.total)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(self.trainable, config.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            micro_step += 1
            if not accelerator.sync_gradients:
                continue
            self.step += 1
            if self.ema is not None:
                self.ema.step(self.trainable)
            logs = losses.logs()
            progress.update(1)
            progress.set_postfix({key.split("/")[1]: f"{value:.4f}" for key, value in logs.items()})
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                accelerator.log({**logs, "lr": self.lr_scheduler.get_last_lr()[0]}, step=self.step)
            if self.step % config.checkpoint_every == 0 or self.step == config.max_steps:
                self.save_checkpoint()
        progress.close()
        accelerator.end_training()
        return self.export()

    # ---- checkpoints --------------------------------------------------------------------------

    def _resolve_resume(self, resume: str) -> Path:
        if resume != "latest":
            path = Path(resume)
            if not path.is_dir():
                raise TrainingSetupError(f"checkpoint not found: {path}")
            return path
        found = sorted(self.checkpoint_root.glob(f"{CHECKPOINT_PREFIX}*")) if self.checkpoint_root.exists() else []
        if not found:
            raise TrainingSetupError(f"--resume latest: no checkpoint in {self.checkpoint_root}")
        return found[-1]

    def save_checkpoint(self) -> Path:
        """UNet (safetensors), optimizer, LR schedule and EMA state plus the step, written atomically.

        Everything but the UNet is a plain tensor dict read back with ``weights_only=True``;
        no pickled objects are saved, so loading a checkpoint runs no code.
        """
        accelerator = self.accelerator
        target = self.checkpoint_root / f"{CHECKPOINT_PREFIX}{self.step:07d}"
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            with atomic_directory(target) as staging:
                save_file(accelerator.unwrap_model(self.unet).state_dict(), staging / UNET_FILE)
                state = {"optimizer": self.optimizer.state_dict(), "lr_scheduler": self.lr_scheduler.state_dict()}
                if self.ema is not None:
                    state["ema"] = self.ema.state_dict()
                torch.save(state, staging / STATE_FILE)
                (staging / "trainer_state.json").write_text(json.dumps({"step": self.step}))
            for old in sorted(self.checkpoint_root.glob(f"{CHECKPOINT_PREFIX}*"))[: -self.config.checkpoints_to_keep]:
                shutil.rmtree(old)
        accelerator.wait_for_everyone()
        return target

    def load_checkpoint(self, path: Path) -> None:
        files = [path / name for name in (UNET_FILE, STATE_FILE, "trainer_state.json")]
        if not all(file.is_file() for file in files):
            raise TrainingSetupError(f"{path} is not a complete EditAction checkpoint")
        device = self.accelerator.device
        self.accelerator.unwrap_model(self.unet).load_state_dict(load_file(files[0], device=str(device)))
        state = torch.load(files[1], map_location=device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if (self.ema is not None) != ("ema" in state):
            raise TrainingSetupError(f"{path} was saved with use_ema={'ema' in state}; resume with the same setting")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = json.loads(files[2].read_text())["step"]

    def export(self) -> Path:
        """Write the trained model as a complete diffusers IP2P checkpoint (safetensors), atomically."""
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            unet = accelerator.unwrap_model(self.unet)
            if self.ema is not None:
                self.ema.store(self.trainable)
                self.ema.copy_to(self.trainable)
            pipe = StableDiffusionInstructPix2PixPipeline(
                vae=self.pipe.vae.float(),
                text_encoder=self.pipe.text_encoder,
                tokenizer=self.pipe.tokenizer,
                unet=unet,
                scheduler=self.pipe.scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
            with atomic_directory(self.final_dir) as staging:
                pipe.save_pretrained(staging, safe_serialization=True)
            if self.ema is not None:
                self.ema.restore(self.trainable)
        accelerator.wait_for_everyone()
        return self.final_dir


def train(config: TrainConfig) -> Path:
    return EditActionTrainer(config).train()
