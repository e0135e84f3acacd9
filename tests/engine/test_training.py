"""LoRA trainer: it learns, resumes exactly, is cancellable, and writes a LoRA stock diffusers loads.

Plain tests (no database) on the tiny Wan checkpoint, CPU float32, so equal runs are equal to
the last bit. Each test trains a few dozen steps at most: a step of the tiny model is milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from generation.training import TrainingCancelled, TrainingSample, train_lora  # noqa: E402
from generation.training.dataset import latent_weight, load_pixels, product_matte  # noqa: E402
from generation.training.flow import flow_loss  # noqa: E402

COLOURS = [(220, 30, 30), (30, 200, 40), (20, 40, 220), (240, 220, 20)]
CHECKPOINT_FILES = {"pytorch_lora_weights.safetensors", "optimizer.pt", "rng_state.pt", "trainer_state.json"}
# 9 frames of 32x32 keep a step at a few milliseconds; the size is a multiple of 16 as Wan needs.
SMALL = {"num_frames": 9, "width": 32, "height": 32}


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread():
    """One intra-op thread: the tiny model gains nothing from two, and on a shared 2-core machine
    two spinning OpenMP threads next to another busy process made these tests 6x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[TrainingSample]:
    """Four solid-colour images (one not square, to exercise the crop) and one tiny MP4 clip."""
    import imageio.v3 as iio
    from PIL import Image

    folder = tmp_path_factory.mktemp("assets")
    result = []
    for index, colour in enumerate(COLOURS):
        path = folder / f"colour{index}.png"
        Image.new("RGB", (48 if index == 0 else 32, 32), colour).save(path)
        result.append(TrainingSample(path=path, kind="image", caption=f"sks brand, colour {index}"))
    frames = np.zeros((20, 32, 32, 3), dtype=np.uint8)
    frames[..., 0] = np.linspace(0, 255, 20, dtype=np.uint8)[:, None, None]  # a red fade-in
    clip = folder / "fade.mp4"
    iio.imwrite(clip, frames, fps=8, codec="libx264")
    result.append(TrainingSample(path=clip, kind="clip", caption="sks brand, red fade"))
    return result


@pytest.fixture(scope="module")
def trained(random_model_path, samples, tmp_path_factory):
    """One 60-step run shared by the tests that only read its result."""
    checkpoints: list[tuple[Path, int]] = []
    output_dir = tmp_path_factory.mktemp("trained")
    result = train_lora(model_path=random_model_path, samples=samples, output_dir=output_dir, steps=60,
                        learning_rate=3e-3, checkpoint_every=20,
                        on_checkpoint=lambda path, step: checkpoints.append((path, step)), **SMALL)
    return result, output_dir, checkpoints


def test_loss_falls_on_a_small_fixed_dataset(trained):
    result, _, _ = trained
    assert result.steps == 60 and len(result.losses) == 60
    assert all(np.isfinite(result.losses))
    # Per-step losses are noisy (each draws its own sigma): compare averages over 15 steps.
    first, last = np.mean(result.losses[:15]), np.mean(result.losses[-15:])
    assert last < 0.9 * first, (first, last)


def test_checkpoints_are_complete_and_reported(trained):
    result, output_dir, checkpoints = trained
    assert [step for _, step in checkpoints] == [20, 40, 60]
    for path, step in checkpoints:
        assert path == output_dir / "checkpoints" / f"step-{step}"
        assert {p.name for p in path.iterdir()} == CHECKPOINT_FILES
        state = json.loads((path / "trainer_state.json").read_text())
        assert state["step"] == step and state["losses"] == result.losses[:step]
    # Temporary folders were renamed into place, none left behind.
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["step-20", "step-40", "step-60"]
    assert result.lora_path == output_dir / "pytorch_lora_weights.safetensors"
    assert result.parameters["rank"] == 8 and result.parameters["alpha"] == 8


@pytest.mark.slow
def test_killed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(random_model_path, samples, tmp_path):
    from safetensors.torch import load_file

    common = {"model_path": random_model_path, "samples": samples, "steps": 12, "checkpoint_every": 6,
              "learning_rate": 3e-3, "seed": 7, **SMALL}
    straight = train_lora(output_dir=tmp_path / "straight", **common)

    class Killed(Exception):
        pass

    def die_at_step_8(step, total, loss):
        if step == 8:  # two steps past the checkpoint: their work is lost, as in a real crash
            raise Killed

    with pytest.raises(Killed):
        train_lora(output_dir=tmp_path / "crashed", on_step=die_at_step_8, **common)
    assert not (tmp_path / "crashed" / "pytorch_lora_weights.safetensors").exists()

    torch.manual_seed(12345)  # a fresh worker's global RNG is anything: resume must not depend on it
    resumed = train_lora(output_dir=tmp_path / "crashed", resume_from=tmp_path / "crashed" / "checkpoints" / "step-6",
                         **common)

    assert resumed.parameters["resumed_from_step"] == 6
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-5)
    expected, got = load_file(straight.lora_path), load_file(resumed.lora_path)
    assert expected.keys() == got.keys() and len(expected) > 0
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_saved_lora_loads_into_a_stock_pipeline_and_changes_its_output(trained, random_model_path):
    from diffusers import WanPipeline
    from diffusers.utils.state_dict_utils import _load_sft_state_dict_metadata

    result, output_dir, _ = trained
    call = {"prompt": "sks brand, colour 0", "num_frames": 5, "width": 32, "height": 32,
            "num_inference_steps": 2, "guidance_scale": 1.0, "output_type": "np"}
    pipe = WanPipeline.from_pretrained(random_model_path)
    before = pipe(generator=torch.Generator().manual_seed(0), **call).frames[0]

    pipe.load_lora_weights(result.lora_path, adapter_name="brand")  # the file itself
    after = pipe(generator=torch.Generator().manual_seed(0), **call).frames[0]
    assert np.abs(after - before).max() > 1e-3

    pipe.delete_adapters("brand")
    pipe.load_lora_weights(output_dir, adapter_name="again")  # the folder, diffusers' default name
    np.testing.assert_allclose(pipe(generator=torch.Generator().manual_seed(0), **call).frames[0], after, atol=1e-6)

    metadata = _load_sft_state_dict_metadata(str(result.lora_path))
    # The PEFT config travels as metadata (keys prefixed by component), so loaders need not guess.
    assert metadata["transformer.r"] == 8 and metadata["transformer.lora_alpha"] == 8
    assert sorted(metadata["transformer.target_modules"]) == ["to_k", "to_out.0", "to_q", "to_v"]


@pytest.mark.slow
def test_on_step_false_cancels_between_steps(random_model_path, samples, tmp_path):
    seen = []

    def stop_at_three(step, total, loss):
        seen.append((step, total))
        return step < 3

    with pytest.raises(TrainingCancelled) as cancelled:
        train_lora(model_path=random_model_path, samples=samples[:1], output_dir=tmp_path, steps=50,
                   on_step=stop_at_three, **SMALL)
    assert cancelled.value.step == 3 and seen == [(1, 50), (2, 50), (3, 50)]
    assert not (tmp_path / "pytorch_lora_weights.safetensors").exists()


def test_images_become_still_clips_and_clips_follow_the_frame_rule(samples):
    image = load_pixels(sample=samples[0], num_frames=9, width=32, height=16, fps=16)
    assert image.shape == (3, 9, 16, 32)
    torch.testing.assert_close(image[:, 0, 8, 16], torch.tensor([220, 30, 30]) / 127.5 - 1)
    assert torch.equal(image, image[:, :1].expand_as(image))  # every frame the same picture

    clip = load_pixels(sample=samples[-1], num_frames=9, width=32, height=32, fps=16)
    assert clip.shape == (3, 9, 32, 32) and clip.min() >= -1 and clip.max() <= 1
    red = clip[0].mean(dim=(1, 2))
    assert torch.all(red[1:] >= red[:-1] - 0.02)  # still a fade-in: frames kept in order
    # Longer than the 2.5 s clip at 16 fps: spread over the whole clip instead of failing.
    assert load_pixels(sample=samples[-1], num_frames=49, width=32, height=32, fps=16).shape[1] == 49


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_frames": 8}, "num_frames must be 4k\\+1"),
        ({"width": 40}, "width must be a multiple of 16"),
        ({"rank": 0}, "rank must be an integer >= 1"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"samples": []}, "samples must be a non-empty list"),
        ({"background_weight": 1.5}, "background_weight must be a number from 0 to 1"),
    ],
)
def test_bad_arguments_are_refused_loudly(random_model_path, samples, tmp_path, change, message):
    arguments = {"model_path": random_model_path, "samples": samples, "output_dir": tmp_path, "steps": 1, **SMALL}
    with pytest.raises(ValueError, match=message):
        train_lora(**{**arguments, **change})


def test_sample_kind_is_checked():
    with pytest.raises(ValueError, match="kind must be one of image, clip"):
        TrainingSample(path=Path("x.gif"), kind="gif", caption="sks")


def test_resume_refuses_a_different_run(trained, random_model_path, samples, tmp_path):
    _, output_dir, _ = trained
    step_20 = output_dir / "checkpoints" / "step-20"
    with pytest.raises(ValueError, match="rank: checkpoint 8, now 4"):
        train_lora(model_path=random_model_path, samples=samples, output_dir=tmp_path, steps=60, rank=4,
                   learning_rate=3e-3, resume_from=step_20, **SMALL)
    with pytest.raises(ValueError, match="dataset_fingerprint"):
        train_lora(model_path=random_model_path, samples=samples[:2], output_dir=tmp_path, steps=60,
                   learning_rate=3e-3, resume_from=step_20, **SMALL)
    with pytest.raises(ValueError, match="is not a training checkpoint"):
        train_lora(model_path=random_model_path, samples=samples, output_dir=tmp_path, steps=60,
                   resume_from=tmp_path, **SMALL)


# --- masked loss: the adapter learns the product, not the backdrop it was shot on ----------------


@pytest.fixture(scope="module")
def product_shots(tmp_path_factory) -> list[TrainingSample]:
    """An orange square cut out (transparent around it) and one on a plain blue backdrop."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("products")
    cutout = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    cutout.paste((245, 135, 25, 255), (8, 8, 24, 24))
    cutout.save(folder / "cutout.png")
    shot = Image.new("RGB", (32, 32), (40, 75, 215))
    shot.paste((245, 135, 25), (4, 12, 16, 28))
    shot.save(folder / "shot.png")
    return [TrainingSample(path=folder / name, kind="image", caption="sks, a square") for name in ("cutout.png", "shot.png")]


def test_the_product_matte_comes_from_transparency_or_the_backdrop(product_shots):
    from generation.training.dataset import _load_video

    video, alpha = _load_video(sample=product_shots[0], num_frames=5, width=32, height=32, fps=16)
    matte = product_matte(video, alpha)
    assert matte.shape == (5, 32, 32) and matte[:, 8:24, 8:24].all() and matte.sum() == 5 * 16 * 16
    video, alpha = _load_video(sample=product_shots[1], num_frames=5, width=32, height=32, fps=16)
    assert alpha is None
    matte = product_matte(video)
    assert matte[:, 12:28, 4:16].all() and matte.sum() == 5 * 16 * 12
    # Nothing to separate (a solid picture, or noise that differs everywhere from its border): no matte.
    assert product_matte(np.full((5, 32, 32, 3), 200, np.uint8)) is None
    assert product_matte(np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)) is None
    # On the latent grid (4x in space here), every cell the product touches weighs 1, the rest less.
    weight = latent_weight(matte, torch.Size([1, 8, 2, 8, 8]), 0.1)
    assert weight.shape == (1, 1, 2, 8, 8)
    assert weight.unique().tolist() == pytest.approx([0.1, 1.0])
    assert (weight[0, 0, 0] == 1).nonzero().tolist() == [[y, x] for y in range(3, 7) for x in range(1, 4)]
    assert latent_weight(matte, torch.Size([1, 8, 2, 8, 8]), 1.0) is None


def test_a_masked_loss_ignores_the_prediction_off_the_product():
    target = torch.zeros(1, 2, 1, 2, 2)
    weight = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 1, 2, 2)
    prediction = torch.ones(1, 2, 1, 2, 2, requires_grad=True)
    loss = flow_loss(prediction, target, weight)
    loss.backward()
    assert loss.item() == 1.0  # the mean over the weighted cell alone
    assert prediction.grad[..., 0, 0].abs().min() > 0 and not prediction.grad[..., 1:, :].any()
    assert not prediction.grad[..., 0, 1].any()
    assert flow_loss(prediction, target).item() == 1.0


@pytest.mark.slow
def test_the_trainer_masks_what_it_can_and_records_it(random_model_path, product_shots, samples, tmp_path):
    result = train_lora(model_path=random_model_path, samples=[*product_shots, samples[0]], output_dir=tmp_path,
                        steps=3, background_weight=0.0, **SMALL)
    # The cut-out and the backdrop shot are masked; the solid-colour image has no product to find.
    assert result.parameters["background_weight"] == 0.0 and result.parameters["masked_samples"] == 2
    assert all(np.isfinite(result.losses))
    # The same run with and without the mask draws the same samples, sigmas and noise: only the
    # weighting differs, and so does every step's loss.
    masked = train_lora(model_path=random_model_path, samples=product_shots, output_dir=tmp_path / "masked",
                        steps=3, background_weight=0.0, **SMALL)
    plain = train_lora(model_path=random_model_path, samples=product_shots, output_dir=tmp_path / "plain", steps=3,
                       background_weight=1.0, **SMALL)
    assert masked.parameters["masked_samples"] == 2 and plain.parameters["masked_samples"] == 0
    assert all(a != b for a, b in zip(masked.losses, plain.losses))


def test_an_image_trains_as_camera_moves_each_worded_for_the_model(samples):
    from generation.training.dataset import IMAGE_MOVES, MOVE_TRAVEL, camera_move, encode_samples
    from generation.training.trainer import camera_move_words
    from PIL import Image

    # A dark square in the middle of a light image: where it goes is the move.
    picture = np.full((64, 64, 3), 230, dtype=np.uint8)
    picture[26:38, 26:38] = 20
    image = Image.fromarray(picture)
    for key, (vx, vy) in IMAGE_MOVES.items():
        frames = camera_move(image, velocity=(vx, vy), **SMALL)
        assert frames.shape == (9, 32, 32, 3)
        ys, xs = np.nonzero(frames[0, ..., 0] < 128)
        ye, xe = np.nonzero(frames[-1, ..., 0] < 128)
        travel = np.array([xe.mean() - xs.mean(), ye.mean() - ys.mean()])
        np.testing.assert_allclose(travel, np.array([vx, vy]) * MOVE_TRAVEL * 32, atol=0.6)

    words = camera_move_words("tiny")
    assert words == {"static": "standing still", "pan_left": "moving right", "pan_right": "moving left",
                     "rise": "moving down", "descend": "moving up"}
    assert camera_move_words("wan")["pan_left"] == "the camera pans slowly to the left"
    assert camera_move_words(None) is None

    captions: list[str] = []
    encoded = encode_samples(samples=samples, fps=8, encode_video=lambda pixels: (pixels[None], pixels[None]),
                             encode_text=lambda caption: captions.append(caption) or torch.zeros(1), image_moves=words,
                             **SMALL)
    images = sum(sample.kind == "image" for sample in samples)
    assert len(encoded) == images * len(IMAGE_MOVES) + (len(samples) - images)
    assert "sks brand, colour 1, moving right" in captions and "sks brand, colour 1, standing still" in captions
    assert "sks brand, red fade" in captions  # a clip keeps its own motion and caption


@pytest.mark.slow
def test_the_trainer_records_the_camera_wording_it_moved_images_in(random_model_path, samples, tmp_path):
    result = train_lora(model_path=random_model_path, samples=samples, output_dir=tmp_path, steps=2,
                        camera_wording="tiny", **SMALL)
    assert result.parameters["camera_wording"] == "tiny"
    assert all(np.isfinite(result.losses))
