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


# Shared by every job task: late acks + reject on worker loss, so a task is never lost with its
# worker (the watchdog requeues the job within about 90 s; the broker's own redelivery, hours
# later, finds it done); transient storage/database errors retry with exponential backoff.
JOB_TASK_OPTIONS = dict(
    base=JobTask,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    # With jitter, ten tries wait about 8 minutes in all (up to 17): long enough for an S3 or
    # database blip, short enough that a real outage fails the job instead of hiding it.
    max_retries=10,
)

# Every gpu job (generation, edits, re-scene, LoRA training) gets the same bound: on a real
# checkpoint each is minutes of GPU per clip or hours of training. It must stay under the broker's
# visibility timeout (4 h), or Redis would hand a running task to a second worker
# (tests/test_configuration.py checks every task against it).
GPU_JOB_TIME_LIMITS = {"soft_time_limit": 3 * 3600, "time_limit": 3 * 3600 + 300}


@shared_task(
    name="gpu.campaign_generate",
    # A campaign is segments x variants clips; on a real checkpoint each is minutes of GPU.
    **GPU_JOB_TIME_LIMITS,
    **JOB_TASK_OPTIONS,
)
def campaign_generate(job_id: int) -> None:
    from campaigns.services.generation import campaign_generate_run

    services.job_run(job_id=job_id, work=campaign_generate_run, done_message="clips ready for review")


@shared_task(
    name="gpu.clip_edit",
    # Variants of one edited clip; the same bound as generation (minutes of GPU per clip on a real checkpoint).
    **GPU_JOB_TIME_LIMITS,
    **JOB_TASK_OPTIONS,
)
def clip_edit(job_id: int) -> None:
    from campaigns.services.editing import clip_edit_run

    services.job_run(job_id=job_id, work=clip_edit_run, done_message="edited clips ready for review")


@shared_task(
    name="gpu.campaign_rescene",
    # One re-scened clip per segment x variant: as long as a campaign's generation.
    **GPU_JOB_TIME_LIMITS,
    **JOB_TASK_OPTIONS,
)
def campaign_rescene(job_id: int) -> None:
    from campaigns.services.editing import campaign_rescene_run

    services.job_run(job_id=job_id, work=campaign_rescene_run, done_message="re-scened clips ready for review")


@shared_task(
    name="gpu.lora_train",
    # Brand LoRAs run up to a few thousand steps; must stay under the broker's visibility timeout.
    **GPU_JOB_TIME_LIMITS,
    **JOB_TASK_OPTIONS,
)
def lora_train(job_id: int) -> None:
    from campaigns.services.training import lora_train_run

    services.job_run(job_id=job_id, work=lora_train_run, done_message="LoRA ready")


# Personalization. Embedding a profile or a campaign's segments is not a Job (there is no row to
# mark failed), so these use the same delivery guarantees without JobTask.
EMBED_TASK_OPTIONS = {name: value for name, value in JOB_TASK_OPTIONS.items() if name != "base"}


@shared_task(
    name="cpu.profile_embed",
    # One short text through MiniLM: milliseconds, plus about 3 s to load the model on a cold worker.
    soft_time_limit=120,
    time_limit=180,
    **EMBED_TASK_OPTIONS,
)
def profile_embed(profile_id: int) -> None:
    from campaigns.services.profiles import profile_embed as embed

    embed(profile_id=profile_id)


@shared_task(
    name="cpu.segments_embed",
    # A few segment texts, then every embedded profile of the organization placed (vector maths).
    soft_time_limit=30 * 60,
    time_limit=30 * 60 + 60,
    **EMBED_TASK_OPTIONS,
)
def segments_embed(campaign_id: int) -> None:
    from campaigns.services.segmentation import segments_embed as embed

    embed(campaign_id=campaign_id)


@shared_task(
    name="cpu.segments_refresh",
    # After an erasure: a segment text or two embedded, settings suggested, viewers placed again.
    soft_time_limit=30 * 60,
    time_limit=30 * 60 + 60,
    **EMBED_TASK_OPTIONS,
)
def segments_refresh(campaign_id: int) -> None:
    from campaigns.services.segmentation import segments_refresh as refresh

    refresh(campaign_id=campaign_id)


@shared_task(
    name="cpu.campaign_segment",
    # Embeds the organization's not-yet-embedded profiles (~1,000 a second on 2 cores) and runs k-means.
    soft_time_limit=2 * 3600,
    time_limit=2 * 3600 + 300,
    **JOB_TASK_OPTIONS,
)
def campaign_segment(job_id: int) -> None:
    from campaigns.services.segmentation import campaign_segment_run

    services.job_run(job_id=job_id, work=campaign_segment_run, done_message="segments ready")


@shared_task(
    name="cpu.recipients_import",
    # 10,000 rows take under a minute on 2 cores (benchmarks/recipients.py); RECIPIENTS_MAX_ROWS
    # (100,000) about ten, with room for a busy worker.
    soft_time_limit=30 * 60,
    time_limit=30 * 60 + 60,
    **JOB_TASK_OPTIONS,
)
def recipients_import(job_id: int) -> None:
    from campaigns.services.recipients import recipients_import_run

    services.job_run(job_id=job_id, work=recipients_import_run, done_message="recipients placed")


# Webhooks: not Jobs either. A failed attempt is rescheduled by the service itself (backoff, same
# webhook-id); these options only cover a worker that dies mid-attempt or a database hiccup.
@shared_task(
    name="cpu.webhook_deliver",
    # One POST with WEBHOOK_TIMEOUT (at most 30 s) plus a DNS lookup and two small writes.
    soft_time_limit=60,
    time_limit=90,
    **EMBED_TASK_OPTIONS,
)
def webhook_deliver(delivery_id: int) -> None:
    from campaigns.services.webhooks import webhook_deliver as deliver

    deliver(delivery_id=delivery_id)


@shared_task(
    name="cpu.webhook_deliver_due",
    # One query and a message per overdue delivery; run every minute by celery beat (settings).
    soft_time_limit=60,
    time_limit=90,
    **EMBED_TASK_OPTIONS,
)
def webhook_deliver_due() -> None:
    from campaigns.services.webhooks import webhook_deliver_due as deliver_due

    deliver_due()


# A brand clip's check (campaigns.services.asset_checks): not a Job; the asset's own status says
# how it went, and the workers' watchdog queues it again if a worker died on it.
@shared_task(
    name="cpu.asset_check",
    # Decoding at most ASSET_MAX_CLIP_PIXELS (10 s of 1080p): seconds to a minute on one core.
    soft_time_limit=10 * 60,
    time_limit=11 * 60,
    **EMBED_TASK_OPTIONS,
)
def asset_check(asset_id: int) -> None:
    from campaigns.services.asset_checks import asset_check as check

    check(asset_id=asset_id)
