"""Training data for the LoRA trainer: brand assets decoded to pixel clips, then encoded once.

Images become one-frame clips; clips are resampled in time to the model's frame rate and cut to
the frame count the model family accepts; both are resized to cover the training size and
centre-cropped. The VAE latents and text embeddings of every sample are computed once per run
(`encode_samples`) because the VAE and text encoder are frozen: re-encoding per step would only
burn time.

Masked loss (kohya-ss's `--masked_loss`, OneTrainer's masked training): the adapter is to learn
the brand's product, not the grounds it was shot on, or every clip of the brand drifts towards the
assets' backdrops whatever setting the segment asks for. So each sample gets a loss weight on its
latent grid: 1 where the product is, `background_weight` elsewhere. The product is the image's
alpha where it has one, else what differs in colour from the frame's border (a product shot on a
plain backdrop); a sample where neither separates a product is weighted alike everywhere.

Camera moves for images (`image_moves`): a still clip teaches stillness as much as the product, and
an adapter trained on product photos as still clips stops the motion of the clips it makes. So an
image can also train as clips of a synthetic camera move, each captioned with the words the model
reads for that move (the campaign camera presets' own wording): the image scaled up by
`MOVE_TRAVEL` and the frame sliding across it, so the content travels that share of the frame,
and the still clip captioned as a static shot. The motion then belongs to the words, and the
trigger to the product.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from generation.editing import cover_crop
from generation.personalization import CAMERA_PRESETS, CAMERA_TRAVEL
from generation.pixels import frames_to_pixels
from generation.training.schema import TrainingSample


@dataclass(frozen=True)
class EncodedSample:
    """One sample as the training loop sees it: a latent distribution and its caption embeddings."""

    # Normalised latent distribution (B=1, C, F', H', W'): a step draws x0 = mean + std * eps, so
    # the VAE's posterior noise still varies from step to step without re-running the VAE.
    latent_mean: torch.Tensor
    latent_std: torch.Tensor
    prompt_embeds: torch.Tensor
    # (1, 1, F', H', W') loss weight on the latent grid (masked loss), or None: every latent alike.
    loss_weight: torch.Tensor | None = None


# Camera preset -> where the content of an image travels on screen over a clip (x, y; +1 right or
# down), when the image trains as that move (`image_moves`): the preset's own `screen_motion`, whose
# share of the frame is MOVE_TRAVEL. A pan to the left slides the scene right.
IMAGE_MOVES: dict[str, tuple[int, int]] = {
    preset.key: (int(np.sign(preset.screen_motion[0])), int(np.sign(preset.screen_motion[1])))
    for preset in CAMERA_PRESETS if preset.screen_motion is not None
}
MOVE_TRAVEL = CAMERA_TRAVEL

# A product matte is believed when it covers this share of the frame: less is noise, more is a
# photo whose border is not a backdrop.
PRODUCT_SHARE = (0.005, 0.6)


def load_pixels(*, sample: TrainingSample, num_frames: int, width: int, height: int, fps: int) -> torch.Tensor:
    """The sample as a float clip (3, num_frames, height, width) in [-1, 1].

    An image becomes a still clip of `num_frames` frames rather than a single frame: the adapter
    then learns the brand over the frames it will generate. Trained as single frames, the look
    barely carried over into clips (measured on the toy world: 24% of clips in the brand colour,
    against 70% as still clips, same LoRA budget).
    """
    video, _ = _load_video(sample=sample, num_frames=num_frames, width=width, height=height, fps=fps)
    return frames_to_pixels(video)


def product_matte(video: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray | None:
    """(F, H, W) float 0..1: where the product is in a uint8 clip (F, H, W, 3), or None when
    nothing separates it. `alpha` (F, H, W), the asset's own transparency, wins when it has both
    opaque and transparent pixels; else the pixels far in colour from the frame's border."""
    if alpha is not None and 0 < alpha.mean() < 1:
        matte = alpha.astype(np.float32)
    else:
        from generation.editing import colour_matte

        matte = colour_matte(video, np.ones(video.shape[1:3], dtype=np.float32))
    low, high = PRODUCT_SHARE
    return matte if low <= float(matte.mean()) <= high else None


def latent_weight(matte: np.ndarray | None, latent_shape: torch.Size, background_weight: float) -> torch.Tensor | None:
    """The loss weight on a (1, C, F', H', W') latent grid: 1 on every latent cell the product
    touches (max-pooled from pixels, so its edges count as product), `background_weight` elsewhere."""
    if matte is None or background_weight >= 1.0:
        return None
    grid = tuple(latent_shape[2:])
    touched = torch.nn.functional.adaptive_max_pool3d(torch.from_numpy(matte).float()[None, None], grid)
    return background_weight + (1.0 - background_weight) * touched


def encode_samples(
    *,
    samples: Sequence[TrainingSample],
    num_frames: int,
    width: int,
    height: int,
    fps: int,
    encode_video: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    encode_text: Callable[[str], torch.Tensor],
    background_weight: float = 1.0,
    image_moves: Mapping[str, str] | None = None,
) -> list[EncodedSample]:
    """Encode every sample once: `encode_video` maps pixels to (mean, std), `encode_text` a caption.
    `background_weight` < 1 gives each sample a masked loss (see the module's docstring).
    `image_moves` (preset key of `IMAGE_MOVES` -> the words for it) makes every image one sample per
    move, captioned "caption, words"; without it an image is one still clip."""
    embeds: dict[str, torch.Tensor] = {}  # captions repeat (one trigger phrase per brand)
    encoded = []
    for sample in samples:
        for video, alpha, caption in _variants(sample, num_frames=num_frames, width=width, height=height, fps=fps,
                                               image_moves=image_moves):
            mean, std = encode_video(frames_to_pixels(video))
            if caption not in embeds:
                embeds[caption] = encode_text(caption)
            weight = None
            if background_weight < 1.0:
                weight = latent_weight(product_matte(video, alpha), mean.shape, background_weight)
            encoded.append(EncodedSample(latent_mean=mean, latent_std=std, prompt_embeds=embeds[caption],
                                         loss_weight=None if weight is None else weight.to(mean.device)))
    return encoded


def _variants(sample: TrainingSample, *, num_frames: int, width: int, height: int, fps: int,
              image_moves: Mapping[str, str] | None):
    """(frames, alpha, caption) of each clip a sample trains as: itself, or an image's camera moves."""
    if sample.kind != "image" or not image_moves:
        video, alpha = _load_video(sample=sample, num_frames=num_frames, width=width, height=height, fps=fps)
        yield video, alpha, sample.caption
        return
    image = _open_image(_existing(sample))
    for key, words in image_moves.items():
        if key not in IMAGE_MOVES:
            raise ValueError(f"unknown image move {key!r}; known: {', '.join(IMAGE_MOVES)}.")
        frames = camera_move(image, velocity=IMAGE_MOVES[key], num_frames=num_frames, width=width, height=height)
        yield *_rgb_and_alpha(frames), f"{sample.caption}, {words}"


def camera_move(image: Image.Image, *, velocity: tuple[int, int], num_frames: int, width: int,
                height: int) -> np.ndarray:
    """uint8 (F, H, W, C) frames of a camera move over the image: still (0, 0) as the image covers the
    frame; else the image scaled to cover (1 + MOVE_TRAVEL) times the frame, the frame sliding across
    it so the content travels MOVE_TRAVEL of the frame the way `velocity` says (sub-pixel, bicubic)."""
    if velocity == (0, 0):
        still = np.asarray(cover_crop(image, width=width, height=height, resample=Image.Resampling.BICUBIC))
        return np.repeat(still[None], num_frames, axis=0)
    big_w, big_h = round(width * (1 + MOVE_TRAVEL)), round(height * (1 + MOVE_TRAVEL))
    big = cover_crop(image, width=big_w, height=big_h, resample=Image.Resampling.BICUBIC)
    span_x, span_y = big_w - width, big_h - height
    frames = []
    for t in range(num_frames):
        f = t / (num_frames - 1) if num_frames > 1 else 0.0
        # The content moves +v on screen, so the frame's corner moves -v over the scaled image.
        x = span_x * (0.5 if velocity[0] == 0 else (1 - f) if velocity[0] > 0 else f)
        y = span_y * (0.5 if velocity[1] == 0 else (1 - f) if velocity[1] > 0 else f)
        frame = big.transform((width, height), Image.Transform.AFFINE, (1, 0, x, 0, 1, y),
                              resample=Image.Resampling.BICUBIC)
        frames.append(np.asarray(frame))
    return np.stack(frames)


def dataset_fingerprint(samples: Sequence[TrainingSample]) -> str:
    """Hash of what the samples hold (kind, caption, file bytes), not where they lie.

    A resumed run may see the same assets downloaded to another folder; it must not see other
    assets, or "resume" would silently train on a different dataset.
    """
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f"{sample.kind}\0{sample.caption}\0".encode())
        with sample.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _load_video(*, sample: TrainingSample, num_frames: int, width: int, height: int,
                fps: int) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 frames (F, H, W, 3), and the image's alpha (F, H, W) in 0..1 where it has one."""
    path = _existing(sample)
    if sample.kind == "image":
        still = camera_move(_open_image(path), velocity=(0, 0), num_frames=num_frames, width=width, height=height)
        return _rgb_and_alpha(still)
    frames = [np.asarray(f, dtype=np.uint8) for f in
              _read_clip(path, num_frames=num_frames, fps=fps, width=width, height=height)]
    return np.stack(frames), None


def _existing(sample: TrainingSample) -> Path:
    if not sample.path.is_file():
        raise FileNotFoundError(f"Training sample {sample.path} does not exist.")
    return sample.path


def _rgb_and_alpha(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB frames, and the alpha (0..1, opaque from 128) of RGBA ones."""
    if frames.shape[-1] != 4:
        return frames, None
    return np.ascontiguousarray(frames[..., :3]), (frames[..., 3] >= 128).astype(np.float32)


def _open_image(path: Path) -> Image.Image:
    """The image upright, as RGB, or RGBA when it carries transparency (the product's own matte)."""
    try:
        with Image.open(path) as image:
            # Phones store rotation in EXIF; without this a portrait photo trains sideways.
            image = ImageOps.exif_transpose(image)
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            return image.convert("RGBA" if transparent else "RGB")
    except OSError as exc:
        raise ValueError(f"Training sample {path} is not a readable image: {exc}") from exc


def _read_clip(path: Path, *, num_frames: int, fps: int, width: int, height: int) -> list[Image.Image]:
    """`num_frames` frames at `fps` from the start of the clip.

    Frames are decoded one at a time and decoding stops at the end of the window, so a long 1080p
    clip never sits in memory whole. A clip shorter than the window is spread over `num_frames`
    (frames repeat) rather than rejected: brand assets are often very short loops.
    """
    import imageio.v3 as iio

    try:
        source_fps = float(iio.immeta(path, plugin="FFMPEG").get("fps") or 0.0)
    except Exception as exc:  # imageio raises plain OSError/RuntimeError/IndexError by backend
        raise ValueError(f"Training sample {path} is not a readable video: {exc}") from exc
    if source_fps <= 0:
        raise ValueError(f"Training sample {path} has no frame rate in its metadata; "
                         "re-encode it (e.g. to H.264 MP4).")

    window_end = (num_frames - 1) / fps  # seconds
    kept: list[Image.Image] = []
    with contextlib.closing(iio.imiter(path, plugin="FFMPEG")) as frames:
        for index, frame in enumerate(frames):
            kept.append(cover_crop(Image.fromarray(frame).convert("RGB"), width=width, height=height,
                                   resample=Image.Resampling.BICUBIC))
            if index / source_fps >= window_end:
                break
    if not kept:
        raise ValueError(f"Training sample {path} has no decodable frames.")

    last = len(kept) - 1
    if last / source_fps >= window_end:
        picks = [min(round(i / fps * source_fps), last) for i in range(num_frames)]
    else:
        picks = [round(i * last / (num_frames - 1)) if num_frames > 1 else 0 for i in range(num_frames)]
    return [kept[i] for i in picks]
