"""Engine.generate on the tiny Wan checkpoint: shapes, reproducibility, batching, progress, cancel."""

from __future__ import annotations

import numpy as np
import pytest

from generation.engine import Engine, GenerationCancelled, get_engine, pick_device, reset_engine

from .conftest import TINY_CALL


def test_one_uint8_clip_per_seed_with_asked_shape(engine: Engine):
    clips = engine.generate(seeds=[0, 1], **TINY_CALL)
    assert len(clips) == 2
    for clip in clips:
        assert clip.dtype == np.uint8
        assert clip.shape == (9, 32, 48, 3)  # (F, H, W, 3)
    assert not np.array_equal(clips[0], clips[1])
    # CFG on: two transformer calls (cond, uncond) per step, for the whole batch at once.
    assert engine.last_forward_calls == 2 * TINY_CALL["steps"]
    assert engine.last_seconds > 0


def test_same_seed_same_frames(engine: Engine):
    first = engine.generate(seeds=[7], **TINY_CALL)[0]
    second = engine.generate(seeds=[7], **TINY_CALL)[0]
    assert np.array_equal(first, second)


@pytest.mark.slow
def test_batched_seeds_equal_individual_runs(engine: Engine):
    seeds = [3, 11, 42]
    batched = engine.generate(seeds=seeds, **TINY_CALL)
    for seed, clip in zip(seeds, batched):
        alone = engine.generate(seeds=[seed], **TINY_CALL)[0]
        # Same noise per seed; only float summation order differs between batch sizes in the
        # matmuls, which moves a handful of pixels by one level after rounding to uint8.
        diff = np.abs(clip.astype(np.int16) - alone.astype(np.int16))
        assert diff.max() <= 1, seed
        assert (diff > 0).mean() < 1e-3, seed


def test_on_step_reports_every_step(engine: Engine):
    calls = []
    engine.generate(seeds=[0], on_step=lambda done, total: calls.append((done, total)), **dict(TINY_CALL, steps=3))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_on_step_false_cancels(engine: Engine):
    calls = []

    def stop_after_first(done: int, total: int) -> bool:
        calls.append(done)
        return done < 1

    with pytest.raises(GenerationCancelled):
        engine.generate(seeds=[0], on_step=stop_after_first, **dict(TINY_CALL, steps=4))
    assert calls == [1]  # the pipeline skipped the remaining steps
    assert engine.last_forward_calls == 2
    # The engine is usable again right after.
    assert engine.generate(seeds=[0], **TINY_CALL)[0].shape == (9, 32, 48, 3)


def test_guidance_off_runs_one_forward_per_step(engine: Engine):
    clip = engine.generate(seeds=[0], **dict(TINY_CALL, guidance=1.0, negative_prompt=""))[0]
    assert clip.shape == (9, 32, 48, 3)
    assert engine.last_forward_calls == TINY_CALL["steps"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_frames": 10}, "num_frames must be 4k\\+1"),
        ({"width": 40}, "width must be a multiple of 16"),
        ({"seeds": []}, "at least one seed"),
        ({"seeds": [-1]}, "seeds must be integers"),
        ({"steps": 0}, "steps must be"),
        ({"prompt": " "}, "prompt must be"),
        ({"camera_motion": (0.35, 0.0), "camera_guide": 1.0}, "camera_guide must be in"),
    ],
)
def test_bad_requests_fail_loudly(engine: Engine, change: dict, message: str):
    call = dict(TINY_CALL, seeds=[0])
    call.update(change)
    with pytest.raises(ValueError, match=message):
        engine.generate(**call)


def test_get_engine_caches_one_engine_per_process(random_model_path):
    reset_engine()
    try:
        loads = Engine.base_loads
        first = get_engine(random_model_path, device="cpu")
        assert get_engine(random_model_path, device="cpu") is first
        assert Engine.base_loads == loads + 1
        assert first.family.name == "wan"
    finally:
        reset_engine()


def test_wan_vae_stays_float32_when_the_rest_is_bf16(random_model_path):
    import torch

    half = Engine(random_model_path, device="cpu", dtype=torch.bfloat16)
    assert half.pipe.transformer.dtype == torch.bfloat16
    assert half.pipe.vae.dtype == torch.float32  # Wan decodes in float32, as its reference code does
    assert half.generate(seeds=[0], **dict(TINY_CALL, steps=1))[0].shape == (9, 32, 48, 3)


def test_pick_device():
    import torch

    device, dtype = pick_device()
    if torch.cuda.is_available():
        assert (device.type, dtype) == ("cuda", torch.bfloat16)
    else:
        assert (device.type, dtype) == ("cpu", torch.float32)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_generates_and_batches(random_model_path):
    gpu = Engine(random_model_path)  # CUDA + bf16 (VAE in float32 for Wan)
    batched = gpu.generate(seeds=[1, 2], **TINY_CALL)
    assert [c.shape for c in batched] == [(9, 32, 48, 3)] * 2
    alone = gpu.generate(seeds=[2], **TINY_CALL)[0]
    # bf16 kernels round differently per batch size; the clips must still be the same picture.
    diff = np.abs(batched[1].astype(np.int16) - alone.astype(np.int16))
    assert diff.mean() < 2.0
    assert np.array_equal(alone, gpu.generate(seeds=[2], **TINY_CALL)[0])


def test_the_camera_guide_refuses_a_conditioned_call(engine: Engine):
    import numpy as np

    from generation.editing import Condition

    shape = (TINY_CALL["num_frames"], TINY_CALL["height"], TINY_CALL["width"])
    condition = Condition(source=np.zeros((*shape, 3), dtype=np.uint8), keep=np.zeros(shape, dtype=np.float32),
                          paste=np.zeros(shape, dtype=np.float32))
    with pytest.raises(ValueError, match="camera guide runs on WanPipeline's latents without a condition"):
        engine.generate(seeds=[0], condition=condition, camera_motion=(0.35, 0.0), camera_guide=0.6, **TINY_CALL)
