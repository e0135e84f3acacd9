"""Jobs: create-and-enqueue, cancel, and the runner that moves a job through its states.

A job is queued → running → succeeded / failed / cancelled. Tasks run it through ``job_run``,
which is safe to call twice for one job (a redelivered task after a worker died): a finished job
is left alone, a running one is taken up again with ``attempts`` counting the tries.
"""
import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import OperationalError, transaction
from django.utils import timezone

from campaigns.errors import Conflict
from campaigns.models import Brand, Campaign, Job, Organization

logger = logging.getLogger(__name__)

# The Celery task that runs each kind of job. The name's first word is its queue (see
# CELERY_TASK_ROUTES), so the web process can enqueue by name without importing the task's code.
JOB_TASKS: dict[str, str] = {
    Job.Kind.TRAIN_LORA: "gpu.lora_train",
    Job.Kind.GENERATE_CLIPS: "gpu.campaign_generate",
    Job.Kind.EDIT_CLIP: "gpu.clip_edit",
    Job.Kind.RESCENE_CAMPAIGN: "gpu.campaign_rescene",
    Job.Kind.SEGMENT_PROFILES: "cpu.campaign_segment",
    Job.Kind.SELFTEST: "cpu.job_selftest",
}

# Progress is written at most this often, so a fast loop does not hammer the database.
PROGRESS_INTERVAL_S = 0.2


def _transient_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    return (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError, OperationalError)


TRANSIENT_ERRORS = _transient_errors()


class JobCancelled(Exception):
    """Raised inside a job's work when somebody cancelled it; the runner cleans up."""


def job_enqueue_task(*, task_name: str, args: list) -> None:
    """Send a task by name once the surrounding transaction commits (never inside it)."""
    from adplatform.celery import app

    transaction.on_commit(lambda: app.send_task(task_name, args=args))


def job_enqueue(*, job: Job) -> None:
    job_enqueue_task(task_name=JOB_TASKS[job.kind], args=[job.pk])


@transaction.atomic
def job_create(*, organization: Organization, kind: str, params: dict | None = None,
               brand: Brand | None = None, campaign: Campaign | None = None, user=None,
               enqueue: bool = True) -> Job:
    job = Job(organization=organization, kind=kind, params=params or {}, brand=brand,
              campaign=campaign, created_by=user if user and user.is_authenticated else None)
    job.full_clean()
    job.save()
    if enqueue:
        job_enqueue(job=job)
    return job


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Cancel a queued or running job; a running one stops at its next progress report."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise Conflict(
            f"job {job.pk} has already {job.status}; only queued or running jobs can be cancelled.",
            code="job_finished",
            details={"status": job.status},
        )
    job.status = Job.Status.CANCELLED
    job.message = "cancelled"
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "message", "finished_at"])
    return job


class JobHandle:
    """What a job's work sees: report progress, notice cancellation, leave a result."""

    def __init__(self, job: Job):
        self.job = job
        self._last_write = 0.0

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        """Record progress (0..1); raises JobCancelled when the job was cancelled meanwhile."""
        now = time.monotonic()
        if not force and now - self._last_write < PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        fields: dict[str, Any] = {"progress": max(0.0, min(1.0, fraction)), "heartbeat_at": timezone.now()}
        if message is not None:
            fields["message"] = message[:500]
        # The status filter makes the write and the cancellation check one statement.
        if not Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING).update(**fields):
            raise JobCancelled(f"job {self.job.pk} was cancelled")
        for name, value in fields.items():
            setattr(self.job, name, value)

    def check_cancelled(self) -> None:
        if Job.objects.filter(pk=self.job.pk).values_list("status", flat=True).first() != Job.Status.RUNNING:
            raise JobCancelled(f"job {self.job.pk} was cancelled")

    def keep_going(self, fraction: float, message: str | None = None) -> bool:
        """For engine callbacks that answer "go on?" instead of raising."""
        try:
            self.progress(fraction, message)
        except JobCancelled:
            return False
        return True


def job_start(*, job_id: int) -> Job | None:
    """Move a job to running; None when it is already finished (done, failed or cancelled)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s does not exist; nothing to do", job_id)
            return None
        if job.is_finished:
            logger.info("job %s is already %s; nothing to do", job_id, job.status)
            return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or timezone.now()
        job.heartbeat_at = timezone.now()
        job.error = ""
        if job.attempts > 1:
            job.message = f"resumed (attempt {job.attempts})"
        job.save(update_fields=["status", "attempts", "started_at", "heartbeat_at", "error", "message"])
        return job


def job_finish(*, job: Job, status: str, message: str = "", error: str = "", result: dict | None = None) -> bool:
    """Record the outcome unless the job was cancelled meanwhile; True when it was recorded."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "message": message[:500], "error": error}
    if status == Job.Status.SUCCEEDED:
        fields["progress"] = 1.0
    if result is not None:
        fields["result"] = result
    return bool(Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(**fields))


def job_fail(*, job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.FAILED, error=error[:5000], message="failed", finished_at=timezone.now()
    )


def job_run(*, job_id: int, work: Callable[[JobHandle], dict | None], done_message: str = "done") -> None:
    """Run ``work`` for a job, moving it through its states. Safe to call twice for one job.

    Transient storage or database errors propagate so that the task retries with backoff; any
    other error fails the job with its message; a cancellation ends quietly.
    """
    job = job_start(job_id=job_id)
    if job is None:
        return
    handle = JobHandle(job)
    try:
        result = work(handle)
    except JobCancelled:
        logger.info("job %s cancelled", job_id)
        return
    except TRANSIENT_ERRORS as exc:
        Job.objects.filter(pk=job_id).update(message=f"retrying after a transient error: {exc}"[:500])
        raise
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        job_finish(job=job, status=Job.Status.FAILED, message="failed", error=f"{type(exc).__name__}: {exc}")
        return
    job_finish(job=job, status=Job.Status.SUCCEEDED, message=done_message, result=result or {})


def job_selftest(handle: JobHandle) -> dict:
    """A job that only reports progress: proves broker, worker and database work together."""
    steps = max(1, min(int(handle.job.params.get("steps", 5)), 100))
    delay = max(0.0, min(float(handle.job.params.get("delay", 0.05)), 1.0))
    for step in range(1, steps + 1):
        time.sleep(delay)
        handle.progress(step / steps, f"step {step}/{steps}", force=True)
    return {"steps": steps}
