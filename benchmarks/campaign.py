"""Cost per clip of a campaign, naive against the plan: `python benchmarks/campaign.py`.

On `tiny` at the model's default size and steps (9 frames 32x32, 20 steps, guidance 5), each
campaign is 8 segments x 3 variants of held-out platform prompts (`generation.toyworld.platform`:
held-out brands, briefs and audiences; each segment a catalogue setting, the campaign one camera
preset), generated twice on the same loaded pipeline:
- naive: one plain `pipe(prompt=..., generator=...)` call per clip;
- the plan (`generation.plan.run_plan`) with the options given below (the platform's defaults).
Clips of the same prompt and seed are scored by `generation.eval.adherence`: setting (= the
background colour the setting means), camera (= the motion the preset means) and brand colour
(= the foreground is orange, with the brand's LoRA trained by the platform's trainer; skipped with
--no-lora). The toy world ties background colour to the setting and foreground colour to the
brand, so those are the same measures. quality_drop is the largest drop (naive share - plan share).

Seconds are medians over campaigns; the last line is one JSON object:
{"evaluations_per_clip", "naive_evaluations_per_clip", "evaluations_ratio", "seconds_per_clip",
 "naive_seconds_per_clip", "speedup", "peak_mb", "quality_drop", ...}
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.memory import peak_memory_mb  # noqa: E402
from generation.engine import Engine  # noqa: E402
from generation.eval.adherence import measure_clip  # noqa: E402
from generation.media import to_uint8_frames  # noqa: E402
from generation.personalization import CAMERA_PRESETS, SETTINGS_CATALOGUE  # noqa: E402
from generation.plan import PlanItem, PlanOptions, calibrate_mag_ratios, load_mag_ratios, run_plan  # noqa: E402
from generation.tiny_model import resolve_model_path  # noqa: E402
from generation.toyworld import platform as toy_platform  # noqa: E402
from generation.toyworld.world import BRAND_COLOUR, DIRECTIONS, SHAPES, TRAIN_COLOURS, Scene  # noqa: E402

SEGMENTS = 8
VARIANTS = 3
TINY = {"num_frames": 9, "width": 32, "height": 32, "steps": 20, "guidance": 5.0}
# What each measure reads off `measure_clip`.
READS = {"setting": "background", "camera": "direction", "brand_colour": "foreground",
         "background": "background", "direction": "direction", "foreground": "foreground"}


def build_parser() -> argparse.ArgumentParser:
    """The options; the plan's defaults are the platform's (adplatform/settings.py GENERATION_*)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--campaigns", type=int, default=4, help="campaigns of 8 x 3 clips (4 = 96 clips)")
    parser.add_argument("--prefix-fraction", type=float, default=0.0)
    parser.add_argument("--prefix-prompt", choices=("first", "common"), default="first")
    parser.add_argument("--cache", default="mag")
    parser.add_argument("--cache-threshold", type=float, default=0.0)
    parser.add_argument("--guidance-fraction", type=float, default=0.25)
    parser.add_argument("--micro-batch", type=int, default=0)
    parser.add_argument("--no-lora", action="store_true", help="skip the brand LoRA (and the brand-colour measure)")
    parser.add_argument("--suite", choices=("platform", "toy"), default="platform",
                        help="platform prompts (a checkpoint trained on them) or toy-world captions")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--recalibrate", action="store_true", help="calibrate MagCache ratios even if stored")
    parser.add_argument("--seed", type=int, default=2026, help="draws the campaigns (brands, briefs, settings, seeds)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    options = PlanOptions(micro_batch=args.micro_batch, prefix_fraction=args.prefix_fraction, cache=args.cache,
                          cache_threshold=args.cache_threshold, guidance_fraction=args.guidance_fraction)
    options.check()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as tmp:
        # 1. Load once; MagCache ratios from the checkpoint, calibrated (and stored) when absent.
        model_path = resolve_model_path(args.model, Path(tmp) / "cache")
        engine = Engine(model_path)
        # The project's own toy-world checkpoints carry toyworld.json: their default request.
        request = TINY if (model_path / "toyworld.json").is_file() else {
            "num_frames": engine.family.default_num_frames, "width": engine.family.default_width,
            "height": engine.family.default_height, "steps": engine.family.default_steps,
            "guidance": engine.family.default_guidance}
        ratios = None
        if options.cache == "mag":
            ratios = None if args.recalibrate else load_mag_ratios(model_path)
            if ratios is None:
                calib_rng = random.Random(7)
                prompts = [toy_platform.random_platform_caption(calib_rng, background=bg, direction=d)
                           for bg, d in (("blue", "left"), ("green", "still"), ("black", "up"), ("yellow", "right"))]
                ratios = calibrate_mag_ratios(engine, prompts=prompts, negative_prompt="",
                                              **{k: request[k] for k in TINY})
                print(f"MagCache ratios calibrated and stored in {model_path}: {ratios}")
        print(f"model {model_path} on {engine.device}; {args.campaigns} campaigns of {SEGMENTS} x {VARIANTS}; "
              f"request {request}; plan {options}, prefix prompt {args.prefix_prompt}")

        # 2. Campaigns: held-out brand, brief, camera; one catalogue setting per segment.
        rng = random.Random(args.seed)
        naive_seconds, plan_seconds, naive_evals, plan_evals, clips_total = [], [], 0.0, 0.0, 0
        measures = _measures(args)
        right = {f"{who}_{m}": 0 for who in ("naive", "plan") for m in measures}
        agree = {"foreground": 0, "background": 0, "direction": 0}
        for c in range(args.campaigns):
            segments, lora, prefix = _campaign(rng, args, c, model_path, Path(tmp))
            seeds = [rng.randrange(2**31) for _ in range(VARIANTS)]
            items = [PlanItem(prompt, "", seed) for prompt, _ in segments for seed in seeds]
            if prefix is not None:
                prefix = {seed: prefix for seed in seeds}

            # 3. Naive: one plain pipeline call per clip.
            engine._use_lora(lora)
            t0 = time.perf_counter()
            tally = _BlockTally(engine)
            naive = []
            for item in items:
                out = engine.pipe(prompt=item.prompt, negative_prompt=item.negative_prompt,
                                  num_frames=request["num_frames"], width=request["width"], height=request["height"],
                                  num_inference_steps=request["steps"], guidance_scale=request["guidance"],
                                  generator=torch.Generator().manual_seed(item.seed), output_type="np")
                naive.append(to_uint8_frames(out.frames[0]))
            if cuda:
                torch.cuda.synchronize()
            naive_seconds.append((time.perf_counter() - t0) / len(items))
            naive_evals += tally.close()

            # 4. The plan, same prompts and seeds.
            result = run_plan(engine, items=items, options=options, prefix_prompts=prefix, lora=lora,
                              mag_ratios=ratios, **request)
            plan_seconds.append(result.seconds / len(items))
            plan_evals += result.evaluations
            clips_total += len(items)

            # 5. Adherence of both, clip by clip.
            for k, (a, b) in enumerate(zip(naive, result.clips)):
                expected = segments[k // VARIANTS][1]
                ma, mb = measure_clip(a), measure_clip(b)
                for who, m in (("naive", ma), ("plan", mb)):
                    for measure, want in expected.items():
                        right[f"{who}_{measure}"] += getattr(m, READS[measure]) == want
                agree["foreground"] += ma.foreground == mb.foreground
                agree["background"] += ma.background == mb.background
                agree["direction"] += ma.direction == mb.direction
            print(f"campaign {c + 1}/{args.campaigns}: naive {naive_seconds[-1]:.4f} s/clip, plan "
                  f"{plan_seconds[-1]:.4f} s/clip; plan {result.savings}")

    # 6. Report.
    shares = {k: v / clips_total for k, v in right.items()}
    drops = {m: shares[f"naive_{m}"] - shares[f"plan_{m}"] for m in measures}
    naive_per_clip, plan_per_clip = naive_evals / clips_total, plan_evals / clips_total
    naive_s, plan_s = statistics.median(naive_seconds), statistics.median(plan_seconds)
    peak_mb, peak_what = peak_memory_mb(cuda)
    for m in measures:
        print(f"{m:>13}: naive {shares[f'naive_{m}']:.3f}, plan {shares[f'plan_{m}']:.3f} over {clips_total} clips")
    print("plan clip reads as its naive twin: " + ", ".join(f"{k} {v / clips_total:.3f}" for k, v in agree.items()))
    print(f"evaluations per clip {plan_per_clip:.2f} vs naive {naive_per_clip:.2f}; {plan_s:.4f} vs {naive_s:.4f} "
          f"s/clip; peak {peak_mb:.0f} MB ({peak_what}); took {time.perf_counter() - started:.0f} s")
    print(json.dumps({
        "evaluations_per_clip": round(plan_per_clip, 3),
        "naive_evaluations_per_clip": round(naive_per_clip, 3),
        "evaluations_ratio": round(plan_per_clip / naive_per_clip, 4),
        "seconds_per_clip": round(plan_s, 5),
        "naive_seconds_per_clip": round(naive_s, 5),
        "speedup": round(naive_s / plan_s, 3),
        "peak_mb": round(peak_mb, 1),
        "quality_drop": round(max(0.0, max(drops.values())), 4),
        "drops": {k: round(v, 4) for k, v in drops.items()},
        "agreement": {k: round(v / clips_total, 4) for k, v in agree.items()},
        "clips": clips_total,
        "suite": args.suite,
        "brand_colour": "skipped" if args.no_lora or args.suite == "toy" else "with the brand LoRA",
        "plan": {**options.__dict__, "prefix_prompt": args.prefix_prompt},
    }))


def _measures(args) -> tuple[str, ...]:
    if args.suite == "toy":
        return ("foreground", "background", "direction")
    return ("setting", "camera") if args.no_lora else ("setting", "camera", "brand_colour")


def _campaign(rng: random.Random, args, c: int, model_path: Path, tmp: Path):
    """One campaign: [(prompt, {measure: expected})] per segment, the brand LoRA (or None) and the
    common prefix prompt (None: each seed's first prompt)."""
    if args.suite == "toy":
        # The toy analogue: the brand is the shape's colour, the camera its motion, the setting the
        # background; segments differ by background.
        shape, colour, direction = rng.choice(SHAPES), rng.choice(TRAIN_COLOURS), rng.choice(DIRECTIONS)
        segments = []
        for _ in range(SEGMENTS):
            background = rng.choice([x for x in TRAIN_COLOURS if x != colour])
            segments.append((Scene(shape, colour, direction, background).caption(),
                             {"foreground": colour, "background": background, "direction": direction}))
        common = segments[0][0].split(" on a ")[0] if args.prefix_prompt == "common" else None
        return segments, None, common
    brand = toy_platform.random_brand(rng, "heldout")
    brief = toy_platform.random_brief(rng, "heldout")
    camera = rng.choice(CAMERA_PRESETS).key
    lora = None
    if not args.no_lora:
        from benchmarks.quality import _train_platform_lora, build_parser as quality_parser

        lora_args = quality_parser().parse_args([])  # the platform's LoRA defaults, as the quality benchmark trains
        lora = ("brand", str(_train_platform_lora(model_path, tmp / f"lora-{c}", brand, lora_args)))
    segments = []
    for _ in range(SEGMENTS):
        setting = rng.choice(SETTINGS_CATALOGUE).key
        prompt = toy_platform.platform_prompt(brand=brand, brief=brief, setting_key=setting, camera=camera,
                                              segment_attributes=toy_platform.random_segment_attributes(rng, "heldout"))
        expected = {"setting": toy_platform.SETTING_BACKGROUND[setting], "camera": toy_platform.CAMERA_DIRECTION[camera]}
        if lora is not None:
            expected["brand_colour"] = BRAND_COLOUR
        segments.append((prompt, expected))
    common = None
    if args.prefix_prompt == "common":
        # The campaign's common words: the platform prompt without segment clauses and setting.
        common = toy_platform.platform_prompt(brand=brand, brief=brief, setting_key=SETTINGS_CATALOGUE[0].key,
                                              camera=camera, segment_attributes={})
        common = common.replace(SETTINGS_CATALOGUE[0].phrase, "").replace(" ,", ",")
    return segments, lora, common


class _BlockTally:
    """The plan's block counter over a naive run, so both sides are counted the same way."""

    def __init__(self, engine) -> None:
        from generation.plan import BlockCounter

        self.counter = BlockCounter(engine.pipe.transformer)

    def close(self) -> float:
        self.counter.close()
        return self.counter.evaluations


if __name__ == "__main__":
    main()
