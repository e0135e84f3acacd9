"""The campaign plan (generation/plan.py) on the tiny-random Wan checkpoint: equality with naive
calls when every part is off, what each part records and saves, evaluation counting, cancel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from generation.engine import Engine, GenerationCancelled
from generation.media import to_uint8_frames
from generation.plan import (
    BlockCounter, PlanItem, PlanOptions, calibrate_mag_ratios, load_mag_ratios, mag_ratios_path, run_plan,
)

REQUEST = {"num_frames": 9, "width": 48, "height": 32, "steps": 4, "guidance": 5.0}
NEGATIVE = "blurry, low quality"
# Two segments x two variants: variants share a seed across segments, as a campaign plan does.
ITEMS = [PlanItem(prompt, NEGATIVE, seed) for prompt in ("a red kite over a beach", "a green bike in a city park")
         for seed in (5, 9)]


def naive_clip(engine: Engine, item: PlanItem, steps: int = REQUEST["steps"]) -> np.ndarray:
    out = engine.pipe(prompt=item.prompt, negative_prompt=item.negative_prompt, num_frames=REQUEST["num_frames"],
                      width=REQUEST["width"], height=REQUEST["height"], num_inference_steps=steps,
                      guidance_scale=REQUEST["guidance"], generator=torch.Generator().manual_seed(item.seed),
                      output_type="np")
    return to_uint8_frames(out.frames[0])


@pytest.mark.slow
def test_every_option_off_equals_one_pipe_call_per_clip(engine: Engine):
    result = run_plan(engine, items=ITEMS, options=PlanOptions(micro_batch=1), **REQUEST)
    assert len(result.clips) == len(ITEMS)
    for item, clip in zip(ITEMS, result.clips):
        assert np.array_equal(clip, naive_clip(engine, item)), item
    # Nothing saved: 2 passes (CFG) x steps per clip, counted in whole evaluations.
    assert result.evaluations == result.naive_evaluations == len(ITEMS) * 2 * REQUEST["steps"]
    assert all("prefix" not in r and r["options"]["cache"] == "none" for r in result.records)


@pytest.mark.slow
def test_micro_batches_carry_each_items_own_prompt(engine: Engine):
    batched = run_plan(engine, items=ITEMS, options=PlanOptions(micro_batch=3), **REQUEST)
    alone = run_plan(engine, items=ITEMS, options=PlanOptions(micro_batch=1), **REQUEST)
    for a, b in zip(batched.clips, alone.clips):
        # Only float summation order differs between batch sizes.
        assert np.abs(a.astype(np.int16) - b.astype(np.int16)).max() <= 1
    # Same seed, different prompts: different clips (each item got its own embeddings).
    assert not np.array_equal(batched.clips[0], batched.clips[2])
    assert batched.micro_batch == 3 and batched.records[0]["micro_batch"] == 3


@pytest.mark.slow
def test_shared_prefix_is_recorded_and_saves_the_prefix_steps(engine: Engine):
    options = PlanOptions(micro_batch=1, prefix_fraction=0.5)
    result = run_plan(engine, items=ITEMS, options=options, **REQUEST)
    steps, prefix = REQUEST["steps"], 2
    # Two seeds x 2 prefix steps once, then 4 clips x 2 branch steps; x2 for CFG.
    assert result.evaluations == 2 * (2 * prefix + len(ITEMS) * (steps - prefix))
    for item, record in zip(ITEMS, result.records):
        assert record["prefix"] == {"prompt": ITEMS[0 if item.seed == 5 else 1].prompt, "negative_prompt": NEGATIVE,
                                    "seed": item.seed, "steps": prefix}
    # The first segment's clips are its own prefix continued: they equal the naive clip.
    assert np.array_equal(result.clips[0], naive_clip(engine, ITEMS[0]))
    # The second segment branched from the first's prefix: not its naive clip.
    assert not np.array_equal(result.clips[2], naive_clip(engine, ITEMS[2]))


@pytest.mark.slow
def test_prefix_prompt_can_be_given(engine: Engine):
    common = "a product ad, brand colours"
    result = run_plan(engine, items=ITEMS, options=PlanOptions(prefix_fraction=0.5), prefix_prompts={5: common, 9: common},
                      **REQUEST)
    assert {r["prefix"]["prompt"] for r in result.records} == {common}


def test_guidance_only_in_the_first_part(engine: Engine):
    result = run_plan(engine, items=ITEMS[:1], options=PlanOptions(guidance_fraction=0.5), **REQUEST)
    # 4 conditional passes + 2 unconditional ones.
    assert result.evaluations == 6 and result.naive_evaluations == 8
    assert result.records[0]["guidance_steps"] == 2
    assert not np.array_equal(result.clips[0], naive_clip(engine, ITEMS[0]))


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["first_block", "taylorseer"])
def test_step_cache_is_recorded_and_counted_in_blocks(engine: Engine, cache: str):
    steps = 8
    options = PlanOptions(cache=cache, cache_threshold=3.0 if cache == "taylorseer" else 10.0)
    result = run_plan(engine, items=ITEMS[:1], options=options, **{**REQUEST, "steps": steps})
    assert result.records[0]["options"]["cache"] == cache
    assert result.records[0]["cache_threshold"] == options.threshold
    # Skipped blocks do not count: less than the naive 2 x steps, and not a whole number of calls
    # for first_block (its first block always runs).
    assert 0 < result.evaluations < result.naive_evaluations == 2 * steps
    # The hook is gone afterwards: a plan without cache spends the full count again.
    assert not engine.pipe.transformer.is_cache_enabled
    off = run_plan(engine, items=ITEMS[:1], options=PlanOptions(), **{**REQUEST, "steps": steps})
    assert off.evaluations == 2 * steps
    assert np.array_equal(off.clips[0], naive_clip(engine, ITEMS[0], steps=steps))


def test_magcache_calibrates_stores_and_skips(engine: Engine, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "model_path", tmp_path)
    steps = 8
    ratios = calibrate_mag_ratios(engine, prompts=[ITEMS[0].prompt], negative_prompt=NEGATIVE, num_frames=9,
                                  width=48, height=32, steps=steps, guidance=5.0)
    assert len(ratios) == steps and ratios[0] == 1.0
    assert json.loads(mag_ratios_path(tmp_path).read_text())["ratios"] == ratios == load_mag_ratios(tmp_path)
    # A threshold that accepts any drift: every step after the retained ones reuses the residual.
    result = run_plan(engine, items=ITEMS[:1], options=PlanOptions(cache="mag", cache_threshold=100.0),
                      **{**REQUEST, "steps": steps})
    assert result.evaluations < result.naive_evaluations
    assert result.records[0]["mag_ratios"] == ratios
    assert not engine.pipe.transformer.is_cache_enabled


def test_block_counter_counts_fractions(engine: Engine):
    counter = BlockCounter(engine.pipe.transformer)
    try:
        engine.generate(seeds=[1, 2, 3], **{**REQUEST, "prompt": "x", "negative_prompt": ""})
    finally:
        counter.close()
    # 3 items x 2 passes x 4 steps, every block computed.
    assert counter.evaluations == 24
    # Removed hooks count nothing.
    engine.generate(seeds=[1], **{**REQUEST, "prompt": "x", "negative_prompt": ""})
    assert counter.evaluations == 24


@pytest.mark.slow
def test_on_clip_streams_and_on_step_cancels(engine: Engine):
    got = []
    result = run_plan(engine, items=ITEMS, options=PlanOptions(micro_batch=2),
                      on_clip=lambda i, clip, record: got.append((i, clip.shape, record["micro_batch"])), **REQUEST)
    assert result.clips == [] and [g[0] for g in got] == [0, 1, 2, 3] and got[0][1] == (9, 32, 48, 3)
    with pytest.raises(GenerationCancelled):
        run_plan(engine, items=ITEMS, options=PlanOptions(), on_step=lambda done, total: done < 2, **REQUEST)


@pytest.mark.parametrize("bad", [PlanOptions(cache="tea"), PlanOptions(prefix_fraction=1.0),
                                 PlanOptions(guidance_fraction=1.5), PlanOptions(micro_batch=-1),
                                 PlanOptions(camera_guide=1.0), PlanOptions(camera_guide=-0.1)])
def test_bad_options_are_refused(engine: Engine, bad):
    with pytest.raises(ValueError):
        run_plan(engine, items=ITEMS, options=bad, **REQUEST)


def test_a_camera_restart_leaves_a_multistep_scheduler_no_history_of_the_old_trajectory():
    """Wan's real checkpoints step with UniPC, which corrects each step with past model outputs;
    after the camera guide restarts a clip those outputs belong to another trajectory."""
    from diffusers import UniPCMultistepScheduler

    from generation.plan import _forget_history

    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    scheduler.set_timesteps(6)
    sample = torch.randn(1, 4, 2, 4, 4)
    for t in scheduler.timesteps[:2]:
        sample = scheduler.step(torch.randn_like(sample), t, sample, return_dict=False)[0]
    assert scheduler.last_sample is not None and any(o is not None for o in scheduler.model_outputs)
    _forget_history(scheduler)
    assert scheduler.last_sample is None and scheduler.lower_order_nums == 0
    assert all(o is None for o in scheduler.model_outputs)
    # It steps on from the restart as a first-order step.
    out = scheduler.step(torch.randn_like(sample), scheduler.timesteps[2], sample, return_dict=False)[0]
    assert torch.isfinite(out).all()
