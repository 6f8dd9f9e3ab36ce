"""Training the toy editor's CLIP text encoder from scratch, contrastively against the edits it names.

CLIP learns text features by matching captions to images; here each instruction is
matched to its edit, seen by a small CNN on the (input, edited) image pair. After this
stage the instruction features separate colours, shapes and directions, so the UNet's
cross-attention starts from meaningful text instead of random features. The edit
encoder is thrown away; only the ``CLIPTextModel`` is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from transformers import CLIPTextModel, CLIPTokenizer


class EditEncoder(nn.Module):
    """(input, edited) image pair -> one feature vector, the image side of the contrastive loss."""

    def __init__(self, dim: int, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 9  # input, edited and their difference
        for out in (width, width * 2, width * 2, width * 4):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(8, out), nn.SiLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.project = nn.Linear(channels, dim)

    def forward(self, inputs: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
        x = torch.cat([inputs, edited, edited - inputs], dim=1) * 2 - 1
        return self.project(self.features(x).mean(dim=(2, 3)))


def train_text_encoder(
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    inputs: torch.Tensor,
    edited: torch.Tensor,
    instructions: Sequence[str],
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``text_encoder`` in place (InfoNCE over a batch, both directions); returns the final accuracy."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    dim = text_encoder.config.hidden_size
    edit_encoder = EditEncoder(dim)
    temperature = nn.Parameter(torch.tensor(2.0))  # log of the inverse temperature, learnt (CLIP)
    params = [*text_encoder.parameters(), *edit_encoder.parameters(), temperature]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=learning_rate * 0.05)
    tokens = tokenizer(
        list(instructions), padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids
    text_encoder.train()
    accuracy = 0.0
    progress = tqdm(range(steps), desc="toy text encoder", unit="step")
    for _ in progress:
        index = torch.randperm(len(tokens), generator=generator)[:batch_size]
        text = F.normalize(text_encoder(tokens[index]).pooler_output, dim=-1)
        image = F.normalize(edit_encoder(inputs[index], edited[index]), dim=-1)
        logits = temperature.exp() * text @ image.T
        # Several samples can share an instruction: every one of them counts as a match.
        same = tokens[index][:, None, :].eq(tokens[index][None, :, :]).all(-1).float()
        targets = same / same.sum(dim=1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        accuracy = same.gather(1, logits.argmax(dim=1, keepdim=True)).mean().item()
        progress.set_postfix(loss=f"{loss.item():.3f}", accuracy=f"{accuracy:.2f}")
    text_encoder.eval()
    return {"contrastive_accuracy": accuracy}
