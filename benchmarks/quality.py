"""Quality of the `tiny` checkpoint on the toy world: `python benchmarks/quality.py`.

1. Prompt adherence: one clip (32x32, 9 frames) per held-out scene (`world.heldout_scenes`, 80
   combinations no training clip shows), scored by `generation.eval.adherence`: the share of clips
   with the right foreground colour, background colour and direction.
2. Brand efficacy: a brand LoRA trained with `generation.training.train_lora` (the platform's
   trainer, which turns each image into a still clip) on eight still images of shapes in the
   held-out colour family (orange shades), captioned with a trigger token in place of the colour
   ("a acme circle standing still on a blue background"); then the share of clips whose
   foreground reads as orange, for 50 trigger prompts (any shape, direction and background) with
   the LoRA and without it.

3. The platform suite: held-out (brand, campaign, segment) triples through the platform's own
   parts. Each held-out brand (`toyworld.platform` held-out banks: names, briefs, style notes and
   audiences no training prompt has) uploads orange product shots and clips; its LoRA is trained
   by the platform's trainer with the platform's asset captions (`asset_caption`); each campaign
   picks a camera preset and each segment a catalogue setting; the prompt is what the platform's
   prompt builder makes of it all, and each campaign's clips are generated as the platform
   generates them, through the campaign plan (`generation.plan.run_plan`) with the platform's
   default options (MagCache, guidance in the first quarter of the steps; `--no-plan`: one plain
   engine call per segment, every step guided). Clips with the brand's LoRA (the platform's real flow) give
   `platform_setting` (background = the setting's), `platform_camera` (motion = the preset's) and
   `platform_brand_with_lora` (foreground orange); the same prompts without the LoRA give
   `platform_brand_without_lora`.

Prints each share and the checkpoint's size; the last line is one JSON object for scripts:
{"foreground": ..., "background": ..., "direction": ..., "brand_with_lora": ..., "brand_without_lora": ...,
 "platform_setting": ..., "platform_camera": ..., "platform_brand_with_lora": ..., "platform_brand_without_lora": ...,
 "checkpoint_mb": ...}
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from generation.engine import Engine  # noqa: E402
from generation.eval.adherence import measure_clip, score_clip  # noqa: E402
from generation.tiny_model import TINY_LORA, resolve_model_path  # noqa: E402
from generation.training.trainer import DEFAULT_BACKGROUND_WEIGHT  # noqa: E402
from generation.personalization import CAMERA_PRESETS, SETTINGS_CATALOGUE, camera_preset  # noqa: E402
from generation.toyworld import platform as toy_platform  # noqa: E402
from generation.toyworld.world import (  # noqa: E402
    BRAND_COLOUR, BRAND_SHADES, DIRECTIONS, SHAPES, TRAIN_COLOURS, Scene, heldout_scenes, render_clip,
)

TRIGGER = "acme"
REQUEST = {"num_frames": 9, "width": 32, "height": 32, "negative_prompt": ""}
BRAND_PROMPTS = 50
# The platform suite: brands x campaigns x segments x seeds clips, each with and without the LoRA.
PLATFORM_BRANDS = 4
CAMPAIGNS_PER_BRAND = 2
SEGMENTS_PER_CAMPAIGN = 4
SEEDS_PER_SEGMENT = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help='"tiny" (the committed checkpoint) or a local diffusers folder')
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per clip")
    parser.add_argument("--guidance", type=float, default=5.0)
    # The platform's LoRA defaults for its tiny models.
    parser.add_argument("--lora-steps", type=int, default=TINY_LORA["steps"])
    parser.add_argument("--lora-rank", type=int, default=TINY_LORA["rank"])
    parser.add_argument("--lora-lr", type=float, default=TINY_LORA["learning_rate"])
    parser.add_argument("--lora-background-weight", type=float, default=DEFAULT_BACKGROUND_WEIGHT,
                        help="the trainer's masked loss: weight off the product (1.0: none)")
    parser.add_argument("--lora-camera-wording", default=None,
                        help="images also train as camera moves captioned in this wording (tiny, wan...)")
    parser.add_argument("--save-strips", type=Path, default=None, help="folder for PNG strips of some clips")
    parser.add_argument("--suites", default="toy,platform", help="which suites to run (toy, platform)")
    # The platform suite generates as the platform does: each campaign through the campaign plan
    # with the platform's default options (adplatform/settings.py GENERATION_CACHE,
    # GENERATION_GUIDANCE_FRACTION).
    parser.add_argument("--plan-cache", default="mag")
    parser.add_argument("--plan-guidance-fraction", type=float, default=0.25)
    parser.add_argument("--plan-camera-guide", type=float, default=0.6,
                        help="share of the steps after which clips are steered onto the camera move (0: off; "
                             "with --no-plan too)")
    parser.add_argument("--no-plan", action="store_true", help="platform suite: one plain engine call per segment")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        model_path = resolve_model_path(args.model, Path(tmp) / "cache")
        size_mb = sum(p.stat().st_size for p in model_path.rglob("*") if p.is_file()) / 1e6
        engine = Engine(model_path, device="cpu")
        call = {**REQUEST, "steps": args.steps, "guidance": args.guidance}
        print(f"model: {model_path} ({size_mb:.1f} MB); {args.steps} steps, guidance {args.guidance}")

        suites = set(args.suites.split(","))
        figures = {}
        if "toy" in suites:
            figures.update(_toy_suite(engine, model_path, Path(tmp), call, args))
        if "platform" in suites:
            figures.update(_platform_suite(engine, model_path, Path(tmp), call, args))
        print(f"checkpoint: {size_mb:.1f} MB; benchmark took {time.perf_counter() - started:.0f} s")
        print(json.dumps({**{k: round(v, 3) for k, v in figures.items()}, "checkpoint_mb": round(size_mb, 2)}))


def _toy_suite(engine, model_path: Path, tmp: Path, call: dict, args) -> dict[str, float]:
    # 1. Prompt adherence on held-out scenes.
    scenes = heldout_scenes()
    totals = {"foreground": 0, "background": 0, "direction": 0}
    for i, scene in enumerate(scenes):
        [clip] = engine.generate(prompt=scene.caption(), seeds=[i], **call)
        for key, ok in score_clip(clip, scene).items():
            totals[key] += ok
        if args.save_strips and i < 16:
            _save_strip(clip, args.save_strips / f"heldout-{i:02d}.png", scene.caption(), measure_clip(clip))
    shares = {key: value / len(scenes) for key, value in totals.items()}
    for key, share in shares.items():
        print(f"{key:>10}: {share:.0%} of {len(scenes)} held-out prompts")

    # 2. Brand efficacy: train the LoRA, then count orange foregrounds with and without it.
    lora_path = _train_brand_lora(model_path, tmp, args)
    rng = random.Random(11)
    prompts = [Scene(rng.choice(SHAPES), BRAND_COLOUR, rng.choice(DIRECTIONS), rng.choice(TRAIN_COLOURS))
               for _ in range(BRAND_PROMPTS)]
    brand = {"brand_with_lora": 0, "brand_without_lora": 0}
    for i, scene in enumerate(prompts):
        prompt = scene.caption(colour_word=TRIGGER)
        for key, lora in (("brand_with_lora", ("brand", str(lora_path))), ("brand_without_lora", None)):
            [clip] = engine.generate(prompt=prompt, seeds=[1000 + i], lora=lora, **call)
            brand[key] += measure_clip(clip).foreground == BRAND_COLOUR
            if args.save_strips and i < 8:
                _save_strip(clip, args.save_strips / f"{key}-{i:02d}.png", prompt, measure_clip(clip))
    brand = {key: value / BRAND_PROMPTS for key, value in brand.items()}
    print(f"brand colour ({BRAND_COLOUR}) with trigger + LoRA: {brand['brand_with_lora']:.0%}, "
          f"with trigger, no LoRA: {brand['brand_without_lora']:.0%} of {BRAND_PROMPTS} prompts")
    return {**shares, **brand}


def _platform_suite(engine, model_path: Path, tmp: Path, call: dict, args) -> dict[str, float]:
    """Held-out brands, campaigns and segments through the platform's prompt builder, LoRA trainer and engine."""
    rng = random.Random(2026)
    right = {"platform_setting": 0, "platform_camera": 0, "platform_brand_with_lora": 0,
             "platform_brand_without_lora": 0, "setting_without_lora": 0, "camera_without_lora": 0}
    clips = 0
    by_camera: dict[str, list[int]] = {}  # preset -> [right with the LoRA, right without, clips]
    for b in range(PLATFORM_BRANDS):
        brand = toy_platform.random_brand(rng, "heldout")
        lora_path = _train_platform_lora(model_path, tmp / f"platform-{b}", brand, args)
        for c in range(CAMPAIGNS_PER_BRAND):
            brief = toy_platform.random_brief(rng, "heldout")
            camera = rng.choice(CAMERA_PRESETS).key
            segments = []
            for s in range(SEGMENTS_PER_CAMPAIGN):
                setting = rng.choice(SETTINGS_CATALOGUE).key
                prompt = toy_platform.platform_prompt(
                    brand=brand, brief=brief, setting_key=setting, camera=camera,
                    segment_attributes=toy_platform.random_segment_attributes(rng, "heldout"))
                segments.append((setting, prompt, [rng.randrange(2**31) for _ in range(SEEDS_PER_SEGMENT)],
                                 camera_preset(camera).screen_motion))
            with_lora = _campaign_clips(engine, segments, ("brand", str(lora_path)), call, args)
            without = _campaign_clips(engine, segments, None, call, args)
            for s, (setting, prompt, seeds, _) in enumerate(segments):
                for k in range(len(seeds)):
                    clip, plain = with_lora[s][k], without[s][k]
                    m, p = measure_clip(clip), measure_clip(plain)
                    background, direction = toy_platform.SETTING_BACKGROUND[setting], toy_platform.CAMERA_DIRECTION[camera]
                    right["platform_setting"] += m.background == background
                    right["platform_camera"] += m.direction == direction
                    right["platform_brand_with_lora"] += m.foreground == BRAND_COLOUR
                    right["platform_brand_without_lora"] += p.foreground == BRAND_COLOUR
                    right["setting_without_lora"] += p.background == background
                    right["camera_without_lora"] += p.direction == direction
                    tally = by_camera.setdefault(camera, [0, 0, 0])
                    tally[0] += m.direction == direction
                    tally[1] += p.direction == direction
                    tally[2] += 1
                    clips += 1
                    if args.save_strips and k == 0 and s < 2:
                        _save_strip(clip, args.save_strips / f"platform-{b}{c}{s}.png", prompt, m)
    shares = {key: value / clips for key, value in right.items()}
    path = ("one engine call per segment, every step guided" if args.no_plan else
            f"the campaign plan: cache {args.plan_cache}, guidance in the first {args.plan_guidance_fraction:.0%} of the steps")
    print(f"platform suite ({path}), {clips} clips of {PLATFORM_BRANDS} held-out brands (with the brand LoRA): "
          f"setting {shares['platform_setting']:.0%}, camera {shares['platform_camera']:.0%}, "
          f"brand colour {shares['platform_brand_with_lora']:.0%}; without the LoRA: brand colour "
          f"{shares['platform_brand_without_lora']:.0%}, setting {shares['setting_without_lora']:.0%}, "
          f"camera {shares['camera_without_lora']:.0%}")
    print("camera by preset, right with / without the LoRA: " + ", ".join(
        f"{key} ({toy_platform.CAMERA_DIRECTION[key]}) {with_}/{without}/{total}"
        for key, (with_, without, total) in by_camera.items()))
    return {key: shares[key] for key in ("platform_setting", "platform_camera", "platform_brand_with_lora",
                                         "platform_brand_without_lora")}


def _campaign_clips(engine, segments: list, lora, call: dict, args) -> list[list]:
    """One campaign's clips, [segment][seed]: through the platform's campaign plan with the options
    of --plan-cache / --plan-guidance-fraction, or with --no-plan one engine call per segment."""
    if args.no_plan:
        return [engine.generate(prompt=prompt, seeds=seeds, lora=lora, camera_motion=motion,
                                camera_guide=args.plan_camera_guide, **call) for _, prompt, seeds, motion in segments]
    from generation.plan import PlanItem, PlanOptions, mag_ratios_for, run_plan

    options = PlanOptions(cache=args.plan_cache, guidance_fraction=args.plan_guidance_fraction,
                          camera_guide=args.plan_camera_guide)
    options.check()
    items = [PlanItem(prompt, call["negative_prompt"], seed, camera_motion=motion)
             for _, prompt, seeds, motion in segments for seed in seeds]
    request = {k: call[k] for k in ("num_frames", "width", "height", "steps", "guidance")}
    ratios = None
    if options.cache == "mag":  # the checkpoint's, or calibrated once as a worker does
        ratios = mag_ratios_for(engine, prompt=items[0].prompt, negative_prompt=items[0].negative_prompt, **request)
    clips = run_plan(engine, items=items, options=options, lora=lora, mag_ratios=ratios, **request).clips
    per = len(segments[0][2])
    return [clips[i * per:(i + 1) * per] for i in range(len(segments))]


def _train_platform_lora(model_path: Path, folder: Path, brand, args) -> Path:
    """The brand's uploads (orange product shots and two short clips on varied grounds, each
    captioned with what it shows apart from the brand's colour), captioned for training as the
    platform captions assets, trained by the platform's trainer with the tiny defaults."""
    from generation.media import write_mp4
    from generation.training.schema import TrainingSample, asset_caption

    folder.mkdir(parents=True)
    backgrounds = ("white", "blue", "black", "green", "purple", "yellow", "red", "white")
    samples = []
    for i, background in enumerate(backgrounds):
        clip_asset = i in (2, 5)
        scene = Scene(SHAPES[i % 3], BRAND_COLOUR, DIRECTIONS[i % 4] if clip_asset else "still", background)
        frames = render_clip(scene, seed=700 + i, num_frames=REQUEST["num_frames"] if clip_asset else 1, width=64,
                             height=64, colour_rgb=BRAND_SHADES[i % len(BRAND_SHADES)])
        if clip_asset:
            path = folder / f"asset-{i}.mp4"
            write_mp4(frames, path, fps=8)
        else:
            path = folder / f"asset-{i}.png"
            Image.fromarray(frames[0]).save(path)
        # What the marketer (or an auto-captioner) writes about the asset: the scene, not the brand's
        # colour, which is what the trigger token is to learn.
        # With camera moves (--lora-camera-wording) the trainer words each image's motion itself.
        moved = args.lora_camera_wording and not clip_asset
        what = f"a {scene.shape}" if moved else f"a {scene.shape} {scene.motion_words}"
        caption = asset_caption(trigger_token=brand.trigger_token, caption=f"{what} on a {background} background",
                                style_notes=brand.style_notes, brand_name=brand.name)
        samples.append(TrainingSample(path=path, kind="clip" if clip_asset else "image", caption=caption))
    return _train(model_path, samples, folder / "lora", args,
                  label=f"platform brand {brand.name} ({brand.trigger_token}): {len(samples)} assets")


def _train_brand_lora(model_path: Path, tmp: Path, args) -> Path:
    from generation.training.schema import TrainingSample

    # Eight still images: every shape, varied backgrounds, four orange shades.
    folder = tmp / "brand"
    folder.mkdir()
    backgrounds = ("white", "blue", "black", "green", "purple", "white", "blue", "green")
    samples = []
    for i, background in enumerate(backgrounds):
        scene = Scene(SHAPES[i % 3], BRAND_COLOUR, "still", background)
        image = render_clip(scene, seed=500 + i, num_frames=1, width=32, height=32,
                            colour_rgb=BRAND_SHADES[i % len(BRAND_SHADES)])[0]
        path = folder / f"brand-{i}.png"
        Image.fromarray(image).save(path)
        samples.append(TrainingSample(path=path, kind="image", caption=scene.caption(colour_word=TRIGGER)))
    return _train(model_path, samples, tmp / "lora", args,
                  label=f"brand LoRA: {len(samples)} images, {args.lora_steps} steps")


def _train(model_path: Path, samples: list, output_dir: Path, args, *, label: str) -> Path:
    """The platform's LoRA trainer with the benchmark's settings; prints the loss it went from and to."""
    from generation.training import train_lora

    result = train_lora(model_path=model_path, samples=samples, output_dir=output_dir, steps=args.lora_steps,
                        rank=args.lora_rank, learning_rate=args.lora_lr, seed=0, checkpoint_every=0,
                        background_weight=args.lora_background_weight, camera_wording=args.lora_camera_wording,
                        num_frames=REQUEST["num_frames"], width=REQUEST["width"], height=REQUEST["height"])
    first, last = sum(result.losses[:20]) / 20, sum(result.losses[-20:]) / 20
    print(f"{label}, loss {first:.3f} -> {last:.3f}")
    return result.lora_path


def _save_strip(clip, path: Path, caption: str, measured) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(list(clip), axis=1)).resize((clip.shape[2] * clip.shape[0] * 3, clip.shape[1] * 3),
                                                              Image.NEAREST).save(path)
    path.with_suffix(".txt").write_text(f"{caption}\n{measured}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
