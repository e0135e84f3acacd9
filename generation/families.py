"""Model families the engine can run: what each diffusers pipeline accepts, in pure Python.

The web process imports this module to validate a generation request before it is queued, so it
must never import torch or diffusers. The rules below were read from the diffusers 0.42 pipeline
sources (`check_inputs`, `prepare_latents` and the VAE compression ratios):

| family | pipeline | frames | size multiple | why |
|---|---|---|---|---|
| wan | WanPipeline | 4k+1 | 16 | VAE compresses time 4x; `check_inputs` demands /16 (VAE 8 x patch 2) |
| ltx | LTXPipeline | 8k+1 | 32 | VAE compresses time 8x and space 32x; `check_inputs` demands /32 |
| cogvideox | CogVideoXPipeline | 8k+1 | 16 | see below |
| wan (VACE) | WanVACEPipeline | 4k+1 | 16 | Wan's; takes a source video and a mask (edits) |

CogVideoX (1.0) needs more than its pipeline checks. Its VAE compresses time 4x, but decodes latent
frames in slices of 2 and gives 8 frames per even slice: 13 frames (4 latents) come back as 16,
while 9, 17, 25 and 49 (odd latent counts) come back exact, hence 8k+1. `check_inputs` accepts
sizes divisible by 8, yet the transformer patchifies 2x2 latent pixels (VAE 8 x patch 2), so
40x40 fails inside the transformer: /16 is what runs. Both measured with tiny checkpoints.

A pipeline given frames outside its rule silently rounds (Wan logs a warning and rounds down, LTX
and CogVideoX decode a different count than asked): we refuse instead, loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

# Bounds that hold for every family (generation.limits): beyond them a request is a typo or a
# denial of service, not a clip.
from generation.limits import MAX_FRAMES, MAX_SIDE


@dataclass(frozen=True)
class ModelFamily:
    """What one diffusers text-to-video pipeline class accepts and what it defaults to."""

    name: str
    pipeline_class: str
    # num_frames must be frame_multiple * k + 1 (the temporal grid the VAE decodes exactly).
    frame_multiple: int
    # width and height must be multiples of this (spatial VAE ratio x transformer patch size).
    size_multiple: int
    default_steps: int
    default_guidance: float
    default_num_frames: int
    default_width: int
    default_height: int
    default_fps: int
    # The pipeline's own `max_sequence_length` default: encoding with another length changes the
    # embeddings, so the engine encodes with exactly this.
    max_sequence_length: int
    lora_target_modules: tuple[str, ...]
    # Name of the `__call__` argument that takes the frame rate, when the pipeline uses it
    # (LTX conditions its rotary embeddings on it); None when the pipeline ignores fps.
    fps_argument: str | None = None
    # Decode in float32 even when the rest runs in bf16 (Wan's reference code does: its VAE
    # loses detail and colour in bf16).
    vae_in_float32: bool = False
    # The pipeline keeps known pixels itself: it takes the source video and a mask of what to make
    # (`video=`, `mask=`; Wan's VACE), one video a call. The engine hands it an edit's condition
    # instead of blending latents, and records its class as the clip's `conditioning`.
    native_condition: bool = False

    def allowed_frames(self, *, count: int = 4) -> list[int]:
        """The first `count` frame counts this family accepts, for error messages."""
        return [self.frame_multiple * k + 1 for k in range(1, count + 1)]

    def largest_frames(self) -> int:
        """The longest frame count this family accepts."""
        return (MAX_FRAMES - 1) // self.frame_multiple * self.frame_multiple + 1

    def validate(self, *, num_frames: int, width: int, height: int) -> dict[str, str]:
        """Field name -> message saying what is allowed; empty when the request is fine."""
        errors: dict[str, str] = {}

        # 1. Frames: positive, bounded, and on the VAE's temporal grid.
        m = self.frame_multiple
        examples = ", ".join(str(n) for n in self.allowed_frames())
        largest = self.largest_frames()
        rule = f"num_frames must be {m}k+1 ({examples}, …, {largest}) for {self.name}"
        if not _is_int(num_frames):
            errors["num_frames"] = f"{rule}; got {num_frames!r}"
        elif num_frames < 1 or num_frames > MAX_FRAMES or (num_frames - 1) % m != 0:
            errors["num_frames"] = f"{rule}; got {num_frames}"

        # 2. Width and height: positive, bounded, and on the patch grid.
        for field, value in (("width", width), ("height", height)):
            s = self.size_multiple
            rule = f"{field} must be a multiple of {s} between {s} and {MAX_SIDE // s * s} for {self.name}"
            if not _is_int(value):
                errors[field] = f"{rule}; got {value!r}"
            elif value < s or value > MAX_SIDE or value % s != 0:
                errors[field] = f"{rule}; got {value}"
        return errors


def _is_int(value: object) -> bool:
    # bool is an int subclass; True frames is a bug upstream, not a clip of one frame.
    return isinstance(value, int) and not isinstance(value, bool)


WAN = ModelFamily(
    name="wan",
    pipeline_class="WanPipeline",
    frame_multiple=4,
    size_multiple=16,
    default_steps=50,
    default_guidance=5.0,
    default_num_frames=81,
    default_width=832,
    default_height=480,
    default_fps=16,
    max_sequence_length=512,
    lora_target_modules=("to_q", "to_k", "to_v", "to_out.0"),
    vae_in_float32=True,
)

LTX = ModelFamily(
    name="ltx",
    pipeline_class="LTXPipeline",
    frame_multiple=8,
    size_multiple=32,
    default_steps=50,
    default_guidance=3.0,
    default_num_frames=161,
    default_width=704,
    default_height=512,
    default_fps=25,
    max_sequence_length=128,
    lora_target_modules=("to_q", "to_k", "to_v", "to_out.0"),
    fps_argument="frame_rate",
)

COGVIDEOX = ModelFamily(
    name="cogvideox",
    pipeline_class="CogVideoXPipeline",
    frame_multiple=8,
    size_multiple=16,
    default_steps=50,
    default_guidance=6.0,
    default_num_frames=49,
    default_width=720,
    default_height=480,
    default_fps=8,
    max_sequence_length=226,
    lora_target_modules=("to_q", "to_k", "to_v", "to_out.0"),
)

# Wan's editing model (VACE: Wan2.1-VACE-1.3B, -14B) is the wan family (the same latents, rules,
# defaults and LoRA targets) in a pipeline that takes a condition natively.
WAN_VACE = replace(WAN, pipeline_class="WanVACEPipeline", native_condition=True)

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (WAN, LTX, COGVIDEOX)}
DEFAULT_FAMILY = WAN
_BY_PIPELINE_CLASS: dict[str, ModelFamily] = {f.pipeline_class: f for f in (*FAMILIES.values(), WAN_VACE)}


def text_window(family: ModelFamily, tokenizer) -> int:
    """How many tokens a checkpoint's prompts are encoded to: the family's own `max_sequence_length`,
    or the checkpoint tokenizer's `model_max_length` when that is shorter (the trained `tiny`
    declares 128). The engine, the LoRA trainer and the toy-world trainer all encode with it: a
    transformer must see at generation exactly the embeddings it was trained on."""
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < family.max_sequence_length:
        return declared
    return family.max_sequence_length


def family_by_name(name: str) -> ModelFamily:
    """The family called `name` ("wan", "ltx", "cogvideox"); loud error otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"Unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}.") from None


def family_for_model_path(path: str | Path) -> ModelFamily:
    """The family of a local diffusers folder, from the `_class_name` in its `model_index.json`."""
    index = Path(path) / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{index} does not exist: {path} is not a diffusers pipeline folder.")
    try:
        class_name = json.loads(index.read_text(encoding="utf-8"))["_class_name"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{index} has no readable `_class_name`: {exc}") from exc
    try:
        return _BY_PIPELINE_CLASS[class_name]
    except KeyError:
        known = ", ".join(sorted(_BY_PIPELINE_CLASS))
        raise ValueError(
            f"{path} holds a {class_name!r} pipeline; this engine runs only {known}."
        ) from None
