"""Training the toy editor's VAE from scratch: a diffusers ``AutoencoderKL`` on toy-world images.

The toy VAE has three levels (stride 4, so 64 px images give 16x16 latents): small
objects keep several latent cells each. Loss: L1 + MSE reconstruction of a posterior
sample plus a small KL term (Stable Diffusion's VAE uses KL weight 1e-6 beside its
perceptual and GAN terms, which a CPU budget does not allow). The latent scaling factor
is set from the data (1 / std of the latents), as Stable Diffusion's 0.18215 was.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

from editaction.images import read_image


def load_images(paths: Sequence[Path]) -> torch.Tensor:
    """(N, 3, H, W) floats in [0, 1]."""
    return torch.stack([read_image(path).rgb for path in paths])


def train_autoencoder(
    vae: AutoencoderKL,
    images: torch.Tensor,
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    kl_weight: float = 1e-6,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``vae`` in place on ``images`` in [0, 1]; sets its scaling factor; returns final metrics."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=learning_rate * 0.05)
    vae.train()
    progress = tqdm(range(steps), desc="toy VAE", unit="step")
    for _ in progress:
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)] * 2 - 1
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator)).sample
        reconstruction_loss = F.l1_loss(reconstruction, batch) + F.mse_loss(reconstruction, batch)
        loss = reconstruction_loss + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        progress.set_postfix(loss=f"{reconstruction_loss.item():.4f}")
    vae.eval()
    with torch.no_grad():
        sample = images[:256] * 2 - 1
        latents = vae.encode(sample).latent_dist.mode()
        decoded = vae.decode(latents).sample.clamp(-1, 1)
        mse = F.mse_loss((decoded + 1) / 2, (sample + 1) / 2).item()
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    return {"psnr": float(-10 * torch.log10(torch.tensor(mse))), "scaling_factor": vae.config.scaling_factor}
