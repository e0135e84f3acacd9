"""A job task that lives only in the test suite: it reports progress and sleeps, so tests can
watch a real worker move a job through its states (and cancel it midway) without any model.

Registered on the Celery app when this module is imported, which the in-process test worker
(tests.conftest.celery_test_worker) does before it starts; production code never sees it.
"""
import time

from adplatform.celery import app
from campaigns import services
from campaigns.models import Job
from generation.tasks import JOB_TASK_OPTIONS

TASK_NAME = "cpu.test_progress_job"


def _progress_only(handle) -> dict:
    steps, delay = int(handle.job.params["steps"]), float(handle.job.params["delay"])
    for step in range(1, steps + 1):
        time.sleep(delay)
        handle.progress(step / steps, f"step {step}/{steps}", force=True)
    return {"steps": steps}


@app.task(name=TASK_NAME, soft_time_limit=60, time_limit=90, **JOB_TASK_OPTIONS)
def progress_job(job_id: int) -> None:
    services.job_run(job_id=job_id, work=_progress_only)


def progress_job_start(*, organization, steps: int, delay: float) -> Job:
    """A queued job of a real kind, sent to the test task above once the transaction commits."""
    from campaigns.services.jobs import job_enqueue_task

    job = services.job_create(organization=organization, kind=Job.Kind.SEGMENT_PROFILES,
                              params={"steps": steps, "delay": delay}, enqueue=False)
    job_enqueue_task(task_name=TASK_NAME, args=[job.pk])
    return job
