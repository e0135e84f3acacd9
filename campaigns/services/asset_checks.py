"""A brand clip's check, on the cpu queue: decode it whole, within the budget its container
stated at upload, and give it a poster.

The upload request only read the container's metadata (``assets._probe_clip``), so a clip is
``processing`` until this check decodes every frame: frames that disagree with what the container
promised (more of them, another size), or that do not decode, fail the asset with a reason; a
clip that decodes is ``ready``, with its true frame count and a JPEG poster of its first frame.
Training learns only from ready assets.

Survives dead workers like every task here (late acks): and the workers' watchdog queues again a
check that has been running or waiting longer than ASSET_CHECK_RETRY_S. A clip whose check was
started ASSET_CHECK_MAX_ATTEMPTS times without finishing (it kills its decoder, or its worker)
fails instead of taking down worker after worker.
"""
import io
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.files import storage_fetch
from campaigns.models import BrandAsset

from .jobs import TRANSIENT_ERRORS, job_enqueue_task

logger = logging.getLogger(__name__)

POSTER_WIDTH = 480


class ClipRefused(Exception):
    """The clip's frames are not what its container promised, or do not decode."""


def asset_check_enqueue(*, asset: BrandAsset) -> None:
    job_enqueue_task(task_name="cpu.asset_check", args=[asset.pk])


def _decode(path: Path, *, width: int, height: int, declared_frames: int) -> tuple[int, bytes]:
    """Every frame decoded once, held to the budget; returns (frames, first-frame poster JPEG)."""
    import av
    from PIL import Image

    # The container's frame count may be an estimate (from its duration): a little slack, but never
    # past the limits that the upload was measured against.
    most = min(settings.ASSET_MAX_CLIP_FRAMES, settings.ASSET_MAX_CLIP_PIXELS // (width * height),
               declared_frames + max(2, declared_frames // 20))
    frames, poster = 0, b""
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                if (frame.width, frame.height) != (width, height):
                    raise ClipRefused(f"frame {frames + 1} is {frame.width}x{frame.height}, but the clip said "
                                      f"{width}x{height}; upload a clip whose frames all have one size.")
                frames += 1
                if frames > most:
                    raise ClipRefused(f"the clip holds more than the {declared_frames} frames it stated; upload "
                                      "an intact MP4 (H.264).")
                if frames == 1:
                    image = frame.to_image()
                    image.thumbnail((POSTER_WIDTH, image.height), Image.Resampling.LANCZOS)  # width only
                    out = io.BytesIO()
                    image.save(out, "JPEG", quality=85)
                    poster = out.getvalue()
    except ClipRefused:
        raise
    except SoftTimeLimitExceeded as exc:
        raise ClipRefused(f"decoding the clip took longer than its time limit ({frames} frames decoded); "
                          "upload a shorter or smaller clip.") from exc
    except Exception as exc:  # PyAV raises its own error types for corrupt streams
        raise ClipRefused(f"the clip's video does not decode ({type(exc).__name__} after {frames} frames); "
                          "upload an intact MP4 (H.264).") from exc
    if frames == 0:
        raise ClipRefused("the clip has no frames that decode; upload an intact MP4 (H.264).")
    return frames, poster


def _begin(asset_id: int) -> BrandAsset | None:
    """Count this try; None when there is nothing to check (gone, finished, or out of tries)."""
    with transaction.atomic():
        asset = BrandAsset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None or asset.status != BrandAsset.Status.PROCESSING:
            return None
        if asset.check_attempts >= settings.ASSET_CHECK_MAX_ATTEMPTS:
            asset.status = BrandAsset.Status.FAILED
            asset.error = (f"checking this clip stopped {asset.check_attempts} times without finishing (its "
                           "decoder or worker died); upload it again re-encoded as an ordinary MP4 (H.264).")
            asset.save(update_fields=["status", "error"])
            return None
        asset.check_attempts += 1
        asset.check_started_at = timezone.now()
        asset.save(update_fields=["check_attempts", "check_started_at"])
        return asset


def asset_check(*, asset_id: int) -> str | None:
    """Decode a processing clip; it ends ready (with a poster) or failed (with a reason).
    Returns the status it ended in (None when there was nothing to do). Safe to run twice."""
    asset = _begin(asset_id)
    if asset is None:
        return None
    poster_name = ""
    try:
        with tempfile.TemporaryDirectory(prefix="asset-check-") as tmp:
            local = storage_fetch(asset.file.name, Path(tmp) / Path(asset.file.name).name)
            try:
                frames, poster = _decode(local, width=asset.width, height=asset.height,
                                         declared_frames=asset.num_frames)
            except ClipRefused as exc:
                changes = {"status": BrandAsset.Status.FAILED, "error": str(exc)[:500]}
            else:
                asset.poster.save("poster.jpg", ContentFile(poster), save=False)  # named by asset_poster_to
                poster_name = asset.poster.name
                changes = {"status": BrandAsset.Status.READY, "error": "", "num_frames": frames,
                           "poster": poster_name}
    except TRANSIENT_ERRORS:
        # Storage or the database away for a moment: the task retries, and that try is not the
        # clip's fault, so it does not count towards ASSET_CHECK_MAX_ATTEMPTS.
        BrandAsset.objects.filter(pk=asset.pk).update(check_attempts=F("check_attempts") - 1)
        raise
    # Deleted while it was checked, or finished by another try: keep what is there, drop our poster.
    updated = BrandAsset.objects.filter(pk=asset.pk, status=BrandAsset.Status.PROCESSING).update(**changes)
    if not updated and poster_name:
        default_storage.delete(poster_name)
    logger.info("asset %s checked: %s", asset.pk, changes["status"] if updated else "already finished or gone")
    return changes["status"] if updated else None


def asset_checks_due() -> list[int]:
    """Queue again the checks that should have finished by now (run by every worker's watchdog)."""
    due_before = timezone.now() - timedelta(seconds=settings.ASSET_CHECK_RETRY_S)
    due = list(BrandAsset.objects.filter(status=BrandAsset.Status.PROCESSING)
               .annotate(since=Coalesce(F("check_started_at"), F("created_at")))
               .filter(since__lt=due_before).values_list("pk", flat=True)[:100])
    with transaction.atomic():
        for pk in due:
            # Pushed forward, so that the next look (seconds later) does not queue it again.
            BrandAsset.objects.filter(pk=pk).update(check_started_at=timezone.now())
            logger.warning("asset %s is still being checked after %d s; queued again", pk, settings.ASSET_CHECK_RETRY_S)
            asset_check_enqueue(asset=BrandAsset(pk=pk))
    return due
