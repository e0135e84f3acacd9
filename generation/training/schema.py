"""Plain types of the LoRA trainer: what goes in, what comes out, and how a run stops early.

Kept free of torch so that code which only builds requests or reads results (the web process,
Celery task signatures) can import them without loading the ML stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SampleKind = Literal["image", "clip"]
SAMPLE_KINDS: tuple[str, ...] = ("image", "clip")


@dataclass(frozen=True)
class TrainingSample:
    """One brand asset to learn from: an image (trained as a one-frame clip) or a short clip."""

    path: Path
    kind: SampleKind
    # Used verbatim: the caller puts the brand's trigger token in it.
    caption: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.kind not in SAMPLE_KINDS:
            raise ValueError(f"TrainingSample.kind must be one of {', '.join(SAMPLE_KINDS)}; got {self.kind!r}.")
        if not isinstance(self.caption, str) or not self.caption.strip():
            raise ValueError(
                f"TrainingSample.caption must be a non-empty string; got {self.caption!r} for {self.path}."
            )


def asset_caption(*, trigger_token: str, caption: str, style_notes: str, brand_name: str) -> str:
    """The caption a brand asset trains with: the brand's trigger token, then the asset's own
    caption (or the brand's style notes, or its name). Generation prompts start with the same token."""
    return f"{trigger_token}, {caption or style_notes or brand_name}"


@dataclass(frozen=True)
class TrainingResult:
    """What a finished run produced."""

    # The diffusers-format LoRA file (`pytorch_lora_weights.safetensors`), loadable with stock
    # `pipe.load_lora_weights(lora_path)`.
    lora_path: Path
    # One loss per optimisation step, from step 1 (restored from the checkpoint on resume).
    losses: list[float]
    steps: int
    # JSON-serialisable record of how the LoRA was made (hyperparameters, sizes, device, resume).
    parameters: dict[str, Any] = field(default_factory=dict)


class TrainingCancelled(Exception):
    """Raised when `on_step` returned False: the run stopped between two steps."""

    def __init__(self, step: int, total: int) -> None:
        super().__init__(f"LoRA training cancelled after step {step} of {total}.")
        self.step = step
        self.total = total
