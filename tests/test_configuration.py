"""Settings that take effect: Celery's, complete migrations, the web process staying torch-free,
and the OpenAPI schema being served. (Production settings: tests/test_deployment_settings.py.)"""
import pytest
from django.core.management import call_command

from tests.helpers import assert_web_process_stays_light

pytestmark = pytest.mark.django_db


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
    # No task outlives the visibility timeout: Redis would hand it to a second worker while it runs.
    project_tasks = [t for name, t in app.tasks.items() if name.startswith(("gpu.", "cpu."))]
    assert len(project_tasks) >= 10
    assert all(t.time_limit < conf.broker_transport_options["visibility_timeout"] for t in project_tasks)
    assert app.tasks["gpu.lora_train"].time_limit == 3 * 3600 + 300


def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.slow
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
