"""Generation conditioned on known pixels: what each edit keeps, what it adds, and its refusals.

The plumbing runs on `tiny-random` (fast; its pixels are noise, so only what is kept can be
checked exactly); what the trained `tiny` makes of an edit is checked in test_toyworld.py and
measured by benchmarks/editing.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from generation import editing
from generation.toyworld.world import Scene, render_clip

CALL = {"negative_prompt": "", "steps": 3, "guidance": 5.0}
SCENE = Scene("circle", "red", "right", "white")


def _clip(frames: int = 9, width: int = 32, height: int = 32, seed: int = 0) -> np.ndarray:
    return render_clip(SCENE, seed=seed, num_frames=frames, width=width, height=height)


def test_image_to_video_keeps_the_first_frame_exactly(engine):
    image = _clip()[0]
    outputs = editing.image_to_video(engine, image=image, prompt=SCENE.caption(), seeds=[1, 2], num_frames=9,
                                     width=32, height=32, **CALL)
    assert len(outputs) == 2
    for out in outputs:
        assert out.frames.shape == (9, 32, 32, 3) and out.conditioning == "latent_blend"
        np.testing.assert_array_equal(out.frames[0], image)
        assert (out.mask[0] == 255).all() and (out.mask[1:] == 0).all()
        # The rest is generated, not a copy of the image.
        assert np.abs(out.frames[-1].astype(int) - image).mean() > 5


def test_image_to_video_fits_another_size_and_keeps_only_an_opaque_cut_out(engine):
    rgba = np.zeros((64, 96, 4), dtype=np.uint8)
    rgba[16:48, 40:56] = (250, 120, 20, 255)  # an orange product, transparent around it
    [out] = editing.image_to_video(engine, image=rgba, prompt="a product", seeds=[3], num_frames=9, width=48,
                                   height=32, **CALL)
    assert out.frames.shape == (9, 32, 48, 3)
    kept = out.mask[0] == 255
    assert 0 < kept.sum() < kept.size
    # Fully inside the cut-out, the product's pixels are the image's own.
    inner = np.zeros_like(kept)
    inner[10:22, 21:27] = True
    assert kept[inner].all()
    fitted, _ = editing.fit_image(rgba, width=48, height=32)
    np.testing.assert_array_equal(out.frames[0][inner], fitted[inner])
    assert np.abs(fitted[inner].astype(int) - [250, 120, 20]).max() <= 5


def test_rescene_keeps_the_product_pixels_inside_the_box_and_only_those(engine):
    hero = _clip()
    [out] = editing.rescene(engine, clip=hero, keep_box=[0.0, 0.0, 1.0, 1.0], prompt="on a blue background",
                            seeds=[4], **CALL)
    product = out.mask == 255
    # The matte is the red shape, separated from the white around it, on every frame.
    assert product.any(axis=(1, 2)).all()
    red = (hero[..., 0] > 150) & (hero[..., 1] < 100)
    assert product[red].all()
    assert (hero[product] != 240).any(axis=-1).all()  # nothing of the white ground
    # Pixels whose whole 3x3 neighbourhood is product are pasted exactly (the feather is one pixel).
    padded = np.pad(product, ((0, 0), (1, 1), (1, 1)))
    interior = np.logical_and.reduce([padded[:, dy:dy + 32, dx:dx + 32] for dy in range(3) for dx in range(3)])
    assert interior.sum() > 9 * 20
    np.testing.assert_array_equal(out.frames[interior], hero[interior])
    # Away from the product the old white background is not pasted back.
    assert np.abs(out.frames[~product].astype(int) - hero[~product]).mean() > 5


def test_rescene_takes_a_given_matte(engine):
    hero = _clip()
    matte = np.zeros((32, 32), dtype=np.float32)
    matte[8:12, 8:12] = 1.0
    [out] = editing.rescene(engine, clip=hero, keep_box=[0.2, 0.2, 0.5, 0.5], prompt="x", seeds=[5], matte=matte,
                            **CALL)
    assert ((out.mask == 255) == (matte[None] > 0)).all()


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_extend_adds_frames_and_keeps_the_clip(engine, direction):
    clip = _clip()
    [out] = editing.extend(engine, clip=clip, frames=6, direction=direction, prompt=SCENE.caption(), seeds=[6],
                           **CALL)
    assert out.frames.shape == (15, 32, 32, 3)
    assert out.extra["windows"] == 2  # 4 (forward) or 5 (backward) new frames a window
    kept = out.frames[:9] if direction == "forward" else out.frames[6:]
    np.testing.assert_array_equal(kept, clip)
    assert ((out.mask[:9] if direction == "forward" else out.mask[6:]) == 255).all()


def test_connect_bridges_one_clip_end_to_the_other_start(engine):
    first, second = _clip(seed=1), _clip(seed=2)
    [out] = editing.connect(engine, clip=first, other=second, prompt=SCENE.caption(), seeds=[7], **CALL)
    np.testing.assert_array_equal(out.frames[0], first[-1])
    np.testing.assert_array_equal(out.frames[-1], second[0])
    assert len(out.frames) == 6  # first's last, four new frames, second's first


def test_loop_appends_a_bridge_back_to_the_start_as_long_as_the_clip(engine):
    clip = _clip()
    [out] = editing.loop(engine, clip=clip, prompt=SCENE.caption(), seeds=[8], **CALL)
    assert out.frames.shape == (17, 32, 32, 3)  # the clip's 9 frames, then 8 back to its first
    np.testing.assert_array_equal(out.frames[:9], clip)
    assert out.conditioning == editing.PATH
    assert (out.mask[:9] == 255).all() and (out.mask[9:] == 0).all()


def test_loop_of_a_clip_that_loops_already_returns_it_unchanged(engine, monkeypatch):
    still = render_clip(Scene("square", "blue", "still", "yellow"), seed=3, num_frames=9, width=32, height=32)
    monkeypatch.setattr(engine, "generate", lambda **kwargs: pytest.fail("a seamless clip needs no generation"))
    seen = []
    outs = editing.loop(engine, clip=still, prompt="a blue square standing still on a yellow background",
                        seeds=[1, 2], on_step=lambda done, total: seen.append((done, total)), **CALL)
    assert len(outs) == 2
    for out in outs:
        np.testing.assert_array_equal(out.frames, still)
        assert out.conditioning == editing.ALREADY_SEAMLESS
    assert seen == [(1, 1)]
    assert editing.loops_seamlessly(still) and not editing.loops_seamlessly(_clip())


def test_edits_report_progress_and_cancel(engine):
    from generation.engine import GenerationCancelled

    seen = []

    def on_step(done, total):
        seen.append((done, total))
        return done < 4

    with pytest.raises(GenerationCancelled):
        editing.extend(engine, clip=_clip(), frames=8, direction="forward", prompt="x", seeds=[1], on_step=on_step,
                       **CALL)
    # Two windows of 3 steps: progress counts across windows; the stop came in the second.
    assert seen[:4] == [(1, 6), (2, 6), (3, 6), (4, 6)]


@pytest.mark.parametrize("box, message", [
    ([0.5, 0.2, 0.5, 0.8], "must not be empty"),
    ([0.1, 0.1, 1.2, 0.5], "between 0 and 1"),
    ([0.1, 0.1, 0.5], "four fractions"),
    (["a", 0, 1, 1], "four numbers"),
])
def test_bad_boxes_are_refused_with_the_rule(box, message):
    with pytest.raises(ValueError, match=message):
        editing.validate_keep_box(box)


def test_clips_of_other_sizes_cannot_be_connected(engine):
    with pytest.raises(ValueError, match="same size"):
        editing.connect(engine, clip=_clip(), other=_clip(width=48), prompt="x", seeds=[1], **CALL)


def test_a_condition_of_the_wrong_shape_is_refused(engine):
    clip = _clip()
    condition = editing.Condition(source=clip, keep=np.ones((9, 16, 16), np.float32), paste=np.ones((9, 32, 32)))
    with pytest.raises(ValueError, match="condition keep must be"):
        engine.generate(prompt="x", seeds=[1], num_frames=9, width=32, height=32, condition=condition, **CALL)
