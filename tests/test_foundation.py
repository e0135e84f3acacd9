"""The foundation: API auth and scopes, the error envelope, isolation, jobs through a real worker,
S3 and local signed URLs, settings that take effect, and the web process staying torch-free."""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import RequestFactory

from campaigns import services
from campaigns.files import signed_url
from campaigns.models import ApiKey, Job
from tests import factories
from tests.conftest import BUCKET
from tests.helpers import assert_error, assert_web_process_stays_light, wait_for
from tests.worker_tasks import progress_job_start

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


# --- API keys and scopes -------------------------------------------------------------------------

def test_no_key_is_401_with_envelope(client):
    body = assert_error(client.post("/api/v1/brands", {"name": "x"}, content_type="application/json"), 401)
    assert "Api-Key" in body["message"]


def test_bad_key_is_401(client):
    response = client.post("/api/v1/brands", {"name": "x"}, content_type="application/json",
                           HTTP_AUTHORIZATION="Api-Key adp_not-a-real-key")
    assert_error(response, 401, "authentication_failed")


def test_wrong_scheme_is_401(client):
    response = client.get("/api/v1/jobs/1", HTTP_AUTHORIZATION="Bearer something")
    assert_error(response, 401)


def test_serve_key_cannot_manage(serve_client):
    body = assert_error(serve_client.post("/api/v1/brands", {"name": "x"}, format="json"), 403, "permission_denied")
    assert "manage" in body["message"]


def test_revoked_key_is_401(org):
    key, raw = services.api_key_create(organization=org, scopes=["manage"])
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=key.created_at)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert_error(client.post("/api/v1/brands", {"name": "x"}, format="json"), 401)


def test_only_the_hash_is_stored(org):
    key, raw = services.api_key_create(organization=org, scopes=["serve"])
    key.refresh_from_db()
    assert raw not in (key.hashed_key, key.prefix) and len(key.hashed_key) == 64
    assert raw.startswith(key.prefix)


def test_create_api_key_command_prints_a_working_key(capsys):
    call_command("create_api_key", "--org", "newco", "--scopes", "serve,manage")
    raw = capsys.readouterr().out.strip()
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.post("/api/v1/brands", {"name": "Newco"}, format="json")
    assert response.status_code == 201
    assert ApiKey.objects.get(prefix=raw[:10]).organization.slug == "newco"


def test_create_api_key_command_refuses_unknown_scope():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="scopes"):
        call_command("create_api_key", "--org", "newco", "--scopes", "admin")


# --- brands and the error envelope ---------------------------------------------------------------

def test_brand_create(manage_client, org):
    response = manage_client.post(
        "/api/v1/brands", {"name": "Trailco", "palette": ["#ff5a1f", "#FFFFFF"], "style_notes": "earthy"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["palette"] == ["#FF5A1F", "#FFFFFF"]
    assert body["trigger_token"] == "trailcostyle"


def test_brand_bad_palette_names_the_field(manage_client):
    body = assert_error(manage_client.post("/api/v1/brands", {"name": "B", "palette": ["red"]}, format="json"), 400, "invalid")
    assert "palette" in body["details"]
    assert "#RRGGBB" in body["message"]


def test_brand_missing_name_names_the_field(manage_client):
    body = assert_error(manage_client.post("/api/v1/brands", {"palette": []}, format="json"), 400)
    assert "name" in body["details"]


def test_brand_duplicate_name_is_400(manage_client):
    assert manage_client.post("/api/v1/brands", {"name": "Dup"}, format="json").status_code == 201
    body = assert_error(manage_client.post("/api/v1/brands", {"name": "Dup"}, format="json"), 400)
    assert "name" in body["details"]


def test_malformed_json_is_400_envelope(manage_client):
    response = manage_client.generic("POST", "/api/v1/brands", "{not json", content_type="application/json")
    assert_error(response, 400, "malformed_body")


def test_wrong_content_type_is_415(manage_client):
    response = manage_client.generic("POST", "/api/v1/brands", "name=x", content_type="text/plain")
    assert_error(response, 415)


def test_method_not_allowed_is_405_envelope(manage_client):
    assert_error(manage_client.delete("/api/v1/brands"), 405, "method_not_allowed")


def test_unknown_api_path_is_404_envelope(manage_client):
    assert_error(manage_client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_server_error_under_api_is_json():
    from campaigns.api.errors import server_error_view

    response = server_error_view(RequestFactory().get("/api/v1/brands"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b'"server_error"' in response.content


def test_unknown_api_path_is_json_in_development_too(manage_client, settings):
    settings.DEBUG = True
    assert_error(manage_client.get("/api/v1/brands/1/nope"), 404, "not_found")


def test_unexpected_api_error_is_json_500():
    from campaigns.api.errors import ApiExceptionMiddleware

    middleware = ApiExceptionMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().post("/api/v1/brands"), RuntimeError("boom"))
    assert response.status_code == 500 and b'"server_error"' in response.content
    assert middleware.process_exception(RequestFactory().get("/brands/"), RuntimeError("boom")) is None


def test_rate_limit_is_429_with_retry_after(manage_client, settings):
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    cache.clear()
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "3/min"}
    from campaigns.api.throttles import ApiKeyRateThrottle

    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = rates
    try:
        statuses = [manage_client.get("/api/v1/jobs/999999").status_code for _ in range(4)]
        assert statuses[:3] == [404, 404, 404]
        response = manage_client.get("/api/v1/jobs/999999")
        body = assert_error(response, 429, "rate_limited")
        assert int(response["Retry-After"]) >= 1
        assert body["details"]["retry_after_seconds"] >= 1
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original
        cache.clear()


# --- organization isolation ----------------------------------------------------------------------

def test_other_organizations_job_is_404(manage_client, other_org):
    job = factories.JobFactory(organization=other_org)
    assert_error(manage_client.get(f"/api/v1/jobs/{job.pk}"), 404)
    assert_error(manage_client.post(f"/api/v1/jobs/{job.pk}/cancel"), 404)
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_other_organizations_brand_is_404(manage_client, other_org):
    brand = factories.BrandFactory(organization=other_org)
    assert_error(manage_client.get(f"/api/v1/brands/{brand.pk}"), 404)


def test_own_job_is_visible(manage_client, org):
    job = factories.JobFactory(organization=org)
    body = manage_client.get(f"/api/v1/jobs/{job.pk}").json()
    for field in ("id", "kind", "status", "progress", "message", "error", "created_at", "started_at", "finished_at"):
        assert field in body
    assert body["status"] == "queued"


# --- jobs through a real worker ------------------------------------------------------------------

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


# --- storage -------------------------------------------------------------------------------------

def test_s3_round_trip_and_signed_url_over_http(s3_client):
    name = default_storage.save("roundtrip/hello.bin", ContentFile(b"hello s3"))
    assert name in [o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    url, expires_at = signed_url(name)
    assert "X-Amz-Signature" in url and "X-Amz-Expires" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"hello s3"
    default_storage.delete(name)
    assert not default_storage.exists(name)


def test_local_signed_url_works_then_expires(local_storage, client):
    name = default_storage.save("local/hello.txt", ContentFile(b"hello local"))
    url, _ = signed_url(name)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"hello local"

    expired, _ = signed_url(name, ttl=timedelta(seconds=-1))
    assert client.get(expired).status_code == 404
    assert client.get(url[:-3] + "abc").status_code == 404  # tampered


# --- configuration -------------------------------------------------------------------------------

def test_celery_configuration_took_effect():
    from adplatform.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_routes == {"gpu.*": {"queue": "gpu"}, "cpu.*": {"queue": "cpu"}}
    assert conf.broker_url.startswith("redis://")
    assert conf.broker_transport_options["visibility_timeout"] >= 4 * 3600
    app.loader.import_default_modules()
    task = app.tasks["cpu.campaign_segment"]
    assert task.acks_late and task.reject_on_worker_lost and task.time_limit == 2 * 3600 + 300


def _manage(*args, env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "adplatform.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 10 + "a-long-random-production-secret-key-0123456789abcdefgh",
    "DJANGO_ALLOWED_HOSTS": "ads.example.com",
    "DATABASE_URL": "sqlite:////tmp/adplatform-deploy-check.sqlite3",
    "CACHE_URL": "rediscache://127.0.0.1:6379/1",
}


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_web_process_never_imports_torch():
    assert_web_process_stays_light(
        imports="import adplatform.urls, campaigns.api.views, campaigns.dashboard.views;"
                "from django.test import Client; Client().get('/api/v1/schema/')",
        heavy=("torch", "diffusers", "transformers", "peft"),
    )


def test_openapi_schema_is_served(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json() if response["Content-Type"].endswith("json") else None
    text = response.content.decode()
    for path in ("/api/v1/brands", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/cancel"):
        assert path in text
    if schema:
        assert "ApiKeyAuth" in schema["components"]["securitySchemes"]
    assert client.get("/api/v1/docs/").status_code == 200
