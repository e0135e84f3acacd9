"""The toy world: clips of one flat-colour shape moving over a flat background, and their captions.

Every clip is fully described by a `Scene` (shape, foreground colour, direction, background
colour) plus a seed that shifts its path a little; `render_clip` draws it at any size and frame count, so the
same scene renders deterministically for training, tests and the adherence checker's ground truth.
Captions follow one template: "a red circle moving left on a white background".

Paths come in windows of one clip's travel: window 0 is centred in the frame; window 1 continues
it (the shape travels on and leaves the frame), window -1 leads into it (the shape enters). A
model that has seen all three can continue a clip's motion past its end (`extend`, `connect`).

Splits: the seven training colours give 3 x 7 x 6 x 5 = 630 scenes; a fixed 80 of them are held out
for evaluation (`heldout_scenes`), the rest train (`train_scenes`). Orange is a held-out colour
family: no training caption or clip contains it, and the brand-LoRA test teaches it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down", "still")
# sRGB values, well apart in CIE Lab so that the checker's nearest-colour rule is unambiguous.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 60),
    "blue": (40, 75, 215),
    "yellow": (240, 215, 40),
    "purple": (140, 55, 180),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
    "orange": (245, 135, 25),
}
BRAND_COLOUR = "orange"  # the held-out colour family
# Shades of the brand family for the brand LoRA's images: a family, not one exact value.
BRAND_SHADES = ((245, 135, 25), (250, 120, 15), (235, 145, 45), (255, 150, 35))
TRAIN_COLOURS = tuple(name for name in COLOURS if name != BRAND_COLOUR)
HELDOUT_COUNT = 80
_SPLIT_SEED = 7

# Geometry as fractions of the shorter side: the shape's radius and the distance it travels
# over the whole clip (whatever the frame count), so motion reads the same at every size.
RADIUS = 0.2
TRAVEL = 0.35
JITTER = 0.1
_VELOCITY = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "still": (0, 0)}
_SUPERSAMPLE = 2


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    direction: str
    background: str

    @property
    def motion_words(self) -> str:
        return "standing still" if self.direction == "still" else f"moving {self.direction}"

    def caption(self, *, colour_word: str | None = None) -> str:
        """The scene's caption; `colour_word` replaces the colour name (a brand's trigger token)."""
        return f"a {colour_word or self.colour} {self.shape} {self.motion_words} on a {self.background} background"


def all_scenes(colours: tuple[str, ...] = TRAIN_COLOURS) -> list[Scene]:
    return [Scene(shape, fg, direction, bg) for shape in SHAPES for fg in colours for bg in colours
            if fg != bg for direction in DIRECTIONS]


def heldout_scenes() -> list[Scene]:
    """The fixed evaluation scenes: combinations no training caption or clip shows."""
    scenes = all_scenes()
    return sorted(random.Random(_SPLIT_SEED).sample(scenes, HELDOUT_COUNT), key=scenes.index)


def train_scenes() -> list[Scene]:
    held = set(heldout_scenes())
    return [s for s in all_scenes() if s not in held]


def render_clip(scene: Scene, *, seed: int, num_frames: int = 9, width: int = 32, height: int = 32,
                colour_rgb: tuple[int, int, int] | None = None,
                background_rgb: tuple[int, int, int] | None = None, window: int = 0) -> np.ndarray:
    """Draw the scene as uint8 frames (F, H, W, 3); the seed shifts the centred path.

    `window`: which clip-length stretch of the path to draw; 0 is centred, 1 the stretch after it
    (the shape leaves the frame), -1 the stretch before it (the shape enters).

    `colour_rgb`/`background_rgb` override the named colours (brand shades, the VAE's random colours).
    """
    if num_frames < 1 or width < 8 or height < 8:
        raise ValueError(f"render_clip needs num_frames >= 1 and sides >= 8; got {num_frames}, {width}x{height}.")
    fg = np.array(colour_rgb or COLOURS[scene.colour], dtype=np.float32)
    bg = np.array(background_rgb or COLOURS[scene.background], dtype=np.float32)
    side = min(width, height)
    radius = RADIUS * side
    dx, dy = (TRAVEL * side * v for v in _VELOCITY[scene.direction])

    # 1. The path is centred in the frame; the seed shifts it by up to JITTER of the shorter side
    #    each way, kept one pixel clear of the border. Where a clip starts thus tells its direction
    #    as its motion does, which a model of a few MB can learn in minutes on a CPU.
    rng = random.Random(f"{seed}")
    margin = radius + 1
    jitter = JITTER * side
    x0 = _clamp(width / 2 - dx / 2 + rng.uniform(-jitter, jitter), margin + max(0.0, -dx), width - margin - max(0.0, dx))
    y0 = _clamp(height / 2 - dy / 2 + rng.uniform(-jitter, jitter), margin + max(0.0, -dy), height - margin - max(0.0, dy))
    x0, y0 = x0 + window * dx, y0 + window * dy

    # 2. Draw each frame with 2x supersampling, so edges are anti-aliased the same at every size.
    s = _SUPERSAMPLE
    ys, xs = np.mgrid[0:height * s, 0:width * s].astype(np.float32)
    xs, ys = (xs + 0.5) / s, (ys + 0.5) / s
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        f = t / (num_frames - 1) if num_frames > 1 else 0.0
        mask = _shape_mask(scene.shape, xs - (x0 + dx * f), ys - (y0 + dy * f), radius)
        cover = mask.reshape(height, s, width, s).mean(axis=(1, 3))[..., None]
        frames[t] = np.rint(bg + (fg - bg) * cover).astype(np.uint8)
    return frames


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return x * x + y * y <= r * r
    if shape == "square":
        half = 0.85 * r
        return (np.abs(x) <= half) & (np.abs(y) <= half)
    if shape == "triangle":
        # Pointing up, base at +0.8r, apex at -1.1r: about the area of the other two.
        top, bottom, half_base = -1.1 * r, 0.8 * r, 1.1 * r
        inside_height = (y >= top) & (y <= bottom)
        return inside_height & (np.abs(x) <= half_base * (y - top) / (bottom - top))
    raise ValueError(f"Unknown shape {shape!r}; known: {', '.join(SHAPES)}.")
