"""Faults a fleet meets, each against real worker processes with the production settings.

S3 away for 30 s in the middle of a generation, the broker restarting under a running job, and
one task delivered twice to two workers: each time the job finishes, its clips are there once,
and nothing is left in storage that no row points to.
"""
import shutil
import socket
import subprocess
import time

import pytest

from campaigns import services
from campaigns.models import Clip, FleetWorker, Job
from tests.conftest import bucket_keys
from tests.helpers import start_worker_process, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

SEGMENTS = ("hiking", "running", "coffee")


def _generation(org, name: str) -> Job:
    brand = services.brand_create(organization=org, name=name, style_notes="clean")
    campaign = services.campaign_create(
        organization=org, brand=brand, name=name, brief="Trail shoes", num_frames=9, width=32, height=32,
        segments=[{"name": n, "attributes": {"interests": [n]}, "setting": "a white studio"} for n in SEGMENTS])
    return services.campaign_generate(campaign=campaign, steps=20)


def _assert_clips_once(job: Job, s3_client, log: str = "") -> None:
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error + log[-3000:]
    clips = Clip.objects.filter(job=job)
    assert sorted(c.segment.name for c in clips) == sorted(SEGMENTS)
    stored = {k for k in bucket_keys(s3_client) if f"campaigns/{job.campaign_id}/clips/" in k}
    assert stored == {c.video.name for c in clips} | {c.poster.name for c in clips}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3_away_for_30_seconds_during_generation(org, s3_client, tmp_path):
    """The stores fail, the task retries with backoff (the job back in the queue meanwhile), and
    finishes once S3 answers again. The worker reaches S3 through a server of its own (the same
    buckets: moto keeps them per process), so that only the worker's S3 goes away."""
    from moto.server import ThreadedMotoServer

    from adplatform.celery import app

    app.control.purge()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    worker = start_worker_process(f"http://127.0.0.1:{port}", tmp_path / "w", GENERATION_MICRO_BATCH="1")
    try:
        job = _generation(org, "Outage")
        wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING, timeout=300, interval=0.05)
        server.stop()  # before the first clip is stored
        down_at = time.monotonic()
        wait_for(lambda: "transient error" in Job.objects.get(pk=job.pk).message, timeout=300, interval=0.2)
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=600, interval=0.5)
    finally:
        log = stop(worker)
        server.stop()
    _assert_clips_once(job, s3_client, log)
    assert Job.objects.get(pk=job.pk).attempts >= 2  # it was taken up again after the outage


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to run a broker of its own")
def test_the_broker_restarts_under_a_running_job(org, s3_endpoint, s3_client, tmp_path):
    """A broker of the test's own (Redis with its append-only file, as production runs it) is
    restarted while the worker generates: the worker reconnects, the job finishes once."""
    port = _free_port()
    data = tmp_path / "redis"
    data.mkdir()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
               "--dir", str(data)]
    broker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    worker = None
    try:
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0,
                 timeout=30)
        worker = start_worker_process(s3_endpoint, tmp_path / "w", CELERY_BROKER_URL=url, GENERATION_MICRO_BATCH="1")
        # A new broker knows its queues once a worker has declared them: send after the worker is up.
        wait_for(lambda: FleetWorker.objects.exists(), timeout=180, interval=0.2)
        from kombu import Connection

        from adplatform.celery import app

        job = _generation(org, "Restart")
        # The job was sent to the suite's broker: send it to this one too (the same message).
        with Connection(url) as connection:
            app.send_task("gpu.campaign_generate", args=[job.pk], connection=connection)
        wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING, timeout=300, interval=0.05)
        broker.terminate()
        broker.wait(timeout=30)
        time.sleep(3)
        broker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=600, interval=0.5)
    finally:
        log = stop(worker) if worker else ""
        broker.terminate()
        broker.wait(timeout=30)
    _assert_clips_once(job, s3_client, log)
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_one_task_delivered_twice_to_two_workers_runs_once(org, s3_endpoint, s3_client, tmp_path):
    from adplatform.celery import app

    app.control.purge()
    first = start_worker_process(s3_endpoint, tmp_path / "w1", GENERATION_MICRO_BATCH="1")
    second = start_worker_process(s3_endpoint, tmp_path / "w2", GENERATION_MICRO_BATCH="1")
    try:
        job = _generation(org, "Twice")
        app.send_task("gpu.campaign_generate", args=[job.pk])  # the same task again
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=600, interval=0.5)
        time.sleep(2)  # let the second delivery land on its worker too
    finally:
        log = stop(first) + stop(second)
    _assert_clips_once(job, s3_client, log)
    assert Job.objects.get(pk=job.pk).attempts == 1
    assert "running on a live worker; not taking it twice" in log or "already succeeded" in log
