"""Edits on a checkpoint whose pipeline keeps known pixels itself (Wan's VACE, `WanVACEPipeline`).

The engine hands it the edit's condition (the source with what is to be made mid-grey, and a mask
that is white there) instead of blending latents, one call per seed (the pipeline makes one video a
call), pastes the kept pixels back as on every path, and the edit records the pipeline's class."""

from __future__ import annotations

import numpy as np
import pytest

from generation import editing
from generation.families import WAN, WAN_VACE, family_for_model_path
from generation.toyworld.world import Scene, render_clip

CALL = {"negative_prompt": "", "steps": 2, "guidance": 5.0}
pytestmark = pytest.mark.slow  # builds and loads a second tiny checkpoint (seconds on 2 cores)


@pytest.fixture
def calls(vace_engine, monkeypatch):
    """Every call of the VACE pipeline, with its keyword arguments."""
    pipe_class = type(vace_engine.pipe)
    original = pipe_class.__call__
    seen = []

    def spy(self, *args, **kwargs):
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pipe_class, "__call__", spy)
    return seen


def test_a_vace_checkpoint_is_the_wan_family_with_a_native_condition(vace_engine):
    family = family_for_model_path(vace_engine.model_path)
    assert family is WAN_VACE and family.name == "wan" and family.native_condition
    assert (family.frame_multiple, family.size_multiple) == (WAN.frame_multiple, WAN.size_multiple)
    assert not WAN.native_condition


def test_a_rescene_goes_through_the_pipeline_with_the_source_and_mask(vace_engine, calls):
    clip = render_clip(Scene("circle", "red", "right", "white"), seed=0)
    outputs = editing.rescene(vace_engine, clip=clip, keep_box=[0.25, 0.25, 0.75, 0.75], prompt="a red circle",
                              seeds=[3, 4], **CALL)
    assert [o.conditioning for o in outputs] == ["WanVACEPipeline"] * 2
    assert len(calls) == 2  # one video a call
    video, mask = (np.stack([np.asarray(image) for image in calls[0][name]]) for name in ("video", "mask"))
    assert video.shape == (9, 32, 32, 3) and mask.shape == (9, 32, 32)
    # Kept: the product inside the box, as pasted back; the box's old white ground is to be made.
    product = outputs[0].mask >= 128
    assert product.any() and (clip[product] != 240).any(axis=-1).all()
    assert (mask[product] == 0).all() and (mask[~product] == 255).all()  # white: what the model makes
    assert np.array_equal(video[product], clip[product]) and (video[~product] == 127).all()
    assert "latents" not in calls[0]  # no latent blending on this path
    for out in outputs:  # the product's pixels are the hero's (inside its one-pixel feather)
        padded = np.pad(out.mask == 255, ((0, 0), (1, 1), (1, 1)))
        interior = np.logical_and.reduce([padded[:, dy:dy + 32, dx:dx + 32] for dy in range(3) for dx in range(3)])
        assert interior.sum() > 9 * 20
        np.testing.assert_array_equal(out.frames[interior], clip[interior])


def test_an_extension_keeps_the_clip_and_gives_no_guide(vace_engine, calls):
    clip = render_clip(Scene("square", "blue", "left", "yellow"), seed=1)
    [out] = editing.extend(vace_engine, clip=clip, frames=4, direction="forward", prompt="a blue square", seeds=[5],
                           **CALL)
    assert out.conditioning == "WanVACEPipeline"
    assert out.frames.shape == (13, 32, 32, 3) and np.array_equal(out.frames[:9], clip)
    [call] = calls
    video = np.stack([np.asarray(image) for image in call["video"]])
    assert np.array_equal(video[:5], clip[4:]) and (video[5:] == 127).all()  # the new frames: grey


def test_seeds_run_one_call_each_and_equal_their_single_runs(vace_engine, calls):
    request = {"prompt": "a red circle", "num_frames": 9, "width": 32, "height": 32, **CALL}
    both = vace_engine.generate(seeds=[1, 2], **request)
    assert len(calls) == 2 and all("video" not in call for call in calls)
    assert vace_engine.last_forward_calls == 2 * 2 * 2  # seeds x steps x (prompt, negative)
    for seed, clip in zip([1, 2], both):
        [alone] = vace_engine.generate(seeds=[seed], **request)
        assert np.array_equal(alone, clip)
    assert not np.array_equal(both[0], both[1])


def test_progress_counts_every_call_and_cancel_stops_them(vace_engine, calls):
    from generation.engine import GenerationCancelled

    seen = []

    def on_step(done, total):
        seen.append((done, total))
        return done < 3

    with pytest.raises(GenerationCancelled):
        vace_engine.generate(prompt="x", seeds=[1, 2, 3], num_frames=9, width=32, height=32, on_step=on_step, **CALL)
    assert seen == [(1, 6), (2, 6), (3, 6)] and len(calls) == 2


def test_a_brand_lora_of_the_wan_model_applies_on_vace(vace_engine, make_lora):
    """A brand's LoRA (trained on the Wan checkpoint VACE extends) loads onto the VACE pipeline."""
    request = {"prompt": "x", "seeds": [1], "num_frames": 9, "width": 32, "height": 32, **CALL}
    [plain] = vace_engine.generate(**request)
    [branded] = vace_engine.generate(**request, lora=("brand-1", str(make_lora(1))))
    assert not np.array_equal(plain, branded)
