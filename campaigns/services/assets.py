"""Brand assets: uploads sniffed by content, measured, stored once per checksum.

The bytes decide what a file is, never its name: PNG, JPEG and WebP images and MP4 clips only.
A refused upload leaves no row and no stored file. Nothing in the request costs more than the
limits allow: an image is decoded by Pillow under ASSET_MAX_PIXELS; a clip is only probed from its
container and refused over its frames x pixels budget, then decoded on the cpu queue
(``asset_checks``), ``processing`` until then.
"""
import hashlib
import warnings
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from campaigns.errors import TooLarge, UnsupportedMedia
from campaigns.services.asset_checks import asset_check_enqueue
from campaigns.models import Brand, BrandAsset

IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
CLIP_TYPES = {"video/mp4": ".mp4", "video/x-m4v": ".mp4"}
ALLOWED = "PNG, JPEG or WebP images and MP4 clips"


@dataclass(frozen=True)
class Probe:
    kind: str
    content_type: str
    suffix: str
    width: int
    height: int
    num_frames: int


def _sniff(head: bytes) -> str:
    kind = filetype.guess(head)
    mime = kind.mime if kind else "unknown"
    if mime not in IMAGE_TYPES and mime not in CLIP_TYPES:
        raise UnsupportedMedia(f"this file's content is {mime}, which is not accepted; upload {ALLOWED}.",
                               details={"file": f"content type {mime}", "allowed": sorted({**IMAGE_TYPES, **CLIP_TYPES})})
    return mime


def _probe_image(upload: UploadedFile, mime: str) -> Probe:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = settings.ASSET_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the limit; any image over it is refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            upload.seek(0)
            with Image.open(upload) as image:
                width, height = image.size
                if width * height > settings.ASSET_MAX_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                image.load()  # decode every byte: a truncated or corrupt file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError({"file": f"the image has more than {settings.ASSET_MAX_PIXELS:,} pixels "
                                       "(a decompression bomb, or simply too large); upload a smaller image."})
    except Exception as exc:  # Pillow raises many types for broken files
        raise ValidationError({"file": f"the image could not be decoded ({type(exc).__name__}); "
                                       f"upload an intact {ALLOWED}."})
    return Probe("image", mime, IMAGE_TYPES[mime], width, height, 1)


CLIP_CODECS = {"h264", "hevc", "vp9", "av1", "mpeg4"}


def _probe_clip(upload: UploadedFile, mime: str) -> Probe:
    """What the clip's container says it holds (frames, size, codec), read without decoding a
    frame; over the budget it is refused here, before it costs anything. Decoding, checking that
    the frames agree and the poster come later on the cpu queue (``asset_checks``)."""
    import av

    upload.seek(0)
    try:
        # skip_frame=all: FFmpeg's stream probe would otherwise decode the first frame to learn its
        # pixel format (400 MB for one 16384² frame); the container and the codec's headers say enough.
        with av.open(upload, mode="r", metadata_errors="ignore",
                     stream_options=[{"skip_frame": "all"}]) as container:
            if not container.streams.video:
                raise ValidationError({"file": "the file has no video stream; upload an MP4 with video."})
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
            frames = stream.frames
            if not frames and stream.duration and stream.time_base and stream.average_rate:
                frames = round(float(stream.duration * stream.time_base * stream.average_rate))
    except ValidationError:
        raise
    except Exception as exc:  # PyAV raises its own error types for broken containers
        raise ValidationError({"file": f"the clip could not be read ({type(exc).__name__}); "
                                       "upload an intact MP4 (H.264)."})
    if codec not in CLIP_CODECS:
        raise ValidationError({"file": f"the clip's video is {codec}; accepted codecs are "
                                       f"{', '.join(sorted(CLIP_CODECS))}."})
    if not frames or not width or not height:
        raise ValidationError({"file": "the clip does not state its length or frame size; upload an MP4 (H.264) "
                                       "written by an ordinary encoder."})
    pixels = width * height
    if frames > settings.ASSET_MAX_CLIP_FRAMES or pixels > settings.ASSET_MAX_PIXELS \
            or frames * pixels > settings.ASSET_MAX_CLIP_PIXELS:
        raise ValidationError({"file": f"the clip is {frames} frames of {width}x{height} "
                                       f"({frames * pixels:,} pixels); the limits are {settings.ASSET_MAX_CLIP_FRAMES} "
                                       f"frames, {settings.ASSET_MAX_PIXELS:,} pixels a frame and "
                                       f"{settings.ASSET_MAX_CLIP_PIXELS:,} pixels in all (about 10 s of 1080p); "
                                       "upload a shorter or smaller clip."})
    return Probe("clip", mime, CLIP_TYPES[mime], width, height, frames)


def _checksum(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    return digest.hexdigest()


def asset_probe(*, upload: UploadedFile) -> Probe:
    """What the upload really is (415/413/400 otherwise); stores nothing."""
    if upload.size > settings.ASSET_MAX_BYTES:
        raise TooLarge(f"the file is {upload.size / 1e6:.1f} MB; the limit is {settings.ASSET_MAX_BYTES / 1e6:.0f} MB.",
                       details={"file": "too large", "limit_bytes": settings.ASSET_MAX_BYTES})
    if upload.size == 0:
        raise ValidationError({"file": f"the file is empty; upload {ALLOWED}."})
    upload.seek(0)
    mime = _sniff(upload.read(4096))
    return _probe_image(upload, mime) if mime in IMAGE_TYPES else _probe_clip(upload, mime)


def asset_upload(*, brand: Brand, upload: UploadedFile, caption: str = "") -> tuple[BrandAsset, bool]:
    """Store a brand asset; the same bytes twice give the same asset. Returns (asset, created)."""
    if len(caption or "") > 500:
        raise ValidationError({"caption": "caption must be at most 500 characters."})
    probe = asset_probe(upload=upload)
    checksum = _checksum(upload)
    existing = BrandAsset.objects.filter(brand=brand, checksum=checksum).first()
    if existing:
        return existing, False

    clip = probe.kind == BrandAsset.Kind.CLIP
    asset = BrandAsset(organization_id=brand.organization_id, brand=brand, kind=probe.kind,
                       content_type=probe.content_type, caption=(caption or "").strip(), checksum=checksum,
                       size_bytes=upload.size, width=probe.width, height=probe.height, num_frames=probe.num_frames,
                       status=BrandAsset.Status.PROCESSING if clip else BrandAsset.Status.READY)
    upload.seek(0)
    upload.name = f"{checksum}{probe.suffix}"
    asset.file.save(upload.name, upload, save=False)  # stored first: a row never points at nothing
    try:
        with transaction.atomic():
            asset.save()
            if clip:
                asset_check_enqueue(asset=asset)
    except IntegrityError:
        # The same bytes arrived twice at once: keep the first row, drop our copy of the file.
        if asset.file.name != BrandAsset.objects.get(brand=brand, checksum=checksum).file.name:
            default_storage.delete(asset.file.name)
        return BrandAsset.objects.get(brand=brand, checksum=checksum), False
    except Exception:
        default_storage.delete(asset.file.name)
        raise
    return asset, True


def asset_delete(*, asset: BrandAsset) -> None:
    names = [name for name in (asset.file.name, asset.poster.name) if name]
    asset.delete()
    for name in names:
        transaction.on_commit(lambda name=name: default_storage.delete(name))
