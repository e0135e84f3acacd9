"""Brand assets: uploads sniffed by content, decoded, measured, stored once per checksum.

The bytes decide what a file is, never its name: PNG, JPEG and WebP images and MP4 clips only.
A refused upload leaves no row and no stored file.
"""
import hashlib
import tempfile
import warnings
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from campaigns.errors import TooLarge, UnsupportedMedia
from campaigns.models import Brand, BrandAsset

IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
CLIP_TYPES = {"video/mp4": ".mp4", "video/x-m4v": ".mp4"}
ALLOWED = "PNG, JPEG or WebP images and MP4 clips"
MAX_CLIP_FRAMES = 2000


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


def _probe_clip(upload: UploadedFile, mime: str) -> Probe:
    import imageio.v3 as iio

    with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
        upload.seek(0)
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        try:
            frames = 0
            width = height = 0
            for frame in iio.imiter(tmp.name, plugin="FFMPEG"):
                frames += 1
                height, width = frame.shape[:2]
                if frames > MAX_CLIP_FRAMES or width * height > settings.ASSET_MAX_PIXELS:
                    raise ValidationError({"file": f"the clip is over {MAX_CLIP_FRAMES} frames or "
                                                   f"{settings.ASSET_MAX_PIXELS:,} pixels a frame; upload a short clip."})
        except ValidationError:
            raise
        except Exception as exc:
            raise ValidationError({"file": f"the clip could not be decoded ({type(exc).__name__}); "
                                           f"upload an intact MP4 (H.264)."})
    if frames == 0:
        raise ValidationError({"file": "the clip has no frames; upload an MP4 with video."})
    return Probe("clip", mime, CLIP_TYPES[mime], width, height, frames)


def _checksum(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    return digest.hexdigest()


def asset_probe(*, upload: UploadedFile) -> Probe:
    """What the upload really is (415/413/400 otherwise); reads and decodes it, stores nothing."""
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

    asset = BrandAsset(organization_id=brand.organization_id, brand=brand, kind=probe.kind,
                       content_type=probe.content_type, caption=(caption or "").strip(), checksum=checksum,
                       size_bytes=upload.size, width=probe.width, height=probe.height, num_frames=probe.num_frames)
    upload.seek(0)
    upload.name = f"{checksum}{probe.suffix}"
    asset.file.save(upload.name, upload, save=False)  # stored first: a row never points at nothing
    try:
        with transaction.atomic():
            asset.save()
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
    name = asset.file.name
    asset.delete()
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))
