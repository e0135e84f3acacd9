"""Settings for the test suite: the real parts on loopback unless the environment says otherwise.

PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 (db 15) by default; S3 is an
S3-compatible server that the test fixtures start on loopback (tests/conftest.py).
"""
import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/adplatform")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("CACHE_URL", "locmemcache://adplatform-test")

from .settings import *  # noqa: E402,F403
from .settings import BASE_DIR  # noqa: E402

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests
MODEL_CACHE_DIR = BASE_DIR / "var" / "test-models"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405

# Under pytest-xdist (`make test-fast` runs two processes) each process gets its own test database
# from pytest-django, and its own Redis database for the broker here (gw0: the configured one's
# number minus 1, gw1: minus 2, ...), so that one process's purge or queue-depth check never sees
# the other's messages. (kombu's `global_keyprefix` would be the lighter way, but its passive
# queue_declare looks for the unprefixed binding, so a prefixed queue reads as missing.)
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER.startswith("gw") and CELERY_BROKER_URL.startswith("redis"):  # noqa: F405
    from urllib.parse import urlsplit, urlunsplit

    _broker = urlsplit(CELERY_BROKER_URL)  # noqa: F405
    _db = int(_broker.path.strip("/") or 0) - 1 - int(_XDIST_WORKER[2:])
    CELERY_BROKER_URL = urlunsplit(_broker._replace(path=f"/{_db % 16}"))
