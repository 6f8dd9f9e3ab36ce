"""EditAction fine-tuning: loss signs, frozen cross-attention, exact resume, exported checkpoint."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline
from PIL import Image
from safetensors.torch import load_file

from editaction import EditConfig, Editor
from editaction.train import trainer as trainer_module
from editaction.train.action_pairs import extract_action_pairs
from editaction.train.config import TrainConfig, load_config
from editaction.train.dataset import EDITED_KEY, INPUT_KEY, METADATA_FILE, PROMPT_KEY, DatasetError, read_metadata
from editaction.train.losses import (
    action_loss,
    changed_region_weights,
    per_sample_error,
    total_loss,
)
from editaction.train.negatives import NoNegativeError, content_tokens, disjoint_candidates, sample_negatives
from editaction.train.trainer import EditActionTrainer, TrainingSetupError, denoising_target
from tests.conftest import REPO
from toyworld.tiny import IP2PArchitecture, build_clip_tokenizer, build_pipeline, save_pipeline
from toyworld.videos import write_action_videos


@pytest.fixture(scope="module")
def action_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("actions")
    annotations = write_action_videos(root / "videos", videos=4, size=32)
    report = extract_action_pairs(root / "videos", annotations, root / "data")
    assert report.written == 8 and not report.skipped
    return root / "data"


def smoke_config(tiny_checkpoint, data, out, **overrides) -> TrainConfig:
    base = load_config(REPO / "configs" / "editaction_cpu_smoke.yaml")
    values = dict(
        model=str(tiny_checkpoint),
        data_dir=data,
        output_dir=out,
        resolution=32,
        batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=3,
        checkpoint_every=100,
        log_every=1,
    )
    return replace(base, **{**values, **overrides})


def test_action_loss_matches_hand_computed_values():
    e_right, e_negative = torch.tensor([0.2, 1.0, 0.5]), torch.tensor([0.7, 0.4, 0.5])
    expected = [torch.log1p(torch.exp(torch.tensor(d))).item() for d in (-0.5, 0.6, 0.0)]
    assert torch.allclose(action_loss(e_right, e_negative), torch.tensor(expected))
    # = -log(exp(-e_T) / (exp(-e_T) + exp(-e_T')))
    softmax = -torch.log(torch.exp(-e_right) / (torch.exp(-e_right) + torch.exp(-e_negative)))
    assert torch.allclose(action_loss(e_right, e_negative), softmax)


def test_action_loss_gradient_favours_the_right_instruction():
    e_right = torch.tensor([0.5], requires_grad=True)
    e_negative = torch.tensor([0.5], requires_grad=True)
    action_loss(e_right, e_negative).sum().backward()
    assert e_right.grad.item() > 0 > e_negative.grad.item()  # descent lowers e_T and raises e_T'


def test_per_sample_error_is_mean_over_chw():
    prediction, target = torch.zeros(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    prediction[1] = 2.0
    assert per_sample_error(prediction, target).tolist() == [0.0, 4.0]


def test_per_sample_error_weighs_each_cell():
    prediction, target = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    weights = torch.tensor([[[[1.0, 1.0], [1.0, 5.0]]]])
    assert per_sample_error(prediction, target, weights).tolist() == [2.0]  # (1 + 1 + 1 + 5) / 4


def test_changed_region_weights_mark_the_cells_the_edit_touched():
    source = torch.zeros(1, 3, 8, 8)
    edited = source.clone()
    edited[0, 1, 5, 6] = 0.5  # changed: lands in latent cell (1, 1) of a 2 x 2 grid
    edited[0, 0, 0, 0] = 0.01  # within the tolerance: unchanged
    weights = changed_region_weights(edited, source, (2, 2), weight=10.0, tolerance=0.05)
    assert weights.tolist() == [[[[1.0, 1.0], [1.0, 10.0]]]]
    assert torch.equal(changed_region_weights(source, source, (2, 2), 10.0, 0.05), torch.ones(1, 1, 2, 2))


def test_total_loss_weights_each_term_and_skips_absent_ones():
    static, action, regularisation = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)
    assert total_loss(static, action, regularisation, lambda_action=0.5, lambda_reg=0.01).item() == pytest.approx(2.03)
    assert total_loss(static, None, None, lambda_action=0.5, lambda_reg=0.01).item() == 1.0


def test_negatives_never_share_a_token():
    tokenizer = build_clip_tokenizer()
    instructions = ["open the drawer", "close the drawer", "pour water into a cup", "slice red onion", "open a cup"]
    candidates = disjoint_candidates(tokenizer, instructions)
    generator = torch.Generator().manual_seed(0)
    ids = torch.arange(len(instructions)).repeat(40)
    for right, negative in zip(ids.tolist(), sample_negatives(candidates, ids, generator).tolist(), strict=True):
        assert right != negative
        assert not content_tokens(tokenizer, instructions[right]) & content_tokens(tokenizer, instructions[negative])
    assert content_tokens(tokenizer, "open the drawer") == content_tokens(tokenizer, "Open  the drawer")
    with pytest.raises(NoNegativeError, match="open the drawer"):
        disjoint_candidates(tokenizer, ["open the drawer", "close the drawer"])


REAL_CAPTIONS = [  # Something-Something-like: nearly every caption shares "the" or "a" with every other
    "close the lid of a box",
    "open the drawer",
    "push the cup to the left",
    "fold the towel",
    "pour water into a glass",
    "pick up a pen",
    "turn on the lamp",
    "wipe the table with a cloth",
    "put a book on the shelf",
]


def test_real_captions_find_negatives_when_stop_words_are_ignored():
    tokenizer = build_clip_tokenizer()
    candidates = disjoint_candidates(tokenizer, REAL_CAPTIONS)
    assert len(candidates[0]) == len(REAL_CAPTIONS) - 1  # "close the lid of a box" vs all others
    templates = [
        "pushing [something] from left to right",
        "putting [something] into [something]",
        "opening a drawer",
        "Closing the lid of a box.",
    ]
    assert all(len(options) == 3 for options in disjoint_candidates(tokenizer, templates))
    assert content_tokens(tokenizer, "Close the lid, of a BOX!") == content_tokens(tokenizer, "close lid box")


def test_a_shared_content_word_is_no_negative_and_the_strict_rule_counts_every_token():
    tokenizer = build_clip_tokenizer()
    captions = ["open the box", "open the drawer", "fold a towel"]
    assert [c.tolist() for c in disjoint_candidates(tokenizer, captions)] == [[2], [2], [0, 1]]
    with pytest.raises(NoNegativeError, match="close the lid of a box"):
        disjoint_candidates(tokenizer, REAL_CAPTIONS, ignore_stop_words=False)
    assert [c.tolist() for c in disjoint_candidates(tokenizer, captions, ignore_stop_words=False)] == [[2], [2], [0, 1]]


def _caption_data(root: Path, captions: list[str]) -> Path:
    """An edit-pair data set of blank 32-pixel images, one pair per caption."""
    records = []
    for index, caption in enumerate(captions):
        for folder in ("inputs", "edited"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32)).save(root / folder / f"{index}.png")
        records.append({INPUT_KEY: f"inputs/{index}.png", EDITED_KEY: f"edited/{index}.png", PROMPT_KEY: caption})
    (root / METADATA_FILE).write_text("".join(json.dumps(record) + "\n" for record in records))
    return root


def test_the_trainer_uses_the_stop_word_setting(tiny_checkpoint, tmp_path):
    data = _caption_data(tmp_path / "data", REAL_CAPTIONS)
    trainer = EditActionTrainer(smoke_config(tiny_checkpoint, data, tmp_path / "run"))
    assert len(trainer.negatives[trainer.dataset.instructions.index(REAL_CAPTIONS[0])]) == len(REAL_CAPTIONS) - 1
    with pytest.raises(NoNegativeError, match="close the lid of a box"):
        EditActionTrainer(smoke_config(tiny_checkpoint, data, tmp_path / "strict", ignore_stop_words=False))


def test_dropped_text_learns_the_input_only_when_asked():
    edited, source = torch.ones(3, 4, 2, 2), torch.zeros(3, 4, 2, 2)
    drop_text = torch.tensor([True, False, True])
    assert torch.equal(denoising_target(edited, source, drop_text, "edited"), edited)
    target = denoising_target(edited, source, drop_text, "input")
    assert target[:, 0, 0, 0].tolist() == [0.0, 1.0, 0.0]


def test_extraction_reports_and_skips_bad_rows(tmp_path):
    annotations = write_action_videos(tmp_path / "videos", videos=1, size=32)
    with annotations.open("a") as handle:
        handle.write(
            "video_000.mp4,0.5,99,beyond the end\nmissing.mp4,0,1,no such video\nvideo_000.mp4,1,0.5,reversed\n"
        )
    report = extract_action_pairs(tmp_path / "videos", annotations, tmp_path / "data")
    assert report.written == 2 and len(report.skipped) == 3
    assert "outside the video" in report.skipped[0] and "cannot open video" in report.skipped[1]
    assert len(read_metadata(tmp_path / "data")) == 2
    with pytest.raises(DatasetError, match="not empty"):
        extract_action_pairs(tmp_path / "videos", annotations, tmp_path / "data")


def test_training_freezes_cross_attention_and_keeps_reference(tiny_checkpoint, action_data, tmp_path):
    """Without weight decay a tensor changes only where the loss's gradient reaches it: all but attn2."""
    config = smoke_config(tiny_checkpoint, action_data, tmp_path / "run", max_steps=2, adam_weight_decay=0.0)
    trainer = EditActionTrainer(config)
    unet = trainer.accelerator.unwrap_model(trainer.unet)
    start = {name: param.detach().clone() for name, param in unet.named_parameters()}
    reference_start = {name: p.detach().clone() for name, p in trainer.reference_unet.named_parameters()}
    batch = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=2)))
    first = trainer.compute_losses(batch, torch.Generator().manual_seed(0))
    assert first.regularisation.item() < 1e-10  # the fine-tuned UNet starts as the reference
    assert first.action is not None
    first.total.backward()
    for name, param in unet.named_parameters():
        if ".attn2." in name:
            assert param.grad is None and not param.requires_grad, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    trainer.optimizer.zero_grad(set_to_none=True)
    final = trainer.train()

    cross = [name for name in start if ".attn2." in name]
    assert cross
    for name, param in unet.named_parameters():
        if ".attn2." in name:
            assert torch.equal(param, start[name]), name
    changed = [name for name, param in unet.named_parameters() if not torch.equal(param, start[name])]
    assert len(changed) == len(start) - len(cross)
    for name, param in trainer.reference_unet.named_parameters():
        assert torch.equal(param, reference_start[name])

    # the export is a complete diffusers IP2P checkpoint that the 2D editor uses
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(final)
    assert torch.equal(pipe.unet.state_dict()["conv_in.weight"], unet.state_dict()["conv_in.weight"])
    editor = Editor.from_pretrained(final, device="cpu")
    editor.set_progress_bar(False)
    image = torch.rand(1, 3, 32, 32)
    result = editor.edit(image, "slide red square left", relevance=torch.ones(1, 1, 32, 32), config=EditConfig(steps=2))
    assert result.images.shape == image.shape
    logs = list((tmp_path / "run" / "editaction").rglob("events.out.tfevents*"))
    assert logs  # tensorboard


@pytest.fixture
def action_trainer(tiny_checkpoint, action_data, tmp_path, monkeypatch):
    """A trainer whose every sample has its full conditioning (no dropout), and a record of each loss computation:
    the UNet's right- and negative-instruction predictions and the noise they are scored against."""
    config = smoke_config(
        tiny_checkpoint, action_data, tmp_path / "run", conditioning_dropout=0.0, lambda_reg=0.0, adam_weight_decay=0.0
    )
    trainer = EditActionTrainer(config)
    trainer.calls = []
    trainer.targets = []
    unet = trainer.accelerator.unwrap_model(trainer.unet)
    record = lambda module, args, kwargs, output: trainer.calls.append(  # noqa: E731
        (kwargs["encoder_hidden_states"].detach(), output.sample.detach())
    )
    hook = unet.register_forward_hook(record, with_kwargs=True)

    def recording_error(prediction, target, weights=None):
        trainer.targets.append(target.detach())
        return per_sample_error(prediction, target, weights)

    monkeypatch.setattr(trainer_module, "per_sample_error", recording_error)
    yield trainer
    hook.remove()


def _errors_by_hand(trainer, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """e(c_T) and e(c_T') of the last loss computation: mean squared error of each branch against the noise."""
    texts, prediction = trainer.calls[-1]
    noise = trainer.targets[-1]
    size = batch["instruction"].shape[0]
    right = trainer.instruction_embeddings[batch["instruction"]]
    assert torch.equal(texts[:size], right) and not torch.equal(texts[size:], right)
    right_error = (prediction[:size] - noise).pow(2).mean(dim=(1, 2, 3))
    negative_error = (prediction[size:] - noise).pow(2).mean(dim=(1, 2, 3))
    return right_error, negative_error


def test_the_action_term_is_softplus_of_the_right_minus_the_negative_error(action_trainer):
    batch = next(iter(torch.utils.data.DataLoader(action_trainer.dataset, batch_size=2)))
    losses = action_trainer.compute_losses(batch, torch.Generator().manual_seed(0))
    right, negative = _errors_by_hand(action_trainer, batch)
    assert (right - negative).abs().min() > 1e-4  # the sign of the difference matters
    assert losses.action.item() == pytest.approx(torch.log1p(torch.exp(right - negative)).mean().item(), rel=1e-5)
    assert losses.static.item() == pytest.approx(right.mean().item(), rel=1e-5)


def test_the_action_loss_alone_fits_the_right_instruction_better_than_the_negative(action_trainer):
    """A few optimiser steps on L_action alone, on one batch with fixed noise: e(c_T) - e(c_T') goes down."""
    batch = next(iter(torch.utils.data.DataLoader(action_trainer.dataset, batch_size=2)))
    gaps = []
    for _ in range(4):
        losses = action_trainer.compute_losses(batch, torch.Generator().manual_seed(0))
        right, negative = _errors_by_hand(action_trainer, batch)
        gaps.append((right - negative).mean().item())
        losses.action.backward()
        action_trainer.optimizer.step()
        action_trainer.optimizer.zero_grad(set_to_none=True)
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps


def test_unfrozen_cross_attention_and_no_reference(tiny_checkpoint, action_data, tmp_path):
    """Without weight decay, every attn2 tensor changes only if the loss's gradient reaches it."""
    config = smoke_config(
        tiny_checkpoint,
        action_data,
        tmp_path / "run",
        max_steps=1,
        freeze_cross_attention=False,
        lambda_reg=0.0,
        adam_weight_decay=0.0,
    )
    trainer = EditActionTrainer(config)
    assert trainer.reference_unet is None
    unet = trainer.accelerator.unwrap_model(trainer.unet)
    before = {n: p.detach().clone() for n, p in unet.named_parameters() if ".attn2." in n}
    trainer.train()
    assert all(not torch.equal(p, before[n]) for n, p in unet.named_parameters() if ".attn2." in n)


def test_resume_continues_bit_for_bit(tiny_checkpoint, action_data, tmp_path):
    straight = smoke_config(tiny_checkpoint, action_data, tmp_path / "straight", max_steps=4, use_ema=True)
    EditActionTrainer(straight).train()

    split = smoke_config(tiny_checkpoint, action_data, tmp_path / "split", max_steps=2, use_ema=True)
    EditActionTrainer(split).train()
    assert (tmp_path / "split" / "checkpoints" / "step-0000002").is_dir()
    with pytest.raises(TrainingSetupError, match="--resume latest"):
        EditActionTrainer(replace(split, max_steps=4))
    EditActionTrainer(replace(split, max_steps=4, resume="latest")).train()

    one = load_file(tmp_path / "straight" / "checkpoints" / "step-0000004" / "unet.safetensors")
    two = load_file(tmp_path / "split" / "checkpoints" / "step-0000004" / "unet.safetensors")
    assert all(torch.equal(one[name], two[name]) for name in one)
    assert json.loads((tmp_path / "split" / "checkpoints" / "step-0000004" / "trainer_state.json").read_text()) == {
        "step": 4
    }
    exported_one = load_file(next((tmp_path / "straight" / "final" / "unet").glob("*.safetensors")))
    exported_two = load_file(next((tmp_path / "split" / "final" / "unet").glob("*.safetensors")))
    assert all(torch.equal(exported_one[name], exported_two[name]) for name in exported_one)  # EMA weights


def test_never_writes_into_the_starting_checkpoint(tiny_checkpoint, action_data):
    with pytest.raises(TrainingSetupError, match="inside the starting checkpoint"):
        EditActionTrainer(smoke_config(tiny_checkpoint, action_data, tiny_checkpoint / "run"))


def test_preset_rejects_unknown_settings(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("max_step: 10\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(preset)
    for name in ("editaction_paper.yaml", "editaction_cpu_smoke.yaml"):
        load_config(REPO / "configs" / name)


def test_cosine_schedule_warms_up_then_decays_to_zero(tiny_checkpoint, action_data, tmp_path):
    config = smoke_config(
        tiny_checkpoint, action_data, tmp_path / "run", max_steps=4, learning_rate=1e-3, lr_scheduler="cosine",
        lr_warmup_steps=1,
    )  # fmt: skip
    trainer = EditActionTrainer(config)
    logged = []
    trainer.accelerator.log = lambda values, step: logged.append((step, values["lr"]))
    trainer.train()
    # warm-up ends at the peak after step 1, then 1e-3 * (1 + cos(pi * k / 3)) / 2 over the 3 steps left
    assert [step for step, _ in logged] == [1, 2, 3, 4]
    assert [lr for _, lr in logged] == pytest.approx([1e-3, 7.5e-4, 2.5e-4, 0.0], abs=1e-9)


@pytest.fixture(scope="module")
def v_prediction_checkpoint(tmp_path_factory) -> Path:
    pipe = build_pipeline(IP2PArchitecture(prediction_type="v_prediction"), seed=0)
    return save_pipeline(pipe, tmp_path_factory.mktemp("tiny-ip2p-v"))


def test_the_target_follows_the_checkpoints_prediction_type(
    tiny_checkpoint, v_prediction_checkpoint, action_data, tmp_path
):
    latents, noise = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    timesteps = torch.tensor([10, 900])
    epsilon = EditActionTrainer(smoke_config(tiny_checkpoint, action_data, tmp_path / "eps"))
    assert torch.equal(epsilon.prediction_target(latents, noise, timesteps), noise)
    velocity = EditActionTrainer(smoke_config(v_prediction_checkpoint, action_data, tmp_path / "v"))
    alpha = velocity.pipe.scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
    expected = alpha.sqrt() * noise - (1 - alpha).sqrt() * latents  # v (Salimans & Ho 2022)
    assert torch.allclose(velocity.prediction_target(latents, noise, timesteps), expected, atol=1e-6)
    velocity.train()  # and it trains to an export the editor loads
    editor = Editor.from_pretrained(velocity.final_dir, device="cpu")
    assert editor.pipe.scheduler.config.prediction_type == "v_prediction"


def test_the_changed_region_weight_raises_the_loss_only_where_the_edit_is(tiny_checkpoint, action_data, tmp_path):
    settings = dict(conditioning_dropout=0.0, lambda_action=0.0, lambda_reg=0.0)
    plain = EditActionTrainer(smoke_config(tiny_checkpoint, action_data, tmp_path / "plain", **settings))
    weighted = EditActionTrainer(
        smoke_config(tiny_checkpoint, action_data, tmp_path / "weighted", changed_region_weight=10.0, **settings)
    )
    batch = next(iter(torch.utils.data.DataLoader(plain.dataset, batch_size=2)))
    losses = [t.compute_losses(batch, torch.Generator().manual_seed(0)).static.item() for t in (plain, weighted)]
    assert losses[1] > 1.5 * losses[0]  # the moved object's cells count ten times
    unchanged = {**batch, "edited": batch["input"]}
    losses = [t.compute_losses(unchanged, torch.Generator().manual_seed(0)).static.item() for t in (plain, weighted)]
    assert losses[1] == pytest.approx(losses[0])


def test_a_changed_region_weight_below_one_is_refused():
    with pytest.raises(ValueError, match="changed_region_weight"):
        TrainConfig(changed_region_weight=0.5)
