"""Jobs: a real worker moves one through its states and cancels it midway; the runner is safe
to call twice, counts attempts, records errors and hands transient ones to the retry."""
import time

import pytest

from campaigns import services
from campaigns.models import Job
from tests import factories
from tests.helpers import assert_error, wait_for
from tests.worker_tasks import progress_job_start

pytestmark = pytest.mark.django_db


@pytest.mark.worker
def test_a_job_runs_on_a_real_worker(worker, org):
    job = progress_job_start(organization=org, steps=4, delay=0.2)
    seen = set()

    def finished():
        job.refresh_from_db()
        seen.add(round(job.progress, 2))
        return job.is_finished

    wait_for(finished, interval=0.05)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.progress == 1.0 and job.attempts == 1
    assert job.started_at and job.finished_at and job.started_at <= job.finished_at
    assert any(0 < p < 1 for p in seen), seen  # progress moved through the middle


@pytest.mark.worker
def test_running_job_cancelled_stops(worker, org, manage_client):
    job = progress_job_start(organization=org, steps=50, delay=0.2)
    wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING)
    response = manage_client.post(f"/api/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 202
    assert response.json()["job"]["status"] == "cancelled"
    time.sleep(0.6)  # the worker notices at its next progress report and stops
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.progress < 0.5
    assert_error(manage_client.post(f"/api/v1/jobs/{job.pk}/cancel"), 409, "job_finished")


def test_running_a_finished_job_again_does_nothing(org):
    job = factories.JobFactory(organization=org, status=Job.Status.SUCCEEDED, progress=1.0)
    calls = []
    services.job_run(job_id=job.pk, work=lambda handle: calls.append(1))
    assert calls == []


def test_a_redelivered_job_counts_its_attempts(org):
    job = factories.JobFactory(organization=org, status=Job.Status.RUNNING, attempts=1)
    services.job_run(job_id=job.pk, work=lambda handle: {"ok": True})
    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == (Job.Status.SUCCEEDED, 2, {"ok": True})


def test_a_failing_job_records_its_error(org):
    job = factories.JobFactory(organization=org)

    def broken(handle):
        raise ValueError("the model folder is missing")

    services.job_run(job_id=job.pk, work=broken)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "the model folder is missing" in job.error


def test_a_transient_error_is_raised_for_retry(org):
    from botocore.exceptions import EndpointConnectionError

    job = factories.JobFactory(organization=org)

    def flaky(handle):
        raise EndpointConnectionError(endpoint_url="http://s3")

    with pytest.raises(EndpointConnectionError):
        services.job_run(job_id=job.pk, work=flaky)
    job.refresh_from_db()
    # Back in the queue until the task's retry takes it up as the next attempt.
    assert job.status == Job.Status.QUEUED and "retrying" in job.message and job.attempts == 1
    from campaigns.services.jobs import job_start

    assert job_start(job_id=job.pk).attempts == 2
