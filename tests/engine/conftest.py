"""Fixtures for the generation engine tests: one tiny Wan checkpoint and tiny LoRAs per session.

These are plain tests: no database, no Django; everything runs on the CPU in float32 so results
are exact and repeatable (a separate test covers CUDA when a GPU is present).
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Tiny sizes: 9 frames of 48x32 (multiples of 16, not square, so width/height mix-ups show).
TINY_CALL = {
    "prompt": "a cup of coffee on a wooden table, 一杯热咖啡",
    "negative_prompt": "blurry, low quality",
    "num_frames": 9,
    "width": 48,
    "height": 32,
    "steps": 2,
    "guidance": 5.0,
}


@pytest.fixture(scope="session")
def random_model_path(tmp_path_factory) -> Path:
    from generation.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-random")


@pytest.fixture(scope="session")
def engine(random_model_path):
    from generation.engine import Engine

    return Engine(random_model_path, device="cpu")


@pytest.fixture(scope="session")
def vace_engine(tmp_path_factory):
    """The tiny random model in a WanVACEPipeline: the engine's native-condition path."""
    from generation.engine import Engine
    from generation.tiny_model import build_tiny_model

    return Engine(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-random-vace", vace=True), device="cpu")


@pytest.fixture(scope="session")
def make_lora(random_model_path, tmp_path_factory):
    """make_lora(seed) -> folder with a random LoRA for the tiny transformer (diffusers format)."""
    cache: dict[int, Path] = {}

    def make(seed: int) -> Path:
        if seed not in cache:
            cache[seed] = _random_lora(random_model_path, tmp_path_factory.mktemp(f"lora{seed}"), seed=seed)
        return cache[seed]

    return make


def _random_lora(model_path: Path, folder: Path, *, seed: int) -> Path:
    import torch
    from diffusers import WanPipeline, WanTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from generation.families import WAN

    transformer = WanTransformer3DModel.from_pretrained(model_path, subfolder="transformer")
    transformer.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=True, target_modules=list(WAN.lora_target_modules))
    )
    # A trained LoRA has non-zero B; PEFT initialises B to zero (a no-op), so fill it in.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    WanPipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(transformer))
    return folder
