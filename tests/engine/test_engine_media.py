"""MP4 and poster writing, checked by decoding the files back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.engine import Engine
from generation.media import probe_video, to_uint8_frames, write_mp4, write_poster

from .conftest import TINY_CALL


@pytest.fixture(scope="module")
def clip(engine: Engine) -> np.ndarray:
    return engine.generate(seeds=[5], **TINY_CALL)[0]


def test_generated_clip_round_trips_through_mp4(clip: np.ndarray, tmp_path: Path):
    import imageio.v2 as imageio

    path = tmp_path / "out" / "clip.mp4"
    write_mp4(clip, path, fps=16)
    assert probe_video(path) == {"num_frames": 9, "width": 48, "height": 32, "fps": 16.0}
    reader = imageio.get_reader(path, format="FFMPEG")
    meta = reader.get_meta_data()
    reader.close()
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    # Only the final file is left: the temporary name was renamed away.
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]


def test_float_frames_and_lists_are_accepted(tmp_path: Path):
    frames = [np.full((16, 32, 3), 0.5, dtype=np.float32) for _ in range(5)]
    write_mp4(frames, tmp_path / "grey.mp4", fps=8)
    assert probe_video(tmp_path / "grey.mp4")["num_frames"] == 5
    assert to_uint8_frames(frames)[0, 0, 0].tolist() == [128, 128, 128]


def test_poster_is_the_middle_frame(clip: np.ndarray, tmp_path: Path):
    write_poster(clip, tmp_path / "poster.png")
    with Image.open(tmp_path / "poster.png") as image:
        assert image.size == (48, 32)
        assert np.array_equal(np.asarray(image), clip[4])  # PNG is lossless
    write_poster(clip, tmp_path / "poster.jpg")
    with Image.open(tmp_path / "poster.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (48, 32))


@pytest.mark.parametrize(
    ("frames", "path", "message"),
    [
        (np.zeros((3, 15, 32, 3), np.uint8), "a.mp4", "even width and height"),
        (np.zeros((3, 16, 32), np.uint8), "a.mp4", "F,H,W,3"),
        (np.zeros((3, 16, 32, 3), np.int32), "a.mp4", "uint8 or float"),
        (np.full((3, 16, 32, 3), np.nan, np.float32), "a.mp4", "NaN"),
        ([], "a.mp4", "empty"),
        (np.zeros((3, 16, 32, 3), np.uint8), "a.avi", ".mp4"),
    ],
)
def test_bad_input_fails_loudly(frames, path: str, message: str, tmp_path: Path):
    with pytest.raises(ValueError, match=message):
        write_mp4(frames, tmp_path / path, fps=8)
    assert not any(tmp_path.iterdir())


def test_probe_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "missing.mp4")


def test_vae_pixels_put_channels_before_frames_in_minus_one_to_one_and_round_trip():
    from generation.pixels import frames_to_pixels, pixels_to_frames

    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, size=(2, 5, 6, 7, 3), dtype=np.uint8)  # (B, F, H, W, 3)
    pixels = frames_to_pixels(clips)
    assert pixels.shape == (2, 3, 5, 6, 7) and pixels.dtype.is_floating_point
    assert float(pixels.min()) >= -1.0 and float(pixels.max()) <= 1.0
    # Channel c of frame f at (y, x) is the frame's pixel, scaled: not a transposed or mixed-up axis.
    assert float(pixels[1, 2, 3, 4, 5]) == pytest.approx(clips[1, 3, 4, 5, 2] / 127.5 - 1.0)
    assert frames_to_pixels(clips[0]).shape == (3, 5, 6, 7)  # one clip, no batch axis
    np.testing.assert_array_equal(pixels_to_frames(pixels), clips)
    np.testing.assert_array_equal(pixels_to_frames(pixels * 3.0)[pixels_to_frames(pixels) > 200], 255)  # clamped
