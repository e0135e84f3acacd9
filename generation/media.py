"""Media encoding: generated frames to a browser-playable MP4 and a poster image, and probing back.

No ffprobe ships with imageio-ffmpeg (only an `ffmpeg` binary), so `probe_video` decodes the file
with imageio. Files are written under a temporary name and renamed into place, so a crash or a
full disk never leaves a half-written clip at the final path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generation.atomic import staged_file

# H.264 in yuv420p plays in every browser; yuv420p halves chroma resolution, so sides must be even.
VIDEO_CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
# imageio's ffmpeg quality scale 0..10 (10 best); 8 is visually clean at modest size.
VIDEO_QUALITY = 8
POSTER_JPEG_QUALITY = 90


def write_mp4(frames, path: str | Path, fps: int) -> None:
    """Encode frames (F,H,W,3 uint8, or float in 0..1) as H.264 yuv420p MP4 at `path`."""
    import imageio.v2 as imageio

    # 1. Check inputs: loud errors here beat an ffmpeg failure or a silently rescaled video.
    video = to_uint8_frames(frames)
    _, height, width, _ = video.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 yuv420p needs even width and height; got {width}x{height}.")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        raise ValueError(f"fps must be a positive number; got {fps!r}.")
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"write_mp4 writes .mp4 files; got {path.name!r}.")

    # 2. Encode to a staging sibling, renamed into place when complete.
    with staged_file(path) as partial:
        writer = imageio.get_writer(
            partial,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec=VIDEO_CODEC,
            pixelformat=PIXEL_FORMAT,
            quality=VIDEO_QUALITY,
            # imageio rescales to a multiple of macro_block_size (16 by default); 2 means our
            # even sizes go through untouched (LTX and CogVideoX sizes need not be /16).
            macro_block_size=2,
            # faststart moves the index to the front, so browsers start playing before the end
            # of the download arrives (clips are served through signed URLs).
            output_params=["-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        try:
            for frame in video:
                writer.append_data(frame)
        finally:
            writer.close()


def write_poster(frames, path: str | Path) -> None:
    """Save the middle frame as a poster image; JPEG or PNG by the file suffix."""
    from PIL import Image

    video = to_uint8_frames(frames)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        fmt, options = "JPEG", {"quality": POSTER_JPEG_QUALITY}
    elif suffix == ".png":
        fmt, options = "PNG", {}
    else:
        raise ValueError(f"poster must be .jpg, .jpeg or .png; got {path.name!r}.")
    with staged_file(path) as partial:
        Image.fromarray(video[len(video) // 2]).save(partial, format=fmt, **options)


def probe_video(path: str | Path) -> dict:
    """Decode a video and return {"num_frames", "width", "height", "fps"} as it really is."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        fps = float(reader.get_meta_data()["fps"])
        # Count by decoding every frame: container metadata can be wrong, a decode cannot.
        num_frames = 0
        height = width = 0
        for frame in reader:
            height, width = frame.shape[:2]
            num_frames += 1
    finally:
        reader.close()
    if num_frames == 0:
        raise ValueError(f"{path} decodes to no frames.")
    return {"num_frames": num_frames, "width": int(width), "height": int(height), "fps": fps}


def read_video(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file as one (F,H,W,3) uint8 array (edits read clips back)."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    frames = [np.asarray(frame)[..., :3] for frame in iio.imiter(path, plugin="FFMPEG")]
    if not frames:
        raise ValueError(f"{path} decodes to no frames.")
    return to_uint8_frames(np.stack(frames))


def write_mask_strip(mask, path: str | Path) -> None:
    """Save a keep-mask (F,H,W uint8, 255 = kept) as one grayscale PNG: the frames side by side,
    left to right in time, each at full size (F*W wide, H high)."""
    from PIL import Image

    mask = np.asarray(mask)
    if mask.ndim != 3 or mask.shape[0] == 0:
        raise ValueError(f"mask must be (F,H,W) with F >= 1; got shape {mask.shape}.")
    if mask.dtype != np.uint8:
        raise ValueError(f"mask must be uint8 (255 = kept); got dtype {mask.dtype}.")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"the mask strip is a .png; got {path.name!r}.")
    strip = np.ascontiguousarray(np.concatenate(list(mask), axis=1))
    with staged_file(path) as partial:
        Image.fromarray(strip).save(partial, format="PNG")


def to_uint8_frames(frames) -> np.ndarray:
    """Frames as one (F,H,W,3) uint8 array; floats are read as 0..1 (the pipelines' "np" output)."""
    if isinstance(frames, np.ndarray):
        video = frames
    else:
        frames = list(frames)
        if not frames:
            raise ValueError("frames must not be empty.")
        shapes = {np.shape(f) for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"all frames must have the same shape; got {sorted(shapes)}.")
        video = np.stack([np.asarray(f) for f in frames])
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] == 0:
        raise ValueError(f"frames must be (F,H,W,3) with F >= 1; got shape {video.shape}.")
    if video.dtype == np.uint8:
        return np.ascontiguousarray(video)
    if np.issubdtype(video.dtype, np.floating):
        if not np.isfinite(video).all():
            raise ValueError("frames contain NaN or infinity.")
        return np.ascontiguousarray((np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8))
    raise ValueError(f"frames must be uint8 or float in 0..1; got dtype {video.dtype}.")
