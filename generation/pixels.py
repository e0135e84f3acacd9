"""The VAE's view of video: uint8 frames (…, F, H, W, 3) <-> float pixels (…, 3, F, H, W) in [-1, 1].

One convention for every path that feeds a pipeline's VAE or reads its decoder back: the engine's
conditioned generation, the LoRA trainer's dataset and the toy-world recipe.
"""
from __future__ import annotations

import numpy as np
import torch


def frames_to_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (…, F, H, W, 3) -> float (…, 3, F, H, W) in [-1, 1], as the pipeline's VAE sees video."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0)
    return video.movedim(-1, -4).contiguous()


def pixels_to_frames(pixels: torch.Tensor) -> np.ndarray:
    """float (…, 3, F, H, W) in [-1, 1] (a decoder's output) -> uint8 frames (…, F, H, W, 3)."""
    return pixels.float().clamp(-1, 1).add(1).mul(127.5).round().byte().movedim(-4, -1).cpu().numpy()


def encode_frames(vae, frames: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """uint8 clips (B, F, H, W, 3) -> the latents a Wan-layout transformer works on (B, C, T, h, w):
    the VAE's posterior mean, normalised as the pipeline un-normalises before decoding. `device`:
    where the pixels go (the pipeline's execution device under CPU offload); default the VAE's."""
    with torch.no_grad():
        z = vae.encode(frames_to_pixels(frames).to(device or vae.device, vae.dtype)).latent_dist.mean.float()
    mean = torch.tensor(vae.config.latents_mean, device=z.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=z.device).view(1, -1, 1, 1, 1)
    return (z - mean) / std
