"""The GPU fleet's rules at request time: what one job may cost, how many one organization may
hold, and in which order the gpu queue hands jobs out.

- A job's compute budget: pixels x frames x clips x denoising steps (GENERATION_MAX_JOB_WORK),
  and the host memory one batch of clips needs once decoded (GENERATION_MAX_BATCH_MEMORY_GB: a
  segment's variants are generated and decoded together, as float32 RGB frames). Past either, the
  request is a 400 that names the limit and the request's own figure.
- Per organization: at most ORG_MAX_GPU_JOBS gpu jobs queued or running; past it, 429.
- Fair dispatch: a gpu job is sent with a priority that counts the organization's gpu jobs
  already queued or running (0 = first, up to 9), and the Redis transport serves lower numbers
  first (CELERY_BROKER_TRANSPORT_OPTIONS["priority_steps"]). An organization with 20 jobs
  queued holds priorities 0..9; another organization's first job gets 0 and is next as soon as
  a gpu worker is free: it waits at most one job, not twenty.
- Adapter-affine routing (`gpu_job_route`, below): a brand's jobs go to the worker that already
  holds its LoRA adapter, without starving anything.
"""
from django.conf import settings

from campaigns.errors import OverBudget, TooManyJobs
from campaigns.models import FleetWorker, Job, LoraAdapter, Organization

GPU_KINDS = (Job.Kind.TRAIN_LORA, Job.Kind.GENERATE_CLIPS, Job.Kind.EDIT_CLIP, Job.Kind.RESCENE_CAMPAIGN)
LOWEST_PRIORITY = 9
_ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)


def gpu_jobs_active(organization: Organization) -> int:
    return Job.objects.filter(organization=organization, kind__in=GPU_KINDS, status__in=_ACTIVE).count()


def gpu_job_admit(*, organization: Organization, kind: str) -> None:
    """Refuse a new gpu job when the organization already holds ORG_MAX_GPU_JOBS of them."""
    if kind not in GPU_KINDS:
        return
    # One admission at a time per organization: two requests cannot both take the last place.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    limit = settings.ORG_MAX_GPU_JOBS
    active = gpu_jobs_active(organization)
    if active >= limit:
        raise TooManyJobs(
            f"this organization already has {active} gpu jobs queued or running; the limit is {limit}. "
            "Wait for some to finish, or cancel one.",
            details={"active": active, "limit": limit},
        )


def gpu_job_priority(job: Job) -> int:
    """0 for an organization's first active gpu job, one more per job it already has ahead, up to 9."""
    ahead = (Job.objects.filter(organization_id=job.organization_id, kind__in=GPU_KINDS, status__in=_ACTIVE)
             .exclude(pk=job.pk).count())
    return min(ahead, LOWEST_PRIORITY)


def compute_budget_check(*, width: int, height: int, num_frames: int, clips: int, batch: int, steps: int) -> dict:
    """Refuse a job past the per-job budget; returns the request's figures (stored in its params)."""
    work = width * height * num_frames * clips * steps
    batch_gb = batch * num_frames * width * height * 3 * 4 / 1e9
    size = f"{clips} clip(s) of {width}×{height} × {num_frames} frames at {steps} steps"
    if work > settings.GENERATION_MAX_JOB_WORK:
        raise OverBudget(
            f"this job needs {work:.3g} pixel-frame-steps of compute ({size}); the limit per job is "
            f"{settings.GENERATION_MAX_JOB_WORK:.3g}. Ask for fewer segments, variants or steps, or a smaller size.",
            details={"limit": "GENERATION_MAX_JOB_WORK", "allowed": settings.GENERATION_MAX_JOB_WORK,
                     "requested": work},
        )
    if batch_gb > settings.GENERATION_MAX_BATCH_MEMORY_GB:
        raise OverBudget(
            f"one batch of this job ({batch} clip(s) of {width}×{height} × {num_frames} frames, generated and "
            f"decoded together) needs about {batch_gb:.1f} GB of worker memory; the limit is "
            f"{settings.GENERATION_MAX_BATCH_MEMORY_GB:g} GB. Ask for fewer variants, fewer frames or a smaller size.",
            details={"limit": "GENERATION_MAX_BATCH_MEMORY_GB", "allowed": settings.GENERATION_MAX_BATCH_MEMORY_GB,
                     "requested": round(batch_gb, 2)},
        )
    return {"work": work, "batch_memory_gb": round(batch_gb, 3)}


# --- Adapter-affine routing ----------------------------------------------------------------------
# A brand's generation or edit goes to the worker that ran the brand's last such job, through that
# worker's own queue (Celery's worker-direct queue), when that worker is alive, has probably kept
# the adapter (fewer other brands since than its engine holds), and has a short backlog of such
# jobs; otherwise to the shared gpu queue, which every gpu worker also serves. The watchdog sends
# a job waiting in a dead worker's own queue back to the shared one.

AFFINE_KINDS = (Job.Kind.GENERATE_CLIPS, Job.Kind.EDIT_CLIP, Job.Kind.RESCENE_CAMPAIGN)


def fleet_worker_alive_since():
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)


def fleet_worker_seen(*, hostname: str, gpu: bool | None = None, adapter_loads: int | None = None) -> None:
    """The watchdog's "I am alive" (and whether it serves the gpu queue; after a job, its
    engine's adapter loads so far)."""
    from django.utils import timezone

    defaults = {"seen_at": timezone.now()}
    if gpu is not None:
        defaults["gpu"] = gpu
    if adapter_loads is not None:
        defaults["adapter_loads"] = adapter_loads
    FleetWorker.objects.update_or_create(hostname=hostname, defaults=defaults)


def gpu_job_route(job: Job) -> str:
    """The worker whose own queue should get `job` for its brand's adapter; "" for the shared queue."""
    if not settings.GPU_ADAPTER_AFFINITY or job.kind not in AFFINE_KINDS or job.brand_id is None:
        return ""
    if not LoraAdapter.objects.filter(brand_id=job.brand_id, status=LoraAdapter.Status.SUCCEEDED).exists():
        return ""
    # The live worker that ran the brand's latest such job (a dead worker's adapters died with it);
    # a brand no live worker holds goes where an adapter slot is free (placement), if anywhere.
    alive = FleetWorker.objects.filter(seen_at__gte=fleet_worker_alive_since(), gpu=True).values("hostname")
    last = (Job.objects.filter(brand_id=job.brand_id, kind__in=AFFINE_KINDS, started_at__isnull=False,
                               worker__in=alive).exclude(pk=job.pk).order_by("-started_at").first())
    if last is None:
        return _place(job, alive)
    worker = last.worker
    # Evicted by now? The engine keeps GENERATION_MAX_ADAPTERS adapters, least recently used first out.
    other_brands = (Job.objects.filter(worker=worker, kind__in=AFFINE_KINDS, started_at__gt=last.started_at)
                    .exclude(brand_id=job.brand_id).values("brand_id").distinct().count())
    if other_brands >= settings.GENERATION_MAX_ADAPTERS:
        return ""
    return worker if _backlog(worker, job) < settings.GPU_AFFINITY_MAX_BACKLOG else ""


def _backlog(worker: str, job: Job) -> int:
    """Jobs waiting in the worker's own queue: past a short backlog, the shared queue is faster."""
    return Job.objects.filter(routed_to=worker, status=Job.Status.QUEUED).exclude(pk=job.pk).count()


def _place(job: Job, alive) -> str:
    """For a brand no live worker holds: the live gpu worker with the fewest brands of the last hour,
    when it still has a free adapter slot and a short backlog; else "" (the shared queue)."""
    from datetime import timedelta

    from django.utils import timezone

    since = timezone.now() - timedelta(hours=1)
    best, fewest = "", settings.GENERATION_MAX_ADAPTERS
    for worker in sorted(alive.values_list("hostname", flat=True)):
        brands = (Job.objects.filter(worker=worker, kind__in=AFFINE_KINDS, started_at__gte=since)
                  .exclude(brand_id=None).values("brand_id").distinct().count())
        # Brands already sent its way but not started count too: they will take slots.
        brands += (Job.objects.filter(routed_to=worker, status=Job.Status.QUEUED).exclude(pk=job.pk)
                   .exclude(brand_id=job.brand_id).values("brand_id").distinct().count())
        if brands < fewest and _backlog(worker, job) < settings.GPU_AFFINITY_MAX_BACKLOG:
            best, fewest = worker, brands
    return best
