"""Generation conditioned on known pixels in space and time: image-to-video, re-scene, extend, loop, connect.

One mechanism serves every edit (`Condition`): a source video on the output's timeline, a keep-mask
over space x time, and a prompt for the rest. The engine encodes the source with the pipeline's own
VAE, holds the kept latents at each step's noise level (latent blending, RePaint-style, through
`callback_on_step_end`) for a share of the steps, decodes, and pastes the kept pixels back with a
narrow feather, so that what is kept is really unchanged.

Django-free like the rest of the engine: numpy arrays in, numpy arrays out. The edit functions
below turn an edit request into one or more `Condition`s and stitch the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EDIT_KINDS = ("rescene", "extend", "loop", "connect")
EXTEND_DIRECTIONS = ("forward", "backward")


@dataclass
class Condition:
    """What to keep. Arrays share the output's frame count and size; a leading batch axis gives
    each seed of the call its own source (an extension's later windows differ per variant)."""

    source: np.ndarray  # uint8 ([B,] F, H, W, 3): the known pixels, placed on the output's timeline
    keep: np.ndarray  # float32 ([B,] F, H, W) in 0..1: where the source's latents are held
    paste: np.ndarray  # float32 ([B,] F, H, W) in 0..1: where the source's pixels are pasted back
    hold_fraction: float = 1.0  # share of the denoising steps during which `keep` is held

    def sources(self) -> np.ndarray:
        return self.source if self.source.ndim == 5 else self.source[None]

    def keeps(self) -> np.ndarray:
        return self.keep if self.keep.ndim == 4 else self.keep[None]

    def check(self, *, num_frames: int, width: int, height: int, batch: int) -> None:
        source, keep = self.sources(), self.keeps()
        paste = self.paste if self.paste.ndim == 4 else self.paste[None]
        if source.shape[1:] != (num_frames, height, width, 3) or source.dtype != np.uint8:
            raise ValueError(f"condition source must be uint8 ({num_frames}, {height}, {width}, 3); "
                             f"got {source.dtype} {source.shape[1:]}.")
        for name, mask in (("keep", keep), ("paste", paste)):
            if mask.shape[1:] != (num_frames, height, width):
                raise ValueError(f"condition {name} must be ({num_frames}, {height}, {width}); got {mask.shape[1:]}.")
        for name, array in (("source", source), ("keep", keep), ("paste", paste)):
            if array.shape[0] not in (1, batch):
                raise ValueError(f"condition {name} has {array.shape[0]} items for {batch} seeds.")
        if not 0.0 < self.hold_fraction <= 1.0:
            raise ValueError(f"hold_fraction must be in (0, 1]; got {self.hold_fraction}.")

    def paste_into(self, clip: np.ndarray, index: int) -> np.ndarray:
        """The generated clip with the source's pixels put back where `paste` says, feathered by one pixel."""
        source = self.sources()[min(index, self.sources().shape[0] - 1)].astype(np.float32)
        paste = self.paste if self.paste.ndim == 4 else self.paste[None]
        alpha = feather(paste[min(index, paste.shape[0] - 1)])[..., None]
        return np.rint(alpha * source + (1.0 - alpha) * clip.astype(np.float32)).astype(np.uint8)


def feather(mask: np.ndarray) -> np.ndarray:
    """A (F, H, W) 0..1 mask softened over its one-pixel edge ring (each pixel weighted by the share
    of its 3x3 neighbours kept); inside, and outside, it is unchanged."""
    m = np.asarray(mask, dtype=np.float32)
    padded = np.pad(m, ((0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = m.shape[1:]
    box = sum(padded[:, dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)) / 9.0
    return np.where(m >= 0.5, box, 0.0).astype(np.float32)


@dataclass
class EditOutput:
    frames: np.ndarray  # uint8 (F, H, W, 3)
    mask: np.ndarray  # uint8 (F, H, W): 255 where the output's pixels are the source's
    conditioning: str  # which engine path made it ("latent_blend" or a native pipeline class)
    extra: dict = field(default_factory=dict)


def validate_keep_box(box: object) -> tuple[float, float, float, float]:
    """[x0, y0, x1, y1] as fractions of width and height, x0 < x1 and y0 < y1; ValueError otherwise."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError("keep_box must be [x0, y0, x1, y1]: four fractions of the width and height.")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise ValueError("keep_box must hold four numbers between 0 and 1.")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise ValueError(f"keep_box values must lie between 0 and 1; got {list(box)}.")
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"keep_box must not be empty: x0 < x1 and y0 < y1; got {list(box)}.")
    return x0, y0, x1, y1


# --- The edits -------------------------------------------------------------------------------
# Every edit function takes the loaded `Engine`, returns one `EditOutput` per seed (in seed order),
# and reports progress through `on_step(done, total) -> bool` (False cancels: GenerationCancelled),
# exactly like `Engine.generate`. `lora` is `(adapter_name, path)` or None. Clips are uint8 arrays
# (F, H, W, 3); the output keeps the input clip's size.

PATH = "latent_blend"
ALREADY_SEAMLESS = "already_seamless"  # a loop of a clip that loops as it is: nothing generated
# Re-scene holds the box's latents for this share of the steps, then lets the model repaint the
# box's old background around the product, whose own pixels are pasted back (ML-NOTES: holding
# until step 10-15 of 20 keeps the product and loses the old background).
RESCENE_HOLD = 0.6
# A pixel inside the keep box belongs to the product when it is this far (CIE Lab Delta E) from the
# colour around the box: the adherence checker's own foreground rule.
MATTE_DELTA_E = 25.0
# Extension windows: a continued clip holds its last 5 frames (Wan's first two latent frames);
# a clip led into holds its first 4 frames (one whole latent frame at the window's end).
FORWARD_CONTEXT = 5
BACKWARD_CONTEXT = 4
# New frames of a bridge: a connection's, and the fewest of a loop's (which takes as many as the clip has steps).
CONNECT_NEW = 4
LOOP_LEAST_NEW = 4


def image_to_video(engine, *, image: np.ndarray, prompt: str, negative_prompt: str, seeds: list[int],
                   num_frames: int, width: int, height: int, steps: int, guidance: float, fps: int | None = None,
                   lora=None, on_step=None) -> list[EditOutput]:
    """Clips whose first frame is `image` (uint8 (H, W, 3) or RGBA (H, W, 4)) fitted to width x height.

    An opaque image is the whole first frame, held through every step. An image with transparency
    is a product cut-out: only its opaque pixels are kept (early steps, then pasted back), and the
    scene around it comes from the prompt."""
    fitted, alpha = fit_image(image, width=width, height=height)
    source = np.repeat(fitted[None], num_frames, axis=0)
    keep = np.zeros((num_frames, height, width), dtype=np.float32)
    keep[0] = alpha
    opaque = bool(alpha.min() >= 0.5)
    condition = Condition(source=source, keep=keep, paste=keep.copy(), hold_fraction=1.0 if opaque else RESCENE_HOLD)
    clips = engine.generate(prompt=prompt, negative_prompt=negative_prompt, seeds=seeds, num_frames=num_frames,
                            width=width, height=height, steps=steps, guidance=guidance, fps=fps, lora=lora,
                            on_step=on_step, condition=condition)
    return [EditOutput(frames=clip, mask=_mask_bytes(keep), conditioning=PATH) for clip in clips]


def rescene(engine, *, clip: np.ndarray, keep_box, prompt: str, negative_prompt: str, seeds: list[int], steps: int,
            guidance: float, lora=None, on_step=None, matte: np.ndarray | None = None) -> list[EditOutput]:
    """The product inside `keep_box` kept on every frame, everything else a new scene from `prompt`.

    The product is separated from its old background inside the box by colour against the box's
    surroundings, unless `matte` ((H, W) or (F, H, W), 0..1; a brand asset's alpha) says where it is."""
    clip = _check_clip(clip)
    frames, height, width, _ = clip.shape
    box = box_mask(validate_keep_box(keep_box), width=width, height=height)
    keep = np.repeat(box[None], frames, axis=0)
    if matte is None:
        paste = colour_matte(clip, box)
    else:
        paste = np.broadcast_to(np.asarray(matte, dtype=np.float32), keep.shape) * keep
    condition = Condition(source=clip, keep=keep, paste=paste.astype(np.float32), hold_fraction=RESCENE_HOLD)
    outputs = engine.generate(prompt=prompt, negative_prompt=negative_prompt, seeds=seeds, num_frames=frames,
                              width=width, height=height, steps=steps, guidance=guidance, lora=lora,
                              on_step=on_step, condition=condition)
    return [EditOutput(frames=out, mask=_mask_bytes(paste), conditioning=PATH) for out in outputs]


def extend(engine, *, clip: np.ndarray, frames: int, direction: str, prompt: str, negative_prompt: str,
           seeds: list[int], steps: int, guidance: float, lora=None, on_step=None) -> list[EditOutput]:
    """The clip with `frames` new frames after its end (forward) or before its start (backward).

    Runs windows of the clip's own length (or the family's shortest length that holds the context
    and new frames): forward, each window starts with the video's last 5 frames and adds the rest;
    backward, each ends with the video's first 4 frames and adds what leads into them."""
    clip = _check_clip(clip)
    if direction not in EXTEND_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(EXTEND_DIRECTIONS)}; got {direction!r}.")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames must be a positive integer; got {frames!r}.")
    forward = direction == "forward"
    context = FORWARD_CONTEXT if forward else BACKWARD_CONTEXT
    length = _window_length(engine, clip.shape[0], context + 1)
    gain = length - context
    windows = -(-frames // gain)
    videos = [clip] * len(seeds)
    kept = [np.ones(clip.shape[:3], dtype=np.float32)] * len(seeds)
    for window in range(windows):
        take = min(gain, frames - window * gain)
        source = np.stack([_extension_source(video, length, context, forward) for video in videos])
        keep = np.zeros(source.shape[:4], dtype=np.float32)
        if forward:
            keep[:, :context] = 1.0
        else:
            keep[:, length - context:] = 1.0
        condition = Condition(source=source, keep=keep, paste=keep.copy(), hold_fraction=1.0)
        outputs = engine.generate(prompt=prompt, negative_prompt=negative_prompt,
                                  seeds=[_window_seed(seed, window) for seed in seeds], num_frames=length,
                                  width=clip.shape[2], height=clip.shape[1], steps=steps, guidance=guidance,
                                  lora=lora, on_step=_windowed(on_step, window, windows), condition=condition)
        for i, out in enumerate(outputs):
            new = out[context:context + take] if forward else out[length - context - take:length - context]
            blank = np.zeros(new.shape[:3], dtype=np.float32)
            if forward:
                videos[i], kept[i] = np.concatenate([videos[i], new]), np.concatenate([kept[i], blank])
            else:
                videos[i], kept[i] = np.concatenate([new, videos[i]]), np.concatenate([blank, kept[i]])
    return [EditOutput(frames=video, mask=_mask_bytes(k), conditioning=PATH, extra={"windows": windows})
            for video, k in zip(videos, kept)]


def loop(engine, *, clip: np.ndarray, prompt: str, negative_prompt: str, seeds: list[int], steps: int,
         guidance: float, lora=None, on_step=None) -> list[EditOutput]:
    """The clip reworked so that its last frame flows into its first.

    A clip that loops already (its last-to-first change no larger than its median frame-to-frame
    change: a still shot) comes back as it is, its `conditioning` saying so (`ALREADY_SEAMLESS`):
    a bridge would only add frames that change. Any other gets a bridge from its end back to its
    start with as many new frames as the clip has steps (the way back takes as long as the way
    there), appended; the bridge's own end frame is the clip's first, left out."""
    clip = _check_clip(clip)
    if loops_seamlessly(clip):
        if on_step is not None:
            on_step(1, 1)
        mask = np.ones(clip.shape[:3], np.float32)
        return [EditOutput(frames=clip.copy(), mask=_mask_bytes(mask), conditioning=ALREADY_SEAMLESS) for _ in seeds]
    room = engine.family.largest_frames() - FORWARD_CONTEXT - BACKWARD_CONTEXT
    new = max(LOOP_LEAST_NEW, min(clip.shape[0] - 1, room))
    bridges = _bridge(engine, clip, clip, new=new, prompt=prompt, negative_prompt=negative_prompt, seeds=seeds,
                      steps=steps, guidance=guidance, lora=lora, on_step=on_step)
    outputs = []
    for bridge in bridges:
        inner = bridge[1:-1]
        mask = np.concatenate([np.ones(clip.shape[:3], np.float32), np.zeros(inner.shape[:3], np.float32)])
        outputs.append(EditOutput(frames=np.concatenate([clip, inner]), mask=_mask_bytes(mask), conditioning=PATH))
    return outputs


def loops_seamlessly(clip: np.ndarray) -> bool:
    """Whether the clip's last-to-first change (mean absolute pixel difference) is at most its
    median frame-to-frame change: played on repeat, the jump back reads as one more frame."""
    frames = np.asarray(clip, dtype=np.int16)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    return float(np.abs(frames[-1] - frames[0]).mean()) <= float(np.median(steps)) + 1e-9


def connect(engine, *, clip: np.ndarray, other: np.ndarray, prompt: str, negative_prompt: str, seeds: list[int],
            steps: int, guidance: float, lora=None, on_step=None) -> list[EditOutput]:
    """A bridge that starts where `clip` ends (its first frame is `clip`'s last) and ends where
    `other` starts (its last frame is `other`'s first). Both clips must have the same size."""
    clip, other = _check_clip(clip), _check_clip(other)
    if clip.shape[1:] != other.shape[1:]:
        raise ValueError(f"clips to connect must have the same size; got {clip.shape[2]}x{clip.shape[1]} and "
                         f"{other.shape[2]}x{other.shape[1]}.")
    bridges = _bridge(engine, clip, other, new=CONNECT_NEW, prompt=prompt, negative_prompt=negative_prompt,
                      seeds=seeds, steps=steps, guidance=guidance, lora=lora, on_step=on_step)
    outputs = []
    for bridge in bridges:
        mask = np.zeros(bridge.shape[:3], np.float32)
        mask[0] = mask[-1] = 1.0
        outputs.append(EditOutput(frames=bridge, mask=_mask_bytes(mask), conditioning=PATH))
    return outputs


# --- Geometry and mattes -----------------------------------------------------------------------


def fit_image(image: np.ndarray, *, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """An image scaled to cover width x height and centre-cropped: (RGB uint8 (H, W, 3), alpha 0..1 (H, W))."""
    from PIL import Image

    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3) or (H, W, 4); got {array.dtype} {array.shape}.")
    picture = Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")
    fitted = np.asarray(cover_crop(picture, width=width, height=height, resample=Image.LANCZOS))
    if fitted.shape[2] == 4:
        return np.ascontiguousarray(fitted[..., :3]), (fitted[..., 3] >= 128).astype(np.float32)
    return fitted, np.ones((height, width), dtype=np.float32)


def cover_crop(picture, *, width: int, height: int, resample: int):
    """A PIL image scaled (with `resample`) to cover width x height, then centre-cropped: no padding
    bars, no distortion. The editor's fitted images and the LoRA trainer's samples both go through it."""
    scale = max(width / picture.width, height / picture.height)
    size = (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
    picture = picture.resize(size, resample)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return picture.crop((left, top, left + width, top + height))


def box_mask(box: tuple[float, float, float, float], *, width: int, height: int) -> np.ndarray:
    """(H, W) float mask of the pixels a fractional box covers (at least one pixel each way)."""
    x0, y0, x1, y1 = box
    left, right = int(np.floor(x0 * width)), int(np.ceil(x1 * width))
    top, bottom = int(np.floor(y0 * height)), int(np.ceil(y1 * height))
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    mask = np.zeros((height, width), dtype=np.float32)
    mask[top:bottom, left:right] = 1.0
    return mask


def colour_matte(clip: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(F, H, W) 0..1: inside the box, the pixels far in colour from what surrounds the box, frame by frame."""
    from generation.colour import srgb_to_lab

    lab = srgb_to_lab(clip)
    ring = _ring_around(box)
    matte = np.zeros(clip.shape[:3], dtype=np.float32)
    for t in range(clip.shape[0]):
        around = np.median(lab[t][ring], axis=0)
        far = np.linalg.norm(lab[t] - around, axis=-1) > MATTE_DELTA_E
        matte[t] = (far & (box > 0.5)).astype(np.float32)
    return matte


def _ring_around(box: np.ndarray) -> np.ndarray:
    """The two-pixel ring just outside the box; the frame's border ring when the box fills the frame."""
    inside = box > 0.5
    grown = inside.copy()
    for _ in range(2):
        padded = np.pad(grown, 1)
        grown = padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    ring = grown & ~inside
    if ring.sum() < 4:
        ring = np.ones_like(inside)
        ring[2:-2, 2:-2] = False
    return ring


# --- Helpers -------------------------------------------------------------------------------------


def _check_clip(clip: np.ndarray) -> np.ndarray:
    array = np.asarray(clip)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[0] < 2:
        raise ValueError(f"a clip must be uint8 (F, H, W, 3) with at least 2 frames; got {array.dtype} {array.shape}.")
    return array


def _mask_bytes(mask: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8)


def _window_length(engine, clip_frames: int, least: int) -> int:
    """The clip's own frame count when the family takes it and it has room, else the family's
    shortest frame count of at least `least` (and at least the family's second allowed count)."""
    family = engine.family
    if family.validate(num_frames=clip_frames, width=family.size_multiple, height=family.size_multiple) == {} \
            and clip_frames >= least:
        return clip_frames
    return next(n for n in family.allowed_frames(count=64) if n >= least)


def _extension_source(video: np.ndarray, length: int, context: int, forward: bool) -> np.ndarray:
    """A window of `length` frames: the video's end (or start) where it is kept, its edge frame
    repeated where new frames will be."""
    if forward:
        ctx = video[-context:]
        return np.concatenate([ctx, np.repeat(ctx[-1:], length - context, axis=0)])
    ctx = video[:context]
    return np.concatenate([np.repeat(ctx[:1], length - context, axis=0), ctx])


def _bridge(engine, first: np.ndarray, second: np.ndarray, *, new: int, prompt, negative_prompt, seeds, steps,
            guidance, lora, on_step) -> list[np.ndarray]:
    """Frames from `first`'s last to `second`'s first: one window holding `first`'s last 5 frames
    at its start and `second`'s first 4 at its end, at least `new` frames between them generated
    (as many as the family's frame grid puts there)."""
    length = _window_length(engine, 0, FORWARD_CONTEXT + BACKWARD_CONTEXT + new)
    middle = length - FORWARD_CONTEXT - BACKWARD_CONTEXT
    head, tail = first[-FORWARD_CONTEXT:], second[:BACKWARD_CONTEXT]
    filler = np.repeat(head[-1:], middle, axis=0)
    source = np.concatenate([head, filler, tail])
    keep = np.zeros(source.shape[:3], dtype=np.float32)
    keep[:FORWARD_CONTEXT] = 1.0
    keep[length - BACKWARD_CONTEXT:] = 1.0
    condition = Condition(source=source, keep=keep, paste=keep.copy(), hold_fraction=1.0)
    outputs = engine.generate(prompt=prompt, negative_prompt=negative_prompt, seeds=seeds, num_frames=length,
                              width=first.shape[2], height=first.shape[1], steps=steps, guidance=guidance, lora=lora,
                              on_step=on_step, condition=condition)
    # From `first`'s last frame to `second`'s first.
    return [out[FORWARD_CONTEXT - 1:length - BACKWARD_CONTEXT + 1] for out in outputs]


def _window_seed(seed: int, window: int) -> int:
    return seed if window == 0 else (seed * 1_000_003 + window) % (2**63 - 1)


def _windowed(on_step, window: int, windows: int):
    if on_step is None:
        return None

    def report(done: int, total: int):
        return on_step(window * total + done, windows * total)

    return report
