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
    # > 0: the source outside `keep` is a guess rather than known pixels (the clip carried on along
    # its own motion: `motion_guide`), held for this share of the steps only, so that it sets the
    # layout and the model draws the rest. Never pasted back. 0: the source there is ignored.
    guide_fraction: float = 0.0
    # The decoder does not give kept frames back exactly, and its error runs on into the generated
    # frames beside them; pasting the kept pixels back would leave a step there. With a motion (x, y
    # pixels a frame), the generated frames next to wholly pasted ones take on their residual
    # (source - decoded), carried along that motion and fading over SEAM_FRAMES frames.
    seam_motion: tuple[float, float] | None = None
    # > 0: the frames that nothing is pasted into are settled (`settle`): where one differs from the
    # frame before it, moved along their motion, by no more than the decoder's own error, it is
    # that error, not motion, and the frame takes the earlier one's value. The gate is this many
    # times the decoder's median error on the wholly pasted frames. 0: the frames stay as decoded.
    settle_gate: float = 0.0

    def sources(self) -> np.ndarray:
        return self.source if self.source.ndim == 5 else self.source[None]

    def keeps(self) -> np.ndarray:
        return self.keep if self.keep.ndim == 4 else self.keep[None]

    def pastes(self) -> np.ndarray:
        return self.paste if self.paste.ndim == 4 else self.paste[None]

    def check(self, *, num_frames: int, width: int, height: int, batch: int) -> None:
        source, keep, paste = self.sources(), self.keeps(), self.pastes()
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
        if not 0.0 <= self.guide_fraction <= 1.0:
            raise ValueError(f"guide_fraction must be in [0, 1]; got {self.guide_fraction}.")

    def paste_into(self, clip: np.ndarray, index: int) -> np.ndarray:
        """The generated clip with the source's pixels put back where `paste` says, feathered by one pixel."""
        source = self.sources()[min(index, self.sources().shape[0] - 1)].astype(np.float32)
        paste = self.pastes()
        alpha = feather(paste[min(index, paste.shape[0] - 1)])[..., None]
        decoded = clip.astype(np.float32)
        out = alpha * source + (1.0 - alpha) * decoded
        whole = alpha[..., 0].min(axis=(1, 2)) >= 1.0  # frames wholly pasted back
        new = alpha[..., 0].max(axis=(1, 2)) <= 0.0  # frames nothing is pasted into
        if self.seam_motion is not None:
            out += _seam_residuals(source - decoded, whole, new, self.seam_motion)
        if self.settle_gate > 0.0 and whole.any():
            error = float(np.median(np.abs(source[whole] - decoded[whole]).max(axis=-1)))
            out = settle(out, whole, new, gate=self.settle_gate * error)
        return np.rint(np.clip(out, 0, 255)).astype(np.uint8)


def _seam_residuals(residual: np.ndarray, whole: np.ndarray, new: np.ndarray,
                    motion: tuple[float, float]) -> np.ndarray:
    """(F, H, W, 3) corrections for the `new` frames (nothing pasted into them): the residuals of
    the nearest `whole` (wholly pasted) frame before and after each, moved along `motion` by the
    distance, each weighted 1, 3/4, 1/2, 1/4 over the SEAM_FRAMES frames nearest it (0 beyond), and
    shared out where both reach (their weights scaled to sum to 1), so the correction changes
    smoothly."""
    pasted = np.flatnonzero(whole).tolist()
    out = np.zeros_like(residual)
    for t in np.flatnonzero(new).tolist():
        sides = [max((k for k in pasted if k < t), default=None), min((k for k in pasted if k > t), default=None)]
        parts = [(1.0 - (abs(k - t) - 1) / SEAM_FRAMES, k) for k in sides if k is not None]
        parts = [(w, k) for w, k in parts if w > 0.0]
        total = sum(w for w, _ in parts)
        for w, k in parts:
            share = w / total if total > 1.0 else w
            out[t] += share * _shifted(residual[k], (t - k) * motion[0], (t - k) * motion[1])
    return out


def settle(frames: np.ndarray, known: np.ndarray, new: np.ndarray, *, gate: float) -> np.ndarray:
    """Motion-compensated temporal denoising of the `new` frames of a float (F, H, W, 3) clip whose
    `known` frames are right (pasted sources): the decoder's frame-to-frame flicker taken out where
    nothing but it changes.

    From each known frame, a pass runs through the new frames that follow it (and one through those
    that lead into a known frame, backwards). Each new frame is compared with the pass's previous
    frame moved along the motion between the two as decoded (`estimate_shift`); a pixel whose largest
    channel difference is at most half the `gate` takes the previous frame's value, one at the
    `gate` or more keeps its own, and the share falls linearly between. So no pixel moves more than
    `gate / 2` from what was decoded, and whatever changes by more (a thing moving off the guessed
    motion, something new) stays as the model drew it. A frame reached from both sides takes both
    passes, each weighted by the inverse square of its distance from its known frame: near one
    known frame, the other pass (whose shape sits a little elsewhere) barely shows."""
    decoded = np.asarray(frames, dtype=np.float32)
    out = decoded.copy()
    count = decoded.shape[0]
    if gate <= 0.0 or not np.any(known) or not np.any(new):
        return out
    as_uint8 = np.rint(np.clip(decoded, 0, 255)).astype(np.uint8)
    passes: list[dict[int, tuple[np.ndarray, int]]] = []  # frame -> (settled, distance from its known frame)
    for step in (1, -1):
        settled: dict[int, tuple[np.ndarray, int]] = {}
        for t in range(count) if step == 1 else range(count - 1, -1, -1):
            before = t - step
            if not new[t] or not 0 <= before < count:
                continue
            if known[before]:
                previous, distance = decoded[before], 1
            elif before in settled:
                previous, distance = settled[before][0], settled[before][1] + 1
            else:
                continue
            dx, dy = estimate_shift(as_uint8[before], as_uint8[t])
            reference = _shifted(previous, dx, dy)
            difference = np.abs(decoded[t] - reference).max(axis=-1, keepdims=True)
            share = np.clip(2.0 - 2.0 * difference / gate, 0.0, 1.0)
            settled[t] = (decoded[t] + share * (reference - decoded[t]), distance)
        passes.append(settled)
    for t in range(count):
        parts = [p[t] for p in passes if t in p]
        if len(parts) == 2:  # weights 1/da^2 and 1/db^2
            (a, da), (b, db) = parts
            out[t] = (db * db * a + da * da * b) / (da * da + db * db)
        elif parts:
            out[t] = parts[0][0]
    return out


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
# The motion guide (`motion_guide`): an extension's new frames start as its edge frame carried on
# along the clip's own measured motion, a bridge's as its two ends carried towards each other; the
# guide is held for this share of the steps, which sets where things go, and the model draws the
# rest. An extension whose edge moves under MOTION_LEAST pixels a frame gets no guide: the model
# alone continues it, as without one.
MOTION_GUIDE_FRACTION = 0.75
MOTION_LEAST = 0.25
MOTION_PATH = "latent_blend_motion"
SEAM_FRAMES = 4
# New frames of a guided edit are settled (`settle`) with a gate of this many times the decoder's
# median error on the frames the edit keeps. On `tiny`, whose decoder misses kept frames by a median
# of 7 levels in the largest channel, a new pixel within 28 levels of the frame before it (moved
# along the motion) takes its value, one 56 or more off keeps its own; no pixel moves more than 28
# from what was decoded. Measured on benchmarks/editing.py's loops: gate 6 loops 80% seamlessly,
# 8 92.5% (85% with the two passes weighted linearly by distance instead); 8 is the least that
# meets the bar, a larger gate a further trade of the decoder's own detail for steadiness.
SETTLE_GATE = 8.0


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
    return [EditOutput(frames=clip, mask=_mask_bytes(keep), conditioning=made_by(engine, PATH)) for clip in clips]


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
    return [EditOutput(frames=out, mask=_mask_bytes(paste), conditioning=made_by(engine, PATH)) for out in outputs]


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
    # The clip's own motion at the edge it is extended from carries every window's guide: later
    # windows start from generated frames, whose shape may be half out of the frame.
    velocity = edge_velocity(clip[-context:] if forward else clip[:context])
    guided = bool(np.hypot(*velocity) >= MOTION_LEAST)
    for window in range(windows):
        take = min(gain, frames - window * gain)
        source = np.stack([_extension_source(video, length, context, forward, velocity) for video in videos])
        keep = np.zeros(source.shape[:4], dtype=np.float32)
        if forward:
            keep[:, :context] = 1.0
        else:
            keep[:, length - context:] = 1.0
        condition = Condition(source=source, keep=keep, paste=keep.copy(), hold_fraction=1.0,
                              guide_fraction=MOTION_GUIDE_FRACTION if guided else 0.0,
                              seam_motion=velocity if guided else None,
                              settle_gate=SETTLE_GATE if guided else 0.0)
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
    path = made_by(engine, MOTION_PATH if guided else PATH)
    return [EditOutput(frames=video, mask=_mask_bytes(k), conditioning=path,
                       extra={"windows": windows}) for video, k in zip(videos, kept)]


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
        outputs.append(EditOutput(frames=np.concatenate([clip, inner]), mask=_mask_bytes(mask),
                                  conditioning=made_by(engine, MOTION_PATH)))
    return outputs


def made_by(engine, blended: str) -> str:
    """What an edit records as its `conditioning`: the pipeline's class where it keeps pixels
    natively (WanVACEPipeline: the edit's guide is not given to it), else the latent-blend path."""
    return engine.family.pipeline_class if engine.family.native_condition else blended


def loops_seamlessly(clip: np.ndarray) -> bool:
    """Whether the clip's last-to-first change (mean absolute pixel difference) is at most its
    median frame-to-frame change: played on repeat, the jump back reads as one more frame."""
    jump, usual = loop_changes(clip)
    return jump <= usual + 1e-9


def loop_changes(clip: np.ndarray) -> tuple[float, float]:
    """The clip's last-to-first change and its median frame-to-frame change (mean absolute pixel
    differences), which `loops_seamlessly` compares."""
    frames = np.asarray(clip, dtype=np.int16)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    return float(np.abs(frames[-1] - frames[0]).mean()), float(np.median(steps))


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
        outputs.append(EditOutput(frames=bridge, mask=_mask_bytes(mask), conditioning=made_by(engine, MOTION_PATH)))
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


def _extension_source(video: np.ndarray, length: int, context: int, forward: bool,
                      velocity: tuple[float, float]) -> np.ndarray:
    """A window of `length` frames: the video's end (or start) where it is kept, and where new
    frames will be, its edge frame carried on at `velocity` pixels a frame (`motion_guide`)."""
    ctx = _edge(video, context, end=forward)
    guess = motion_guide(ctx[-1] if forward else ctx[0], length - context, velocity, forward=forward)
    return np.concatenate([ctx, guess]) if forward else np.concatenate([guess, ctx])


def _bridge(engine, first: np.ndarray, second: np.ndarray, *, new: int, prompt, negative_prompt, seeds, steps,
            guidance, lora, on_step) -> list[np.ndarray]:
    """Frames from `first`'s last to `second`'s first (both included), at least `new` generated
    between them, guided by `first`'s last frame and `second`'s first carried towards each other
    (`bridge_guide`).

    One window holding `first`'s last 5 frames and `second`'s first 4 around the new ones, where
    that window is no longer than `first` (as many new frames as the family's frame grid puts
    there). A longer bridge runs as a chain of windows of `first`'s own length, the length the
    model made it at: each starts with the frame before it (the previous window's last new one)
    and adds the grid's share of new frames; the last ends with `second`'s first 4 frames."""
    length = _window_length(engine, 0, FORWARD_CONTEXT + BACKWARD_CONTEXT + new)
    own = first.shape[0]
    chained = length > own and _window_length(engine, own, 2 + BACKWARD_CONTEXT) == own
    before = 1 if chained else FORWARD_CONTEXT  # kept frames at a window's start
    lengths = [length]
    if chained:  # each window as long as the clip, the last only as long as what is left needs
        lengths, left = [], new
        while left > 0:
            lengths.append(min(own, _window_length(engine, 0, before + left + BACKWARD_CONTEXT)))
            left -= lengths[-1] - before - BACKWARD_CONTEXT
    shares = [n - before - BACKWARD_CONTEXT for n in lengths]  # new frames each window adds
    guess, pace = bridge_guide(first[-1], second[0], sum(shares))
    ahead = np.concatenate([guess, _edge(second, BACKWARD_CONTEXT, end=False)])
    heads = [_edge(first, before, end=True)] * len(seeds)
    made: list[list[np.ndarray]] = [[] for _ in seeds]
    windows = len(lengths)
    for window, (length, share) in enumerate(zip(lengths, shares)):
        done = sum(shares[:window])
        # After the new frames: `second`'s start in the last window, held; the guide further on
        # in the others, guided like the new frames.
        after = ahead[done + share:done + share + BACKWARD_CONTEXT]
        source = np.stack([np.concatenate([head, guess[done:done + share], after]) for head in heads])
        keep = np.zeros(source.shape[1:4], dtype=np.float32)
        keep[:before] = 1.0
        if window == windows - 1:
            keep[length - BACKWARD_CONTEXT:] = 1.0
        condition = Condition(source=source, keep=keep, paste=keep.copy(), hold_fraction=1.0,
                              guide_fraction=MOTION_GUIDE_FRACTION, seam_motion=pace, settle_gate=SETTLE_GATE)
        outputs = engine.generate(prompt=prompt, negative_prompt=negative_prompt,
                                  seeds=[_window_seed(seed, window) for seed in seeds], num_frames=length,
                                  width=first.shape[2], height=first.shape[1], steps=steps, guidance=guidance,
                                  lora=lora, on_step=_windowed(on_step, window, windows), condition=condition)
        for i, out in enumerate(outputs):
            made[i].extend(out[before:before + share])
            heads[i] = out[before + share - 1:before + share]  # chained windows start with one frame
    return [np.stack([first[-1], *frames, second[0]]) for frames in made]


# --- Motion: the guide for new frames ----------------------------------------------------------


def estimate_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The translation (dx, dy), in pixels, that best carries frame `a` onto frame `b` (uint8
    (H, W, 3)): phase correlation over the three channels, sub-pixel by a parabola through the
    peak. Where one thing moves over a plain ground, or the camera pans, that is its motion; where
    several things move, the one that dominates the frame's structure."""
    spectra = [np.fft.fft2(f.astype(np.float64) - f.mean(axis=(0, 1)), axes=(0, 1)) for f in (a, b)]
    cross = (spectra[1] * np.conj(spectra[0])).sum(axis=2)
    surface = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    height, width = surface.shape
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)

    def vertex(before: float, at: float, after: float) -> float:
        curve = before - 2.0 * at + after
        return 0.0 if abs(curve) < 1e-12 else float(np.clip(0.5 * (before - after) / curve, -0.5, 0.5))

    dx = px + vertex(surface[py, (px - 1) % width], surface[py, px], surface[py, (px + 1) % width])
    dy = py + vertex(surface[(py - 1) % height, px], surface[py, px], surface[(py + 1) % height, px])
    return float(dx - width if dx > width / 2 else dx), float(dy - height if dy > height / 2 else dy)


def translate(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """A uint8 (H, W, 3) frame moved by (dx, dy) pixels, bilinear; what comes in at the border
    repeats the border."""
    return np.rint(_shifted(frame, dx, dy)).astype(np.uint8)


def _shifted(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """`translate` in floats, for any (H, W, C) array."""
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    sx, sy = np.clip(xs - dx, 0, width - 1), np.clip(ys - dy, 0, height - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    f = frame.astype(np.float64)
    top = f[y0, x0] * (1 - fx) + f[y0, x1] * fx
    bottom = f[y1, x0] * (1 - fx) + f[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def edge_velocity(context: np.ndarray) -> tuple[float, float]:
    """The motion of a run of frames in pixels a frame: the translation from its first frame to its
    last (`estimate_shift`), over its steps."""
    dx, dy = estimate_shift(context[0], context[-1])
    steps = max(1, len(context) - 1)
    return dx / steps, dy / steps


def motion_guide(edge: np.ndarray, new: int, velocity: tuple[float, float], *, forward: bool) -> np.ndarray:
    """`new` frames after the frame `edge` (forward) or before it: the frame moved on at `velocity`
    pixels a frame, in time order."""
    vx, vy = velocity
    if forward:
        return np.stack([translate(edge, k * vx, k * vy) for k in range(1, new + 1)])
    return np.stack([translate(edge, -k * vx, -k * vy) for k in range(new, 0, -1)])


def bridge_guide(start: np.ndarray, end: np.ndarray, new: int) -> tuple[np.ndarray, tuple[float, float]]:
    """`new` frames from `start` to `end` at an even pace: each a blend of `start` carried
    forwards and `end` carried back along the translation between them, weighted by how far the
    frame is along the way (a still pair gives a cross-fade); and that pace, in pixels a frame."""
    dx, dy = estimate_shift(start, end)
    frames = []
    for k in range(1, new + 1):
        a = k / (new + 1)
        mix = (1 - a) * translate(start, a * dx, a * dy).astype(np.float64) \
            + a * translate(end, -(1 - a) * dx, -(1 - a) * dy).astype(np.float64)
        frames.append(np.rint(mix).astype(np.uint8))
    return np.stack(frames), (dx / (new + 1), dy / (new + 1))


def _edge(video: np.ndarray, count: int, *, end: bool) -> np.ndarray:
    """The video's last (`end`) or first `count` frames; a shorter video padded to `count` with its
    frame furthest from that edge, repeated (a held still that no output frame comes from)."""
    frames = video[-count:] if end else video[:count]
    if len(frames) < count:
        pad = np.repeat(frames[:1] if end else frames[-1:], count - len(frames), axis=0)
        frames = np.concatenate([pad, frames] if end else [frames, pad])
    return frames


def _window_seed(seed: int, window: int) -> int:
    return seed if window == 0 else (seed * 1_000_003 + window) % (2**63 - 1)


def _windowed(on_step, window: int, windows: int):
    if on_step is None:
        return None

    def report(done: int, total: int):
        return on_step(window * total + done, windows * total)

    return report
