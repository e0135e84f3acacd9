"""Jobs: create-and-enqueue, cancel, and the runner that moves a job through its states.

A job is queued → running → succeeded / failed / cancelled. Tasks run it through ``job_run``,
which is safe to call twice for one job (a task delivered twice): a finished job is left alone,
a running one whose worker still beats is left to it, and one whose worker went silent is taken
up again, with ``attempts`` counting the tries and ``worker_losses`` the workers that died on it.

Dead workers. A running job's worker writes ``heartbeat_at`` every ``JOB_HEARTBEAT_INTERVAL_S``
from a thread of its own, whatever the job is doing. Every worker runs a watchdog
(``jobs_requeue_stale`` every ``JOB_WATCHDOG_INTERVAL_S``, see ``campaigns.watchdog``) that
puts a job whose heartbeat is older than ``JOB_HEARTBEAT_TIMEOUT_S`` back on its queue, so a
live worker resumes it within about a minute and a half of the death, with the broker's
visibility timeout left long (it must outlast the longest job). A job whose workers died
``JOB_MAX_ATTEMPTS`` times fails with a message that says so, instead of killing worker after
worker.
"""
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from campaigns.errors import Conflict
from campaigns.models import Brand, Campaign, Job, Organization

from .webhooks import webhook_job_finished

logger = logging.getLogger(__name__)

# The Celery task that runs each kind of job. The name's first word is its queue (see
# CELERY_TASK_ROUTES), so the web process can enqueue by name without importing the task's code.
JOB_TASKS: dict[str, str] = {
    Job.Kind.TRAIN_LORA: "gpu.lora_train",
    Job.Kind.GENERATE_CLIPS: "gpu.campaign_generate",
    Job.Kind.EDIT_CLIP: "gpu.clip_edit",
    Job.Kind.RESCENE_CAMPAIGN: "gpu.campaign_rescene",
    Job.Kind.SEGMENT_PROFILES: "cpu.campaign_segment",
    Job.Kind.IMPORT_RECIPIENTS: "cpu.recipients_import",
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


class JobLost(BaseException):
    """Raised inside a job's work when another worker took the job over (this one was presumed
    dead: its heartbeat did not reach the database). A BaseException, so that the work's own
    clean-up handlers (`except Exception`, `except JobCancelled`) leave alone what the new attempt
    now owns; the runner just stops."""


def job_enqueue_task(*, task_name: str, args: list, priority: int | None = None, worker: str = "") -> None:
    """Send a task by name once the surrounding transaction commits (never inside it); `worker`:
    to that worker's own queue instead of the task's."""
    from celery.utils.nodenames import worker_direct

    from adplatform.celery import app

    options = {"queue": worker_direct(worker)} if worker else {}
    if priority is not None:
        options["priority"] = priority
    transaction.on_commit(lambda: app.send_task(task_name, args=args, **options))


def job_enqueue(*, job: Job, priority: int | None = None) -> None:
    """Queue the job's task. A gpu job's priority is fair between organizations, and a brand's
    job goes to the worker holding its adapter when that helps (services.fleet)."""
    from .fleet import GPU_KINDS, gpu_job_priority, gpu_job_route

    worker = ""
    if job.kind in GPU_KINDS:
        if priority is None:
            priority = gpu_job_priority(job)
        worker = gpu_job_route(job)
        if worker != job.routed_to:
            job.routed_to = worker
            Job.objects.filter(pk=job.pk).update(routed_to=worker)
    job_enqueue_task(task_name=JOB_TASKS[job.kind], args=[job.pk], priority=priority, worker=worker)


@transaction.atomic
def job_create(*, organization: Organization, kind: str, params: dict | None = None,
               brand: Brand | None = None, campaign: Campaign | None = None, user=None,
               enqueue: bool = True) -> Job:
    from .fleet import gpu_job_admit

    gpu_job_admit(organization=organization, kind=kind)
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

    def _mine(self):
        """This attempt's job row: gone from the queryset once the job was cancelled, or taken over
        by another worker after this one was presumed dead."""
        return Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING, attempts=self.job.attempts)

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False,
                 data: dict | None = None) -> None:
        """Record progress (0..1), with `data` (JSON) for pages that chart it; raises JobCancelled
        when the job was cancelled (or taken over) meanwhile."""
        now = time.monotonic()
        if not force and now - self._last_write < PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        fields: dict[str, Any] = {"progress": max(0.0, min(1.0, fraction)), "heartbeat_at": timezone.now()}
        if message is not None:
            fields["message"] = message[:500]
        if data is not None:
            fields["progress_data"] = data
        # The filter makes the write and the cancellation check one statement.
        if not self._mine().update(**fields):
            self._gone()
        for name, value in fields.items():
            setattr(self.job, name, value)

    def check_cancelled(self) -> None:
        if not self._mine().exists():
            self._gone()

    def _gone(self) -> None:
        if Job.objects.filter(pk=self.job.pk, attempts=self.job.attempts).exists():
            raise JobCancelled(f"job {self.job.pk} was cancelled")
        raise JobLost(f"job {self.job.pk} was taken over by another worker")

    def keep_going(self, fraction: float, message: str | None = None, *, data: dict | None = None) -> bool:
        """For engine callbacks that answer "go on?" instead of raising."""
        try:
            self.progress(fraction, message, data=data)
        except JobCancelled:
            return False
        return True


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)


def job_describe_size(job: Job) -> str:
    """What the job asked of a worker, in words, for a message about memory."""
    params = job.params or {}
    campaign = job.campaign
    width = params.get("width") or getattr(campaign, "width", None)
    height = params.get("height") or getattr(campaign, "height", None)
    frames = params.get("num_frames") or getattr(campaign, "num_frames", None)
    if job.kind == Job.Kind.TRAIN_LORA:
        return f"training a rank-{params.get('rank', '?')} LoRA for {params.get('steps', '?')} steps"
    if width and height and frames:
        return f"{width}×{height} × {frames} frames"
    return f"this {job.get_kind_display().lower()}"


def _lose_worker(job: Job) -> bool:
    """Count the death of the worker that ran `job` (locked, RUNNING, stale); True when the job
    may run again, False when that was one death too many and the job is now failed."""
    job.worker_losses += 1
    if job.worker_losses < settings.JOB_MAX_ATTEMPTS:
        return True
    job.status = Job.Status.FAILED
    job.finished_at = timezone.now()
    job.message = "failed"
    job.error = (f"the worker died {job.worker_losses} times on this job: likely out of memory at "
                 f"{job_describe_size(job)}. Ask for less (a smaller size, fewer frames or variants) or run it "
                 f"on a larger worker.")
    job.save(update_fields=["worker_losses", "status", "finished_at", "message", "error"])
    logger.warning("job %s failed: %s", job.pk, job.error)
    webhook_job_finished(job)
    return False


def jobs_requeue_stale() -> list[int]:
    """The watchdog: put running jobs whose worker stopped beating back on their queue (or fail
    them past `JOB_MAX_ATTEMPTS`), and queued jobs waiting in a dead worker's own queue back on the
    shared one; returns the ids it requeued."""
    from campaigns.models import FleetWorker

    from .fleet import fleet_worker_alive_since

    requeued = []
    with transaction.atomic():
        alive = FleetWorker.objects.filter(seen_at__gte=fleet_worker_alive_since()).values("hostname")
        stranded = (Job.objects.select_for_update(skip_locked=True)
                    .filter(status=Job.Status.QUEUED).exclude(routed_to="").exclude(routed_to__in=alive))
        for job in stranded:
            logger.warning("job %s was waiting for worker %s, which is gone; back to the shared queue",
                           job.pk, job.routed_to)
            Job.objects.filter(pk=job.pk).update(routed_to="")
            job.routed_to = ""
            job_enqueue(job=job, priority=0)
            requeued.append(job.pk)
    with transaction.atomic():
        stale = (Job.objects.select_for_update(skip_locked=True)
                 .filter(status=Job.Status.RUNNING, heartbeat_at__lt=_stale_before()))
        for job in stale:
            silent_s = (timezone.now() - job.heartbeat_at).total_seconds()
            if not _lose_worker(job):
                continue
            job.status = Job.Status.QUEUED
            job.message = f"requeued: its worker stopped answering {silent_s:.0f} s ago"
            job.save(update_fields=["worker_losses", "status", "message"])
            job_enqueue(job=job, priority=0)  # it waited its turn once already
            requeued.append(job.pk)
            logger.warning("job %s requeued: no heartbeat for %.0f s (worker lost %d time(s))",
                           job.pk, silent_s, job.worker_losses)
    return requeued


def job_start(*, job_id: int) -> Job | None:
    """Move a job to running; None when it is finished, or running on a worker that still beats."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s does not exist; nothing to do", job_id)
            return None
        if job.is_finished:
            logger.info("job %s is already %s; nothing to do", job_id, job.status)
            return None
        if job.status == Job.Status.RUNNING:
            if job.heartbeat_at and job.heartbeat_at >= _stale_before() and not _redelivered():
                # A second copy of a task whose worker is alive and on it.
                logger.info("job %s is running on a live worker; not taking it twice", job_id)
                return None
            # Its worker died: its heartbeat stopped, or the broker hands the task back because the
            # worker's connection or process is gone (RabbitMQ does at once, Redis after its
            # visibility timeout). Should that worker be alive after all, its next write finds the
            # attempt taken over and it stops (JobLost).
            if not _lose_worker(job):
                return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or timezone.now()
        job.heartbeat_at = timezone.now()
        job.error = ""
        job.worker = current_worker()
        if job.attempts > 1:
            job.message = f"resumed (attempt {job.attempts})"
        job.save(update_fields=["status", "attempts", "worker_losses", "started_at", "heartbeat_at", "error",
                                "message", "worker"])
        return job


def _task_request():
    """The Celery request of the task running this job (None outside a worker)."""
    from celery import current_task

    return getattr(current_task, "request", None)


def _redelivered() -> bool:
    """Whether the broker marked the task being run as handed back by a consumer that went away."""
    return bool((getattr(_task_request(), "delivery_info", None) or {}).get("redelivered"))


def current_worker() -> str:
    """The node name of the Celery worker running this task ("" outside a worker)."""
    return getattr(_task_request(), "hostname", None) or ""


def _record_adapter_loads(job: Job) -> None:
    """After a gpu job: this worker's engine's adapter loads so far (only where an engine lives)."""
    import sys

    engine = sys.modules.get("generation.engine")
    if engine is None or not job.worker:
        return
    from .fleet import fleet_worker_seen

    try:
        fleet_worker_seen(hostname=job.worker, adapter_loads=engine.Engine.adapter_loads)
    except DatabaseError as exc:
        logger.warning("adapter loads of %s not recorded: %s", job.worker, exc)


class _Heartbeat(threading.Thread):
    """Writes the job's heartbeat every JOB_HEARTBEAT_INTERVAL_S while its work runs, however long
    one step of that work takes (model loads, a long denoising step)."""

    def __init__(self, job: Job):
        super().__init__(name=f"job-{job.pk}-heartbeat", daemon=True)
        self.job_id, self.attempt = job.pk, job.attempts
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_INTERVAL_S):
                try:
                    Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING, attempts=self.attempt).update(
                        heartbeat_at=timezone.now())
                except DatabaseError as exc:  # the next beat tries again; the watchdog allows several
                    logger.warning("job %s heartbeat not written: %s", self.job_id, exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def job_lock_mine(*, job: Job) -> None:
    """Inside a transaction: lock the job's row, and raise unless this attempt still owns it
    (JobCancelled when it was cancelled, JobLost when another worker took it over)."""
    row = Job.objects.select_for_update().filter(pk=job.pk).values("status", "attempts").first()
    if row and row["status"] == Job.Status.RUNNING and row["attempts"] == job.attempts:
        return
    if row and row["attempts"] != job.attempts:
        raise JobLost(f"job {job.pk} was taken over by another worker")
    raise JobCancelled(f"job {job.pk} was cancelled")


def job_finish(*, job: Job, status: str, message: str = "", error: str = "", result: dict | None = None) -> bool:
    """Record the outcome unless the job was cancelled meanwhile; True when it was recorded."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "message": message[:500], "error": error}
    if status == Job.Status.SUCCEEDED:
        fields["progress"] = 1.0
    if result is not None:
        fields["result"] = result
    recorded = bool(Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(**fields))
    if recorded:
        webhook_job_finished(job)
    return recorded


def job_fail(*, job_id: int, error: str) -> None:
    if Job.objects.filter(pk=job_id, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
            status=Job.Status.FAILED, error=error[:5000], message="failed", finished_at=timezone.now()):
        webhook_job_finished(Job(pk=job_id))


def job_run(*, job_id: int, work: Callable[[JobHandle], dict | None], done_message: str = "done") -> None:
    """Run ``work`` for a job, moving it through its states. Safe to call twice for one job.

    Transient storage or database errors propagate so that the task retries with backoff; any
    other error fails the job with its message; a cancellation ends quietly.
    """
    job = job_start(job_id=job_id)
    if job is None:
        return
    handle = JobHandle(job)
    heartbeat = _Heartbeat(job)
    heartbeat.start()
    try:
        result = work(handle)
    except JobCancelled:
        logger.info("job %s cancelled", job_id)
        return
    except JobLost:
        logger.warning("job %s was taken over by another worker (this one's heartbeat was lost); stopping", job_id)
        return
    except TRANSIENT_ERRORS as exc:
        # Back to the queue: the task's retry (with backoff) takes it up as a fresh attempt.
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=job.attempts).update(
            status=Job.Status.QUEUED, message=f"retrying after a transient error: {exc}"[:500])
        raise
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        job_finish(job=job, status=Job.Status.FAILED, message="failed", error=f"{type(exc).__name__}: {exc}")
        return
    finally:
        heartbeat.stop()
        _record_adapter_loads(job)
    job_finish(job=job, status=Job.Status.SUCCEEDED, message=done_message, result=result or {})

