"""LoRA training of a brand's style on the video model, with no Django in sight.

    from generation.training import TrainingSample, train_lora
    result = train_lora(model_path=..., samples=[TrainingSample(path, "image", "sks brand, ...")],
                        output_dir=..., steps=200)
    result.lora_path  # diffusers-format LoRA: pipe.load_lora_weights(result.lora_path)

The plain types import without torch; `train_lora` (and the torch stack) loads on first use, so
code that only builds requests never pays for, or needs, the ML packages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from generation.training.schema import TrainingCancelled, TrainingResult, TrainingSample

if TYPE_CHECKING:
    from generation.training.trainer import train_lora

__all__ = ["TrainingCancelled", "TrainingResult", "TrainingSample", "train_lora"]


def __getattr__(name: str) -> Any:
    if name == "train_lora":
        from generation.training.trainer import train_lora

        return train_lora
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
