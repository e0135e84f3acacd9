"""Editing in the toy world: `python benchmarks/editing.py`.

Every edit of `generation.editing` on the trained `tiny` model (9 frames, 32x32, 20 steps), on
held-out scenes (`world.heldout_scenes`), judged by the adherence checker and the toy world's own
ground truth:

- re-scene: the hero is a held-out scene as the toy world draws it; the keep box is the box the
  shape's path covers (plus a pixel); the prompt names another background.
  `rescene_kept_psnr_db`: PSNR of the product's own pixels (the ground-truth matte eroded by 1 px)
  against the hero. `rescene_setting`: the share of clips whose background reads as the new one
  both at the border and inside the box (its pixels off the product). `rescene_foreground`: the
  checker still reads the product's colour. `rescene_evaluations_ratio`: transformer calls of a
  re-scene against generating the same clip from scratch.
- image-to-video: the first frame of a held-out moving scene, its caption as the prompt.
  `i2v_first_frame_psnr_db` (capped at 99: the frame is pasted back exactly), `i2v_direction`.
- extend: held-out moving scenes (their paths cross the frame: the shape leaves it or enters),
  extended by 8 frames forward (half of them) or backward.
  `extend_seam`: the share whose displacement across the seam is at most 1.5x the clip's median
  per-frame displacement; `extend_direction`: the new frames move as the caption says.
- loop: `loop_seam`: the share whose last-to-first frame difference is at most the clip's median
  frame-to-frame difference, over all held-out scenes; printed apart for still scenes (a still clip
  loops as it is, and `editing.loop` returns it unchanged) and moving ones (which need the bridge).
  Also printed: the same for clips the model made of those scenes (not a key).
- connect: the clip of a scene's centred path and the same path's continuation from its fifth
  frame (two shots of one move with a gap between them); `connect_seam`: both seams of
  clip + bridge + other pass the extend test.

The last line is one JSON object with those keys.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from generation import editing  # noqa: E402
from generation.engine import Engine  # noqa: E402
from generation.eval.adherence import centroids, foreground_mask, measure_clip, nearest_colour  # noqa: E402
from generation.tiny_model import resolve_model_path  # noqa: E402
from generation.toyworld.world import TRAIN_COLOURS, Scene, heldout_scenes, render_clip  # noqa: E402

SIZE = {"width": 32, "height": 32}
FRAMES = 9
SEAM_FACTOR = 1.5
PSNR_CAP = 99.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--clips", type=int, default=40, help="held-out scenes per edit")
    args = parser.parse_args()
    started = time.perf_counter()
    engine = Engine(resolve_model_path(args.model, Path("var/model-cache")), device="cpu")
    call = {"negative_prompt": "", "steps": args.steps, "guidance": args.guidance}
    scenes = heldout_scenes()
    moving = [s for s in scenes if s.direction != "still"][:args.clips]
    rng = random.Random(5)
    figures: dict[str, float] = {}

    # 1. Re-scene.
    psnrs, setting, foreground, ratios = [], 0, 0, []
    for i, scene in enumerate(scenes[:args.clips]):
        hero = render_clip(scene, seed=i, num_frames=FRAMES, **SIZE)
        matte = _true_matte(scene, i)
        box = _path_box(matte)
        new_bg = rng.choice([c for c in TRAIN_COLOURS if c not in (scene.colour, scene.background)])
        prompt = Scene(scene.shape, scene.colour, scene.direction, new_bg).caption()
        [out] = editing.rescene(engine, clip=hero, keep_box=box, prompt=prompt, seeds=[i], **call)
        edit_calls = engine.last_forward_calls
        engine.generate(prompt=prompt, seeds=[i], num_frames=FRAMES, **SIZE, **call)
        ratios.append(edit_calls / engine.last_forward_calls)
        core = _erode(matte)
        psnrs.append(_psnr(out.frames[core], hero[core]))
        m = measure_clip(out.frames)
        setting += m.background == new_bg and _box_background(out.frames, box, matte) == new_bg
        foreground += m.foreground == scene.colour
    n = len(psnrs)
    figures.update(rescene_kept_psnr_db=float(np.median(psnrs)), rescene_setting=setting / n,
                   rescene_foreground=foreground / n, rescene_evaluations_ratio=float(np.mean(ratios)))
    print(f"re-scene ({n} clips): kept PSNR median {figures['rescene_kept_psnr_db']:.1f} dB, new setting "
          f"{setting / n:.0%}, product colour {foreground / n:.0%}, evaluations x{figures['rescene_evaluations_ratio']:.2f}")

    # 2. Image-to-video.
    psnrs, direction = [], 0
    for i, scene in enumerate(moving):
        first = render_clip(scene, seed=i, num_frames=FRAMES, **SIZE)[0]
        [out] = editing.image_to_video(engine, image=first, prompt=scene.caption(), seeds=[i], num_frames=FRAMES,
                                       **SIZE, **call)
        psnrs.append(_psnr(out.frames[0], first))
        direction += measure_clip(out.frames).direction == scene.direction
    figures.update(i2v_first_frame_psnr_db=float(np.median(psnrs)), i2v_direction=direction / len(moving))
    print(f"image-to-video ({len(moving)} clips): first frame {figures['i2v_first_frame_psnr_db']:.1f} dB, "
          f"direction {figures['i2v_direction']:.0%}")

    # 3. Extend: forward for even scenes, backward for odd ones, 8 frames.
    seams, direction = 0, 0
    for i, scene in enumerate(moving):
        clip = render_clip(scene, seed=i, num_frames=FRAMES, **SIZE)
        where = "forward" if i % 2 == 0 else "backward"
        [out] = editing.extend(engine, clip=clip, frames=8, direction=where, prompt=scene.caption(), seeds=[i], **call)
        seam = FRAMES - 1 if where == "forward" else 8  # the last kept -> first new boundary
        new = out.frames[seam:] if where == "forward" else out.frames[:seam + 1]
        seams += _seam_ok(out.frames, [seam] if where == "forward" else [seam - 1])
        direction += measure_clip(new).direction == scene.direction
    figures.update(extend_seam=seams / len(moving), extend_direction=direction / len(moving))
    print(f"extend ({len(moving)} clips, 8 frames): seam {seams / len(moving):.0%}, direction "
          f"{direction / len(moving):.0%}")

    # 4. Loop.
    loops = {"still": [0, 0], "moving": [0, 0]}  # seamless, clips
    jumps = []  # moving clips: last-to-first change over the median frame-to-frame change
    for i, scene in enumerate(scenes[:args.clips]):
        clip = render_clip(scene, seed=i, num_frames=FRAMES, **SIZE)
        [out] = editing.loop(engine, clip=clip, prompt=scene.caption(), seeds=[i], **call)
        tally = loops["still" if scene.direction == "still" else "moving"]
        tally[0] += editing.loops_seamlessly(out.frames)
        tally[1] += 1
        if scene.direction != "still":
            jump, usual = editing.loop_changes(out.frames)
            jumps.append(jump / usual)
    figures["loop_seam"] = (loops["still"][0] + loops["moving"][0]) / args.clips
    print(f"loop ({args.clips} clips): seamless {figures['loop_seam']:.0%} (still clips {loops['still'][0]} of "
          f"{loops['still'][1]}, moving {loops['moving'][0]} of {loops['moving'][1]}; a moving loop's jump back is "
          f"{np.median(jumps):.2f}x its median frame-to-frame change, median of {len(jumps)})")
    # The same loops of clips the model made from the scenes' captions, as the platform loops its
    # own clips: their frames and the bridge's are decoded alike (printed, not a key).
    made = 0
    for i, scene in enumerate(scenes[:args.clips]):
        [clip] = engine.generate(prompt=scene.caption(), seeds=[i], num_frames=FRAMES, **SIZE, **call)
        [out] = editing.loop(engine, clip=clip, prompt=scene.caption(), seeds=[i], **call)
        made += editing.loops_seamlessly(out.frames)
    print(f"loop of the model's own clips of the same scenes: seamless {made / args.clips:.0%}")

    # 5. Connect: a scene's centred clip to the same path's continuation from its fifth frame.
    connects = 0
    for i, scene in enumerate(moving):
        first = render_clip(scene, seed=i, num_frames=FRAMES, **SIZE)
        second = render_clip(scene, seed=i, num_frames=FRAMES, window=1, **SIZE)[4:]
        [bridge] = editing.connect(engine, clip=first, other=second, prompt=scene.caption(), seeds=[i], **call)
        whole = np.concatenate([first, bridge.frames[1:-1], second])
        connects += _seam_ok(whole, [FRAMES - 1, FRAMES - 1 + len(bridge.frames) - 2])
    figures["connect_seam"] = connects / len(moving)
    print(f"connect ({len(moving)} pairs): both seams {figures['connect_seam']:.0%}")

    print(f"benchmark took {time.perf_counter() - started:.0f} s")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


def _true_matte(scene: Scene, seed: int) -> np.ndarray:
    """The shape's own pixels on every frame, from the toy world itself (drawn on a contrasting ground)."""
    ground = "black" if scene.colour != "black" else "white"
    probe = render_clip(Scene(scene.shape, scene.colour, scene.direction, ground), seed=seed, num_frames=FRAMES, **SIZE)
    return foreground_mask(probe)[1]


def _path_box(matte: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(matte.any(axis=0))
    height, width = matte.shape[1:]
    return [max(0, xs.min() - 1) / width, max(0, ys.min() - 1) / height,
            min(width, xs.max() + 2) / width, min(height, ys.max() + 2) / height]


def _erode(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    out = mask.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        out &= padded[:, dy:dy + mask.shape[1], dx:dx + mask.shape[2]]
    return out


def _box_background(frames: np.ndarray, box: list[float], matte: np.ndarray) -> str:
    """The colour name of the box's pixels away from the product (the old background's place)."""
    height, width = frames.shape[1:3]
    inside = editing.box_mask(tuple(box), width=width, height=height).astype(bool)
    grown = ~_erode(~matte)  # the product and a one-pixel ring around it
    grown = ~_erode(~grown)
    around = inside[None] & ~grown
    if not around.any():
        return measure_clip(frames).background
    return nearest_colour(np.median(frames[around], axis=0))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(255.0 ** 2 / mse))


def _seam_ok(frames: np.ndarray, seams: list[int]) -> bool:
    """Whether the shape's displacement across each seam (frame s -> s+1) is at most SEAM_FACTOR
    times its median per-frame displacement over the clip."""
    track = centroids(frames)
    steps = np.linalg.norm(np.diff(track, axis=0), axis=1)
    usual = np.nanmedian(steps)
    for s in seams:
        if not np.isfinite(steps[s]) or steps[s] > SEAM_FACTOR * usual:
            return False
    return True


if __name__ == "__main__":
    main()
