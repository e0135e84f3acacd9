"""The GPU fleet: a dead worker's job resumes on a live one, with the production settings.

Workers here are real `celery worker` processes (tests.helpers) on the real Redis broker, with
the broker's visibility timeout at its production value (hours): the live worker's watchdog,
not the broker, hands a dead worker's job over, once the job's heartbeat is a minute old.
"""
import itertools
import signal
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Clip, FleetWorker, Job
from campaigns.services.jobs import JobHandle, JobLost, job_finish, job_start, jobs_requeue_stale
from tests import factories
from tests.conftest import bucket_keys
from tests.helpers import broker_purge, finish_on_a_new_worker, start_worker_process, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
_names = itertools.count()


def _running(job: Job, *, silent_s: float, worker_losses: int = 0) -> Job:
    """The job as a worker left it when it last beat `silent_s` seconds ago."""
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=worker_losses + 1,
                                         worker_losses=worker_losses,
                                         heartbeat_at=timezone.now() - timedelta(seconds=silent_s))
    return Job.objects.get(pk=job.pk)


def test_a_job_whose_worker_beats_is_not_taken_twice(org):
    job = _running(factories.JobFactory(organization=org), silent_s=5)
    assert job_start(job_id=job.pk) is None  # a second delivery of the same task
    assert jobs_requeue_stale() == []
    job.refresh_from_db()
    assert (job.status, job.attempts, job.worker_losses) == (Job.Status.RUNNING, 1, 0)


def test_a_silent_job_is_requeued_and_its_old_worker_cannot_write(org):
    job = _running(factories.JobFactory(organization=org),
                   silent_s=settings.JOB_HEARTBEAT_TIMEOUT_S + 1)
    old_attempt = Job.objects.get(pk=job.pk)
    assert jobs_requeue_stale() == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.worker_losses) == (Job.Status.QUEUED, 1)
    assert "stopped answering" in job.message
    taken = job_start(job_id=job.pk)
    assert taken is not None and taken.attempts == 2
    # The presumed-dead worker, alive after all, can neither report nor finish over the new attempt.
    assert not job_finish(job=old_attempt, status=Job.Status.SUCCEEDED)
    with pytest.raises(JobLost):
        JobHandle(old_attempt).progress(0.5, force=True)


def test_a_job_that_kills_its_workers_fails_saying_why(org, manage_client, client):
    campaign = factories.CampaignFactory(organization=org, width=1920, height=1920, num_frames=257)
    job = _running(factories.JobFactory(organization=org, kind=Job.Kind.GENERATE_CLIPS, campaign=campaign),
                   silent_s=settings.JOB_HEARTBEAT_TIMEOUT_S + 1, worker_losses=settings.JOB_MAX_ATTEMPTS - 1)
    assert jobs_requeue_stale() == []
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith(f"the worker died {settings.JOB_MAX_ATTEMPTS} times on this job: likely out of "
                                f"memory at 1920×1920 × 257 frames")
    body = manage_client.get(f"/api/v1/jobs/{job.pk}").json()
    assert body["status"] == "failed" and "worker died 3 times" in body["error"]
    # The dashboard's job list says it too.
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, organization=org)
    client.force_login(user)
    page = client.get(reverse("dashboard:job-list")).content.decode()
    assert "the worker died 3 times on this job: likely out of memory at 1920×1920 × 257 frames" in page
    # A redelivered task finds it failed and leaves it.
    assert job_start(job_id=job.pk) is None


@pytest.mark.worker
def test_a_killed_generation_worker_leaves_every_clip_once(org, s3_endpoint, s3_client, tmp_path):
    broker_purge()
    brand = services.brand_create(organization=org, name="Fleet", style_notes="clean")
    campaign = services.campaign_create(
        organization=org, brand=brand, name="Six", brief="Trail shoes", num_frames=9, width=32, height=32,
        segments=[{"name": n, "attributes": {"interests": [n]}} for n in ("hiking", "running", "coffee")])
    job = services.campaign_generate(campaign=campaign, steps=20, variants_per_segment=2)

    # One clip per batch (a worker with little memory), so that the kill falls between two clips.
    first = start_worker_process(s3_endpoint, tmp_path / "w1", GENERATION_MICRO_BATCH="1")
    try:
        wait_for(lambda: Clip.objects.filter(job=job).exists(), timeout=300, interval=0.05)
    except AssertionError:
        raise AssertionError(stop(first)[-4000:]) from None
    log_first = stop(first, signal.SIGKILL)  # the whole process group, mid-job
    killed_at = Job.objects.get(pk=job.pk)
    made_before = Clip.objects.filter(job=job).count()
    assert killed_at.status == Job.Status.RUNNING and 0 < made_before < 6, (made_before, log_first[-3000:])

    log = finish_on_a_new_worker(job, s3_endpoint, tmp_path / "w2", GENERATION_MICRO_BATCH="1")
    assert job.status == Job.Status.SUCCEEDED, job.error + log[-3000:]
    assert (job.attempts, job.worker_losses) == (2, 1)
    clips = Clip.objects.filter(job=job)
    assert clips.count() == 6 and len({(c.segment_id, c.variant) for c in clips}) == 6
    assert job.result["made_this_attempt"] == 6 - made_before  # the clips of the dead attempt were kept
    stored = {k for k in bucket_keys(s3_client) if f"campaigns/{campaign.pk}/clips/" in k}
    assert stored == {c.video.name for c in clips} | {c.poster.name for c in clips}  # no orphans


@pytest.mark.worker
def test_the_embedded_defaults_worker_recovers_a_dead_workers_job_too(org, s3_endpoint, tmp_path):
    """The filesystem broker (make demo's) forgets a message once a worker has taken it: the
    watchdog of the next worker is what brings the job back."""
    from kombu import Connection

    from adplatform.celery import app

    broker = {"CELERY_BROKER_URL": "filesystem://", "BROKER_DIR": str(tmp_path / "broker"),
              "GENERATION_MICRO_BATCH": "1"}
    folder = str(tmp_path / "broker" / "queue")
    first = start_worker_process(s3_endpoint, tmp_path / "w1", **broker)
    try:
        wait_for(lambda: FleetWorker.objects.exists(), timeout=180, interval=0.2)
        brand = services.brand_create(organization=org, name="Embedded", style_notes="clean")
        campaign = services.campaign_create(
            organization=org, brand=brand, name="Local", brief="Trail shoes", num_frames=9, width=32, height=32,
            segments=[{"name": n, "attributes": {}, "setting": "a white studio"} for n in ("a", "b", "c")])
        job = services.campaign_generate(campaign=campaign, steps=20, variants_per_segment=2)
        options = {"data_folder_in": folder, "data_folder_out": folder, "store_processed": False}
        with Connection("filesystem://", transport_options=options) as connection:
            app.send_task("gpu.campaign_generate", args=[job.pk], connection=connection)
        wait_for(lambda: Clip.objects.filter(job=job).exists(), timeout=300, interval=0.05)
    finally:
        stop(first, signal.SIGKILL)
    assert Clip.objects.filter(job=job).count() < 6
    second = start_worker_process(s3_endpoint, tmp_path / "w2", **broker)
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=400, interval=0.5)
    finally:
        log = stop(second)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and (job.attempts, job.worker_losses) == (2, 1), job.error + log[-3000:]
    assert Clip.objects.filter(job=job).count() == 6


# --- budgets and per-organization limits ------------------------------------------------------

def _campaign(org, segments: int = 1, **fields):
    brand = services.brand_create(organization=org, name=f"Brand {next(_names)}", style_notes="clean")
    return services.campaign_create(organization=org, brand=brand, name="C", brief="Trail shoes",
                                    segments=[{"name": f"S{i}", "attributes": {}} for i in range(segments)], **fields)


def test_a_job_past_its_compute_budget_is_a_400_that_names_the_limit(org, manage_client):
    campaign = _campaign(org, segments=32, width=1920, height=1920, num_frames=257)
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/generate",
                                  {"variants_per_segment": 8, "steps": 50}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "over_budget"
    assert "GENERATION_MAX_JOB_WORK" == error["details"]["limit"]
    assert error["details"]["requested"] == 1920 * 1920 * 257 * 32 * 8 * 50
    assert "the limit per job is 1e+12" in error["message"]
    assert "256 clip(s) of 1920×1920 × 257 frames" in error["message"]
    assert not Job.objects.filter(campaign=campaign).exists()
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_one_batch_past_the_worker_memory_is_a_400(org, manage_client):
    campaign = _campaign(org, segments=1, width=1920, height=1920, num_frames=257)
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/generate",
                                  {"variants_per_segment": 8, "steps": 1}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["limit"] == "GENERATION_MAX_BATCH_MEMORY_GB"
    assert "about 91.0 GB of worker memory; the limit is 16 GB" in error["message"]


def test_an_organization_past_its_gpu_job_limit_gets_429(org, other_org, manage_client):
    factories.JobFactory.create_batch(settings.ORG_MAX_GPU_JOBS, organization=org, kind=Job.Kind.GENERATE_CLIPS,
                                      status=Job.Status.QUEUED)
    factories.JobFactory(organization=org, kind=Job.Kind.GENERATE_CLIPS, status=Job.Status.SUCCEEDED)  # not counted
    campaign = _campaign(org, num_frames=9, width=32, height=32)
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/generate", {"steps": 1}, format="json")
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "too_many_jobs" and error["details"] == {"active": 20, "limit": 20}
    assert "already has 20 gpu jobs queued or running; the limit is 20" in error["message"]
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not campaign.jobs.exists()
    # Another organization is not held back by this one's queue.
    other = _campaign(other_org, num_frames=9, width=32, height=32)
    assert services.campaign_generate(campaign=other, steps=1, enqueue=False).status == Job.Status.QUEUED


# --- fair dispatch -------------------------------------------------------------------------------

@pytest.mark.worker
def test_another_organizations_job_waits_for_one_job_not_the_whole_queue(worker, org, other_org):
    """A queues 8 generation jobs; B's one job, sent after them all, runs next after A's current one."""
    a_jobs = [services.campaign_generate(campaign=_campaign(org, num_frames=9, width=32, height=32), steps=8)
              for _ in range(8)]
    b_job = services.campaign_generate(campaign=_campaign(other_org, num_frames=9, width=32, height=32), steps=8)
    wait_for(lambda: all(Job.objects.get(pk=j.pk).is_finished for j in [*a_jobs, b_job]), timeout=600, interval=0.5)
    jobs = {j.pk: Job.objects.get(pk=j.pk) for j in [*a_jobs, b_job]}
    assert all(j.status == Job.Status.SUCCEEDED for j in jobs.values()), [j.error for j in jobs.values()]
    b = jobs[b_job.pk]
    # One worker, and every job sent before any started: B's job, sent last, is second to start,
    # right after A's first (the only one of A's with B's priority, sent before it).
    a_before_b = sorted(j.started_at for j in (jobs[a.pk] for a in a_jobs) if j.started_at < b.started_at)
    assert len(a_before_b) == 1, a_before_b
    first_a = min((jobs[a.pk] for a in a_jobs), key=lambda j: j.started_at)
    assert b.started_at >= first_a.finished_at


# --- adapter-affine routing ----------------------------------------------------------------------

def _silent_for(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def _ran(brand, worker: str, *, minutes_ago: float) -> Job:
    return factories.JobFactory(organization=brand.organization, brand=brand, kind=Job.Kind.GENERATE_CLIPS,
                                status=Job.Status.SUCCEEDED, worker=worker,
                                started_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_a_brands_job_goes_to_the_worker_that_holds_its_adapter(org):
    from campaigns.services.fleet import gpu_job_route

    brand, other = factories.BrandFactory(organization=org), factories.BrandFactory(organization=org)
    factories.LoraAdapterFactory(brand=brand)
    w1, w2 = factories.FleetWorkerFactory(), factories.FleetWorkerFactory()
    _ran(brand, w1.hostname, minutes_ago=5)
    _ran(other, w2.hostname, minutes_ago=4)
    job = factories.JobFactory(organization=org, brand=brand, kind=Job.Kind.GENERATE_CLIPS)
    assert gpu_job_route(job) == w1.hostname
    # A cpu worker is never sent a gpu job, even one that once ran the brand's job.
    FleetWorker.objects.filter(pk=w1.pk).update(gpu=False)
    assert gpu_job_route(job) != w1.hostname
    FleetWorker.objects.filter(pk=w1.pk).update(gpu=True)
    # No LoRA, no affinity: the other brand's jobs take the shared queue.
    assert gpu_job_route(factories.JobFactory(organization=org, brand=other, kind=Job.Kind.GENERATE_CLIPS)) == ""
    # Training makes an adapter, it does not use one.
    assert gpu_job_route(factories.JobFactory(organization=org, brand=brand, kind=Job.Kind.TRAIN_LORA)) == ""

    # A backlog on w1 sends the next one to the shared queue: nothing waits behind a favourite.
    factories.JobFactory.create_batch(settings.GPU_AFFINITY_MAX_BACKLOG, organization=org, brand=brand,
                                      kind=Job.Kind.GENERATE_CLIPS, routed_to=w1.hostname)
    assert gpu_job_route(job) == ""


def test_a_brand_no_worker_holds_goes_where_an_adapter_slot_is_free(org):
    from campaigns.services.fleet import gpu_job_route

    busy, free = factories.FleetWorkerFactory(), factories.FleetWorkerFactory()
    for _ in range(settings.GENERATION_MAX_ADAPTERS):
        _ran(factories.BrandFactory(organization=org), busy.hostname, minutes_ago=10)
    _ran(factories.BrandFactory(organization=org), free.hostname, minutes_ago=10)
    brand = factories.BrandFactory(organization=org)
    factories.LoraAdapterFactory(brand=brand)
    job = factories.JobFactory(organization=org, brand=brand, kind=Job.Kind.GENERATE_CLIPS)
    assert gpu_job_route(job) == free.hostname
    for _ in range(settings.GENERATION_MAX_ADAPTERS - 1):  # now full too: the shared queue
        _ran(factories.BrandFactory(organization=org), free.hostname, minutes_ago=5)
    assert gpu_job_route(job) == ""


def test_no_affinity_to_a_dead_worker_or_an_evicted_adapter(org):
    from campaigns.services.fleet import gpu_job_route

    brand = factories.BrandFactory(organization=org)
    factories.LoraAdapterFactory(brand=brand)
    dead = factories.FleetWorkerFactory(seen_at=_silent_for(settings.JOB_HEARTBEAT_TIMEOUT_S + 1))
    _ran(brand, dead.hostname, minutes_ago=1)
    job = factories.JobFactory(organization=org, brand=brand, kind=Job.Kind.GENERATE_CLIPS)
    assert gpu_job_route(job) == ""

    busy = factories.FleetWorkerFactory()
    _ran(brand, busy.hostname, minutes_ago=30)
    assert gpu_job_route(job) == busy.hostname
    for i in range(settings.GENERATION_MAX_ADAPTERS):  # as many other brands since: evicted
        _ran(factories.BrandFactory(organization=org), busy.hostname, minutes_ago=20 - i)
    assert gpu_job_route(job) == ""


def test_a_job_waiting_for_a_dead_worker_goes_back_to_the_shared_queue(org):
    dead = factories.FleetWorkerFactory(seen_at=_silent_for(settings.JOB_HEARTBEAT_TIMEOUT_S + 1))
    alive = factories.FleetWorkerFactory()
    stranded = factories.JobFactory(organization=org, kind=Job.Kind.GENERATE_CLIPS, routed_to=dead.hostname)
    waiting = factories.JobFactory(organization=org, kind=Job.Kind.GENERATE_CLIPS, routed_to=alive.hostname)
    assert jobs_requeue_stale() == [stranded.pk]
    stranded.refresh_from_db(), waiting.refresh_from_db()
    assert (stranded.routed_to, waiting.routed_to) == ("", alive.hostname)
