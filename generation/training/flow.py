"""The flow-matching objective, one definition for every trainer (the brand LoRA trainer and
the toy-world recipe), as diffusers' FlowMatchEulerDiscreteScheduler denoises: a clean latent x0
and noise mix at sigma, the model sees timestep = sigma * num_train_timesteps and predicts the
velocity noise - x0. Sigmas are drawn uniformly (diffusers.training_utils, scheme "none") and
shifted the way the scheduler shifts them, so training spends as much effort on each sigma as
inference does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_density_for_timestep_sampling


def sample_sigmas(batch: int, *, shift: float, generator: torch.Generator) -> torch.Tensor:
    """`batch` sigmas in (0, 1), on the CPU (the generator's device): u uniform, then
    shift*u / (1 + (shift-1)*u), the scheduler's own shift."""
    u = compute_density_for_timestep_sampling("none", batch, generator=generator)
    return shift * u / (1 + (shift - 1) * u)


def noisy_and_target(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's input at `sigma` (one per batch item) and the velocity it should predict."""
    s = sigma.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise, noise - x0


def flow_loss(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error in float32 (each sigma weighted alike: diffusers' scheme "none").

    `weight`, broadcastable to the latents (a masked loss), makes it the weighted mean."""
    if weight is None:
        return F.mse_loss(prediction.float(), target.float())
    squared = (prediction.float() - target.float()).pow(2)
    weight = weight.float().expand_as(squared)
    return (squared * weight).sum() / weight.sum().clamp_min(1e-8)
