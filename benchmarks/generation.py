"""Benchmark of clip generation on the tiny Wan model: `python benchmarks/generation.py`.

Generates a fixed tiny request (4 seeds of 9 frames at 64x64, 4 steps, CFG on) the engine's way
(prompt encoded once, all seeds in one batched pipeline call) and the plain way (one
`pipe(prompt=...)` call per clip, each encoding its own prompt), in the same run on the same
loaded pipeline. Prints seconds per clip (median over repeats, warm-up excluded), peak memory,
transformer forward calls per clip, and the ratio to the baseline. The last line is one JSON
object for scripts:
{"seconds_per_clip": ..., "peak_mb": ..., "forward_calls_per_clip": ..., "baseline_seconds_per_clip": ..., "ratio": ...}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script from anywhere. Position 0 matters: Python puts this file's folder first, and
# this file is itself called generation.py, which would shadow the `generation` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.memory import peak_memory_mb  # noqa: E402

from generation.engine import Engine  # noqa: E402
from generation.media import to_uint8_frames  # noqa: E402
from generation.prompts import build_prompt  # noqa: E402
from generation.tiny_model import resolve_model_path  # noqa: E402

SEEDS = [11, 22, 33, 44]
REQUEST = {"num_frames": 9, "width": 64, "height": 64, "steps": 4, "guidance": 5.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help='"tiny-random" (built on the fly), "tiny" or a local diffusers folder')
    parser.add_argument("--repeats", type=int, default=5, help="measured runs of each method, after one warm-up")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        # 1. Load the model once, as a worker does.
        model_path = resolve_model_path(args.model, Path(tmp))
        engine = Engine(model_path)
        prompt, negative = build_prompt(
            brief="A runner laces up new trail shoes at dawn", brand_name="Acme", style_notes="bold, minimalist",
            palette=["#D62828", "#003049"], trigger_token="acme_style",
            segment_attributes={"interests": ["hiking", "coffee"], "locale": "en-US"},
        )
        print(f"model: {args.model} ({engine.family.pipeline_class}) on {engine.device}, {engine.dtype}; "
              f"{len(SEEDS)} clips of {REQUEST['num_frames']} frames {REQUEST['width']}x{REQUEST['height']}, "
              f"{REQUEST['steps']} steps, guidance {REQUEST['guidance']}")

        # 2. The engine: one prompt encode, all seeds in one batched call.
        def engine_run() -> tuple[float, int, list[np.ndarray]]:
            clips = engine.generate(prompt=prompt, negative_prompt=negative, seeds=SEEDS, **REQUEST)
            return engine.last_seconds, engine.last_forward_calls, clips

        # 3. The baseline: the plain diffusers call, one clip per call, prompt encoded every time.
        def baseline_run() -> tuple[float, int, list[np.ndarray]]:
            started, calls_before, clips = time.perf_counter(), engine._forward_calls, []
            for seed in SEEDS:
                out = engine.pipe(
                    prompt=prompt, negative_prompt=negative, num_frames=REQUEST["num_frames"],
                    width=REQUEST["width"], height=REQUEST["height"], num_inference_steps=REQUEST["steps"],
                    guidance_scale=REQUEST["guidance"], generator=torch.Generator().manual_seed(seed),
                    output_type="np",
                )
                clips.append(to_uint8_frames(out.frames[0]))
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - started, engine._forward_calls - calls_before, clips

        engine_run()  # warm-up: allocator growth, kernel selection, first-call caches
        baseline_run()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        measured, baseline = [], []
        for _ in range(args.repeats):
            # Interleaved, so a noisy neighbour on a shared machine slows both methods alike.
            measured.append(engine_run())
            baseline.append(baseline_run())

    # 4. Report.
    clips_n = len(SEEDS)
    seconds_per_clip = statistics.median(s for s, _, _ in measured) / clips_n
    baseline_seconds_per_clip = statistics.median(s for s, _, _ in baseline) / clips_n
    forward_calls_per_clip = measured[-1][1] / clips_n
    baseline_forward_per_clip = baseline[-1][1] / clips_n
    peak_mb, peak_what = peak_memory_mb(cuda)
    diff = max(int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) for a, b in zip(measured[-1][2], baseline[-1][2]))
    ratio = baseline_seconds_per_clip / seconds_per_clip

    print(f"engine (1 encode, batch of {clips_n}): {seconds_per_clip:.4f} s/clip, "
          f"{forward_calls_per_clip:g} transformer calls/clip (median of {args.repeats})")
    print(f"baseline (1 clip per call):          {baseline_seconds_per_clip:.4f} s/clip, "
          f"{baseline_forward_per_clip:g} transformer calls/clip")
    print(f"speed-up: {ratio:.2f}x; peak memory: {peak_mb:.1f} MB ({peak_what})")
    print(f"largest pixel difference engine vs baseline: {diff} (of 255; batching only reorders float sums)")
    print(json.dumps({
        "seconds_per_clip": round(seconds_per_clip, 6),
        "peak_mb": round(peak_mb, 1),
        "forward_calls_per_clip": forward_calls_per_clip,
        "baseline_seconds_per_clip": round(baseline_seconds_per_clip, 6),
        "ratio": round(ratio, 3),
    }))


if __name__ == "__main__":
    main()
