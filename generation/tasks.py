"""Celery tasks: thin, named after their service, take a job id, and are safe to run twice.

Each task's name starts with its queue (``gpu.`` or ``cpu.``; routed in settings). Heavy modules
(torch, diffusers) are imported inside the services these call, never at module import, so the
web process can load this module (Celery's autodiscovery does) without importing torch.
"""
from celery import Task, shared_task

from campaigns import services
from campaigns.services.jobs import TRANSIENT_ERRORS


class JobTask(Task):
    """Marks the job failed when Celery gives up on it (retries exhausted, time limit hit)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            services.job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")


# Shared by every job task: late acks + reject on worker loss = a dead worker's job is redelivered;
# transient storage/database errors retry with exponential backoff.
JOB_TASK_OPTIONS = dict(
    base=JobTask,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)


@shared_task(
    name="cpu.job_selftest",
    # A self-test is a few seconds of sleeping; anything longer means the worker is stuck.
    soft_time_limit=60,
    time_limit=90,
    **JOB_TASK_OPTIONS,
)
def job_selftest(job_id: int) -> None:
    services.job_run(job_id=job_id, work=services.job_selftest)
