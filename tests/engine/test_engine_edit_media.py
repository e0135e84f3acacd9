"""Reading clips back for edits, and the keep-mask PNG strip (generation.media)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.media import read_video, write_mask_strip, write_mp4


def test_read_video_gives_back_the_frames_written(tmp_path: Path):
    frames = np.zeros((9, 32, 48, 3), np.uint8)
    for i in range(9):
        frames[i, :, i * 4:i * 4 + 8] = (230, 60, 40)
    path = tmp_path / "c.mp4"
    write_mp4(frames, path, fps=8)
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6  # H.264 yuv420p is close, not exact


def test_read_video_refuses_what_is_not_there(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "none.mp4")


def test_mask_strip_puts_the_frames_side_by_side(tmp_path: Path):
    mask = np.zeros((3, 4, 5), np.uint8)
    mask[1] = 255
    mask[2, :, :2] = 255
    path = tmp_path / "m.png"
    write_mask_strip(mask, path)
    strip = np.asarray(Image.open(path))
    assert strip.shape == (4, 15) and strip.dtype == np.uint8
    assert strip[:, :5].max() == 0 and strip[:, 5:10].min() == 255
    assert (strip[:, 10:12] == 255).all() and strip[:, 12:].max() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no partial file left


@pytest.mark.parametrize("mask,name", [
    (np.zeros((4, 5), np.uint8), "m.png"),
    (np.zeros((2, 4, 5), np.float32), "m.png"),
    (np.zeros((2, 4, 5), np.uint8), "m.jpg"),
])
def test_mask_strip_refuses_what_it_cannot_write(tmp_path: Path, mask, name):
    with pytest.raises(ValueError):
        write_mask_strip(mask, tmp_path / name)
