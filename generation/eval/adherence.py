"""Prompt adherence for toy-world clips, attribute by attribute: colours, and direction of motion.

`measure_clip` reads a clip as the toy world draws it: the background is the colour of the border
ring, the foreground is every pixel far (in CIE Lab) from that background, and each colour is named
by the nearest entry of the palette in CIE Lab. The direction is the slope of a straight line
fitted through the foreground's centroid frame by frame: "still" when the shape travels less than
a tenth of the frame, else the dominant axis and its sign (image y grows downwards, so "up" is -y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generation.colour import srgb_to_lab
from generation.toyworld.world import COLOURS, Scene

# A pixel belongs to the foreground when it is this far (Lab Delta E 1976) from the background:
# well above codec and decoder noise, well below the distance between any two palette colours.
FOREGROUND_DELTA_E = 25.0
# Fewer foreground pixels than this share of a frame means "no shape" in that frame.
MIN_FOREGROUND_SHARE = 0.01
# Travel below this share of the frame's shorter side over the whole clip reads as "still".
STILL_TRAVEL = 0.1


@dataclass(frozen=True)
class Measurement:
    background: str
    foreground: str | None  # None: no shape found
    direction: str | None  # None: no shape found in at least two frames
    travel: tuple[float, float]  # (dx, dy) of the fitted centroid track over the clip, in pixels


_NAMES = tuple(COLOURS)
_PALETTE_LAB = srgb_to_lab(np.array([COLOURS[n] for n in _NAMES]))


def nearest_colour(rgb) -> str:
    """The palette name nearest to one sRGB colour in CIE Lab."""
    distances = np.linalg.norm(_PALETTE_LAB - srgb_to_lab(np.asarray(rgb))[None], axis=-1)
    return _NAMES[int(np.argmin(distances))]


def foreground_mask(video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background sRGB, foreground mask (F, H, W)): the background is the median colour of the
    two-pixel border ring over all frames; the foreground every pixel far from it in CIE Lab."""
    _, height, width, _ = video.shape
    ring = np.ones((height, width), dtype=bool)
    ring[2:-2, 2:-2] = False
    background_rgb = np.median(video[:, ring].reshape(-1, 3), axis=0)
    mask = np.linalg.norm(srgb_to_lab(video) - srgb_to_lab(background_rgb), axis=-1) > FOREGROUND_DELTA_E
    return background_rgb, mask


def centroids(frames: np.ndarray) -> np.ndarray:
    """(F, 2) centroid (x, y) of the foreground in each frame; NaN where a frame shows no shape."""
    return _track(foreground_mask(np.asarray(frames))[1])


def _track(mask: np.ndarray) -> np.ndarray:
    """(F, 2) centroid of each frame's mask; NaN in frames with under MIN_FOREGROUND_SHARE of it."""
    num_frames, height, width = mask.shape
    ys, xs = np.mgrid[0:height, 0:width]
    out = np.full((num_frames, 2), np.nan)
    for t in range(num_frames):
        if mask[t].sum() >= MIN_FOREGROUND_SHARE * height * width:
            out[t] = xs[mask[t]].mean(), ys[mask[t]].mean()
    return out


def measure_clip(frames: np.ndarray) -> Measurement:
    """Background and foreground colour names and motion direction of a uint8 clip (F, H, W, 3)."""
    video = np.asarray(frames)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"measure_clip needs frames shaped (F, H, W, 3); got {video.shape}.")
    num_frames, height, width, _ = video.shape
    # 1-2. Background (border ring) and foreground (pixels far from it).
    background_rgb, mask = foreground_mask(video)
    track = _track(mask)
    present = ~np.isnan(track[:, 0])
    if not present.any():
        return Measurement(nearest_colour(background_rgb), None, None, (0.0, 0.0))
    foreground = nearest_colour(np.median(video[mask], axis=0))

    # 3. Direction: least-squares line through the centroids of the frames that show the shape.
    if present.sum() < 2:
        return Measurement(nearest_colour(background_rgb), foreground, None, (0.0, 0.0))
    t = np.flatnonzero(present).astype(np.float64)
    cx, cy = track[present, 0], track[present, 1]
    span = max(num_frames - 1, 1)
    dx, dy = np.polyfit(t, cx, 1)[0] * span, np.polyfit(t, cy, 1)[0] * span
    if max(abs(dx), abs(dy)) < STILL_TRAVEL * min(height, width):
        direction = "still"
    elif abs(dx) >= abs(dy):
        direction = "right" if dx > 0 else "left"
    else:
        direction = "down" if dy > 0 else "up"
    return Measurement(nearest_colour(background_rgb), foreground, direction, (float(dx), float(dy)))


def score_clip(frames: np.ndarray, scene: Scene) -> dict[str, bool]:
    """Attribute -> whether the clip shows what `scene` asks for."""
    m = measure_clip(frames)
    return {"foreground": m.foreground == scene.colour, "background": m.background == scene.background,
            "direction": m.direction == scene.direction}
