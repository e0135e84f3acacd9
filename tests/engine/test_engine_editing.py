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
    assert out.conditioning == editing.MOTION_PATH  # the clip moves: its motion guides the new frames
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


def test_loop_appends_a_bridge_back_to_the_start_as_long_as_the_clip(engine, monkeypatch):
    clip = _clip()
    lengths = []
    generate = engine.generate
    monkeypatch.setattr(engine, "generate", lambda **kw: lengths.append(kw["num_frames"]) or generate(**kw))
    [out] = editing.loop(engine, clip=clip, prompt=SCENE.caption(), seeds=[8], **CALL)
    assert out.frames.shape == (17, 32, 32, 3)  # the clip's 9 frames, then 8 back to its first
    np.testing.assert_array_equal(out.frames[:9], clip)
    assert out.conditioning == editing.MOTION_PATH
    assert (out.mask[:9] == 255).all() and (out.mask[9:] == 0).all()
    # Not one 17-frame window (beyond the length the model made the clip at) but two of the clip's 9.
    assert lengths == [9, 9]


@pytest.mark.slow
@pytest.mark.parametrize("frames, looped", [(3, 7), (13, 25)])
def test_short_and_long_clips_extend_loop_and_connect(engine, frames, looped):
    """A clip shorter than an edit's context (its edge frame stands in for the rest), and one whose
    loop needs a chain of windows (the last one only as long as what is left)."""
    clip = render_clip(SCENE, seed=1, num_frames=frames, width=48, height=32)
    for direction in ("forward", "backward"):
        [out] = editing.extend(engine, clip=clip, frames=7, direction=direction, prompt="x", seeds=[1], **CALL)
        assert out.frames.shape == (frames + 7, 32, 48, 3)
    [loop] = editing.loop(engine, clip=clip, prompt="x", seeds=[2], **CALL)
    assert loop.frames.shape[0] == looped  # the way back as long as the way there, or 4 frames at the least
    [bridge] = editing.connect(engine, clip=clip, other=clip[::-1].copy(), prompt="x", seeds=[3], **CALL)
    np.testing.assert_array_equal(bridge.frames[0], clip[-1])
    np.testing.assert_array_equal(bridge.frames[-1], clip[-1])


def test_motion_is_measured_to_a_fraction_of_a_pixel():
    frame = _clip()[4]
    for dx, dy in ((2.3, -1.6), (-5.5, 0.0), (0.0, 3.25)):
        moved = editing.translate(frame, dx, dy)
        measured = editing.estimate_shift(frame, moved)
        assert measured == pytest.approx((dx, dy), abs=0.3), (dx, dy)
    # The toy world's own motion: 35% of 32 px over 8 steps, to the right.
    assert editing.edge_velocity(_clip()) == pytest.approx((0.35 * 32 / 8, 0.0), abs=0.15)


def test_the_motion_guide_carries_the_edge_frame_on():
    from generation.eval.adherence import centroids

    clip = _clip()
    velocity = editing.edge_velocity(clip[-5:])
    guide = editing.motion_guide(clip[-1], 3, velocity, forward=True)
    track = centroids(np.concatenate([clip[-1:], guide]))
    assert np.diff(track[:, 0]) == pytest.approx([velocity[0]] * 3, abs=0.3)
    assert np.abs(np.diff(track[:, 1])).max() < 0.1
    # Backward, in time order: the frame furthest back first, the one just before the edge last.
    before = editing.motion_guide(clip[0], 3, velocity, forward=False)
    for k, frame in zip((3, 2, 1), before):
        np.testing.assert_array_equal(frame, editing.translate(clip[0], -k * velocity[0], -k * velocity[1]))


def test_a_bridge_guide_goes_from_one_end_to_the_other_at_an_even_pace():
    from generation.eval.adherence import centroids

    clip = _clip()
    guide, pace = editing.bridge_guide(clip[-1], clip[0], 8)
    track = centroids(np.concatenate([clip[-1:], guide, clip[:1]]))[:, 0]
    assert pace[0] == pytest.approx(-0.35 * 32 / 9, abs=0.15)
    assert np.diff(track) == pytest.approx([pace[0]] * 9, abs=0.3)


def test_the_guide_is_held_for_its_share_of_the_steps_and_then_let_go(engine):
    import torch

    from generation.engine import _Blend

    clip = _clip()
    keep = np.zeros((9, 32, 32), np.float32)
    keep[:5] = 1.0  # latent frames 0 and 1
    condition = editing.Condition(source=clip, keep=keep, paste=keep.copy(), guide_fraction=0.5)
    blend = _Blend(engine, condition, [torch.Generator().manual_seed(0)], num_frames=9, width=32, height=32, steps=10)
    engine.pipe.scheduler.set_timesteps(10)
    assert blend.guide_steps == 5
    latents = torch.full_like(blend.noise, 7.0)
    for step in range(10):
        held = blend.hold(engine.pipe, step, latents)
        sigma = float(engine.pipe.scheduler.sigmas[step + 1])
        known = (1.0 - sigma) * blend.x0 + sigma * blend.noise
        torch.testing.assert_close(held[:, :, :2], known[:, :, :2])  # kept: every step
        torch.testing.assert_close(held[:, :, 2:], known[:, :, 2:] if step < 5 else latents[:, :, 2:])


def test_the_decoders_error_at_a_seam_runs_on_into_the_new_frames():
    """Pasting kept frames back leaves a step where the decoder's output differs from them; with a
    seam motion the new frames beside them take on that difference, fading over SEAM_FRAMES."""
    source = np.full((9, 8, 8, 3), 100, np.uint8)
    paste = np.zeros((9, 8, 8), np.float32)
    paste[:2] = 1.0
    decoded = np.full((9, 8, 8, 3), 120, np.uint8)  # the decoder's output is 20 off everywhere
    plain = editing.Condition(source=source, keep=paste, paste=paste).paste_into(decoded, 0)
    assert (plain[:2] == 100).all() and (plain[2:] == 120).all()
    carried = editing.Condition(source=source, keep=paste, paste=paste, seam_motion=(0.0, 0.0)).paste_into(decoded, 0)
    assert [int(carried[t, 4, 4, 0]) for t in range(9)] == [100, 100, 100, 105, 110, 115, 120, 120, 120]
    # Between two pasted frames the two residuals are shared by distance: no step in the correction.
    paste[8] = 1.0
    source[8] = 140  # the decoder is 20 under this one
    both = editing.Condition(source=source, keep=paste, paste=paste, seam_motion=(0.0, 0.0)).paste_into(decoded, 0)
    assert [int(both[t, 4, 4, 0]) for t in range(9)] == [100, 100, 100, 105, 115, 125, 135, 140, 140]


def _square_moving_right(frames: int, *, start: int = 3) -> np.ndarray:
    """A 16x16 grey clip with a bright 4x4 square moving right one pixel a frame."""
    clip = np.full((frames, 16, 16, 3), 100.0, np.float32)
    for t in range(frames):
        clip[t, 6:10, start + t:start + t + 4] = 200.0
    return clip


def test_settling_takes_the_decoders_flicker_out_of_new_frames_and_leaves_real_change():
    truth = _square_moving_right(7)
    noise = np.random.default_rng(0).uniform(-6, 6, truth.shape).astype(np.float32)
    decoded = truth + noise
    decoded[0] = truth[0]  # the known frame: pasted back exactly
    decoded[4, 0:3, 0:3] = 30.0  # something new the model drew, far off the frame before
    known = np.array([True] + [False] * 6)
    settled = editing.settle(decoded, known, ~known, gate=20.0)
    assert np.abs(settled - decoded).max() <= 10.0 + 1e-4  # never further than half the gate
    # The flicker is gone: the background and the square, carried along the motion.
    assert np.abs(settled[1:, 12:, :] - 100.0).max() < 0.5
    assert np.abs(settled[1:, 7:9] - truth[1:, 7:9])[:, :, 1:-1].mean() < 1.0
    assert np.abs(decoded[1:] - truth[1:]).mean() > 2.5
    # What changed by more than the gate stays as the model drew it.
    assert (settled[4, 0:3, 0:3] == 30.0).all()
    # No gate, no change.
    assert np.array_equal(editing.settle(decoded, known, ~known, gate=0.0), decoded)


def test_frames_between_two_known_ones_settle_towards_the_nearer():
    decoded = np.full((7, 16, 16, 3), 100.0, np.float32)
    decoded[6] = 110.0
    decoded[1:6] += np.random.default_rng(1).uniform(-4, 4, decoded[1:6].shape).astype(np.float32)
    known = np.array([True, False, False, False, False, False, True])
    settled = editing.settle(decoded, known, ~known, gate=30.0)
    middle = [float(settled[t].mean()) for t in range(7)]
    # Frame 1 is 1 from the start and 5 from the end: weights 1/1 and 1/25.
    assert middle[1] == pytest.approx(100.0 + 10.0 * (1 / 25) / (1 + 1 / 25), abs=0.2)
    assert middle[3] == pytest.approx(105.0, abs=0.2)
    assert middle[5] == pytest.approx(110.0 - 10.0 * (1 / 25) / (1 + 1 / 25), abs=0.2)
    assert all(a < b for a, b in zip(middle, middle[1:]))


def test_a_condition_settles_new_frames_by_the_decoders_error_on_the_kept_ones():
    """The gate is settle_gate times the decoder's median error on the wholly pasted frames: here
    the decoder is 4 off there, so new frames within 12 of the frame before take its value."""
    source = np.full((6, 16, 16, 3), 100, np.uint8)
    paste = np.zeros((6, 16, 16), np.float32)
    paste[:2] = 1.0
    decoded = np.full((6, 16, 16, 3), 104, np.uint8)
    decoded[2:] = (100 + np.random.default_rng(2).integers(-9, 10, (4, 16, 16, 3))).astype(np.uint8)
    decoded[5, :4, :4] = 160  # a real change
    plain = editing.Condition(source=source, keep=paste, paste=paste).paste_into(decoded, 0)
    assert np.array_equal(plain[2:], decoded[2:])
    settled = editing.Condition(source=source, keep=paste, paste=paste, settle_gate=6.0).paste_into(decoded, 0)
    assert (settled[:2] == 100).all()
    assert (settled[2:5] == 100).all() and (settled[5, 4:, 4:] == 100).all()
    assert (settled[5, :4, :4] == 160).all()


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
