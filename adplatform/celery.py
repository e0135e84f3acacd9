"""The Celery app: configuration from Django settings (CELERY_*), the queues, task discovery."""
import os
from enum import StrEnum

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings")
# No model hub is reachable anywhere this runs; fail fast instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Queue(StrEnum):
    # Model work (generation, LoRA training): workers with a GPU, concurrency 1, prefetch 1.
    GPU = "gpu"
    # Everything else (profile embeddings, segment assignment, housekeeping): plain CPU workers.
    CPU = "cpu"


app = Celery("adplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
