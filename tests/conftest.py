"""Fixtures shared by the suite: an S3-compatible server on loopback, a real Celery worker, API clients.

Every test's files go to S3 (moto's server over HTTP, reached with boto3 through django-storages)
unless a test points storage elsewhere itself.
"""
import shutil

import boto3
import pytest
from django.test.utils import override_settings
from rest_framework.test import APIClient

from adplatform.settings import s3_storage
from tests import factories

BUCKET = "adplatform-test"


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint):
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="session", autouse=True)
def s3_storage_everywhere(s3_endpoint, s3_client, tmp_path_factory):
    storages = {
        "default": s3_storage(bucket=BUCKET, endpoint_url=s3_endpoint, region="us-east-1",
                              access_key="test", secret_key="test"),
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    work_dir = tmp_path_factory.mktemp("work")
    with override_settings(STORAGES=storages, MEDIA_ROOT=str(tmp_path_factory.mktemp("media")), WORK_DIR=work_dir):
        yield
    shutil.rmtree(work_dir, ignore_errors=True)


def bucket_keys(s3_client) -> list[str]:
    """Every object key in the test bucket (for "nothing was left behind" checks)."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Every test starts with empty rate-limit counters: the whole suite comes from 127.0.0.1, and
    the production limits stay what the tests run against."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def local_storage(settings, tmp_path):
    """Point this test's files at a local folder instead of S3."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return tmp_path / "media"


@pytest.fixture
def celery_test_worker(django_db_setup):
    """A real Celery worker (a thread of this process) consuming both queues over the broker.

    One per test, so that no worker is left consuming while a test runs its own worker processes.
    """
    from celery.contrib.testing.worker import start_worker

    import tests.worker_tasks  # noqa: F401  (the test-only job task, registered before the worker starts)
    from adplatform.celery import app

    from tests.helpers import broker_purge

    broker_purge()  # messages left by an earlier, interrupted run
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                      queues=["cpu", "gpu"], shutdown_timeout=30) as worker:
        yield worker


@pytest.fixture
def worker(celery_test_worker, transactional_db):
    """Tests that use the worker need committed rows: the worker has its own connection.

    On the way out it waits for the worker to go idle, so no task of this test still runs while
    the database is flushed for the next one.
    """
    yield celery_test_worker
    worker_wait_idle()


def worker_wait_idle(timeout: float = 120.0) -> None:
    import time

    from celery.worker import state

    deadline = time.monotonic() + timeout
    time.sleep(0.3)  # a message sent just now may not have been received yet
    while (state.active_requests or state.reserved_requests) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def fresh_signed_urls():
    """Signed URLs are reused within a process (campaigns.services.serving): one made for another
    test's storage would point nowhere."""
    from campaigns.services.serving import signed_urls_forget

    signed_urls_forget()
    yield
    signed_urls_forget()


@pytest.fixture(scope="session")
def tiny_mp4() -> bytes:
    """A real, tiny H.264 MP4: 9 frames of 32x32."""
    from tests.helpers import mp4_bytes

    return mp4_bytes(9, size=(32, 32))


@pytest.fixture
def org():
    return factories.OrganizationFactory()


@pytest.fixture
def other_org():
    return factories.OrganizationFactory()


def api_client_for(organization, scopes: list[str]) -> APIClient:
    from campaigns import services

    _, raw = services.api_key_create(organization=organization, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


@pytest.fixture
def manage_client(org):
    return api_client_for(org, ["manage"])


@pytest.fixture
def serve_client(org):
    return api_client_for(org, ["serve"])


@pytest.fixture
def full_client(org):
    return api_client_for(org, ["serve", "manage"])


def pytest_collection_modifyitems(items):
    """Every test that runs a real worker (the `worker` fixture, or worker processes of its own) is
    marked `worker`, every page test `browser`, so that `make test-fast` can leave them out."""
    for item in items:
        if {"worker", "celery_test_worker"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.worker)
        if "/tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
