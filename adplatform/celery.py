"""The Celery app: configuration from Django settings (CELERY_*), task discovery, the job watchdog.

Queues: `gpu` (model work: generation, edits, LoRA training; workers with a GPU, concurrency 1,
prefetch 1) and `cpu` (everything else); a task's name starts with its queue (CELERY_TASK_ROUTES).
Every worker also serves its own queue (CELERY_WORKER_DIRECT), where adapter-affine routing sends
a brand's jobs (campaigns.services.fleet).
"""
import os

from celery import Celery
from celery.signals import worker_ready

from adplatform import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings")


app = Celery("adplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logs.connect_celery(app)  # JSON lines with task and job ids in workers


@worker_ready.connect
def _start_job_watchdog(sender, **_) -> None:
    """Every worker watches for jobs whose worker died (campaigns.watchdog)."""
    from campaigns.watchdog import watchdog_start

    queues = {queue.name for queue in sender.task_consumer.queues} if sender.task_consumer else set()
    watchdog_start(sender.hostname, gpu="gpu" in queues)
