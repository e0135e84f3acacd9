"""The environment a benchmark runs the platform's processes in: production settings (debug off)
on a database of the benchmark's own, local files, an in-memory cache, logs kept quiet."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_environment(media: Path, database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without its Django settings, plus the benchmark's; ``extra``
    overrides (``CELERY_BROKER_URL``, ``DJANGO_ALLOWED_HOSTS``, ``WORK_DIR``…)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "adplatform.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media),
        "AWS_STORAGE_BUCKET_NAME": "",
        "CACHE_URL": "locmemcache://bench",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env
