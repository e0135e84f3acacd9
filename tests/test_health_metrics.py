"""Health, metrics and logs (issue 17, part 2): liveness and readiness against the real services,
/metrics behind its token with queue depth, job durations and clip events, JSON log lines with
request and job ids and viewers' ids hashed."""
import io
import json
import logging
import socket
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from campaigns.log_privacy import external_id_hash
from campaigns.models import Job
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"
SECRET_ID = "carol-9"


@pytest.fixture(autouse=True)
def patient_readiness(settings):
    """A loaded CI machine and the S3 server in this process can take seconds to answer."""
    settings.READINESS_CHECK_TIMEOUT_S = 60


# --- liveness and readiness ----------------------------------------------------------------------

def test_liveness_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")  # the kubelet: the pod's address
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.get("/api/v1/health").json() == {"status": "ok"}  # the documented health check


def test_readiness_checks_database_cache_storage_and_broker(client):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    checks = " ".join(body["checks"])
    for name in ("Database", "Cache", "Storage", "Broker"):
        assert name in checks
    assert set(body["checks"].values()) == {"ok"}


@pytest.mark.slow
def test_workers_check_readiness_with_the_command_their_probe_runs(capsys):
    """A worker serves no HTTP: its readiness probe runs the same checks in a command."""
    with pytest.raises(SystemExit) as exited:
        call_command("health_check", "readyz", "--no-http")
    assert exited.value.code == 0, capsys.readouterr().out
    assert "Broker()" in capsys.readouterr().out


def test_k8s_probes_liveness_and_readiness_of_every_deployment():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent / "infra/k8s"
    deployments = [doc for name in ("web.yaml", "gpu-worker.yaml")
                   for doc in yaml.safe_load_all((root / name).read_text()) if doc["kind"] == "Deployment"]
    probes = {}
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        probes[deployment["metadata"]["name"]] = (container["livenessProbe"], container["readinessProbe"])
    live, ready = probes.pop("adplatform-web")
    assert live["httpGet"]["path"] == "/healthz" and ready["httpGet"]["path"] == "/readyz"
    assert ready["timeoutSeconds"] > 5  # above READINESS_CHECK_TIMEOUT_S's default
    assert sorted(probes) == ["adplatform-cpu-worker", "adplatform-gpu-worker"]
    for live, ready in probes.values():
        assert "inspect ping" in " ".join(live["exec"]["command"])
        assert ready["exec"]["command"][-3:] == ["health_check", "readyz", "--no-http"]


def _closed_port() -> socket.socket:
    """A socket bound to a loopback port that nobody listens on: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def test_readiness_is_503_while_the_database_is_unreachable_and_200_when_it_is_back(client, monkeypatch):
    # The check opens its own connection in another thread, from the alias' settings: point them at a
    # port where no PostgreSQL listens (this test's own connection stays open and untouched).
    database = connections.settings["default"]
    with _closed_port() as closed:
        with monkeypatch.context() as patch:
            patch.setitem(database, "HOST", "127.0.0.1")
            patch.setitem(database, "PORT", str(closed.getsockname()[1]))
            down = client.get("/readyz")
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "unavailable"
    (database_check,) = [name for name in body["checks"] if name.startswith("Database")]
    assert body["checks"][database_check] != "ok"
    assert all(result == "ok" for name, result in body["checks"].items() if name != database_check)

    back = client.get("/readyz")
    assert back.status_code == 200 and back.json()["status"] == "ok"


# --- metrics -------------------------------------------------------------------------------------

def test_metrics_are_refused_without_the_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # not configured: not there
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Api-Key {TOKEN}").status_code == 403


def _scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def key(name: str, **labels) -> tuple[str, tuple]:
    return name, tuple(sorted(labels.items()))


@contextmanager
def _broker_channel():
    from adplatform.celery import app

    with app.connection_for_write() as connection:
        yield connection.default_channel


def test_metrics_expose_queue_depth_job_durations_clip_events_and_requests(client, settings):
    from adplatform.celery import app

    settings.METRICS_TOKEN = TOKEN
    before = _scrape(client)
    assert before[("adplatform_broker_up", ())] == 1
    cpu_before = before[key("adplatform_celery_queue_depth", queue="cpu")]
    gpu_before = before[key("adplatform_celery_queue_depth", queue="gpu")]

    # Two tasks waiting on the cpu queue (no worker runs here), read back from the broker.
    try:
        for _ in range(2):
            app.send_task("cpu.campaign_segment", args=[0])
        after = _scrape(client)
    finally:
        with _broker_channel() as channel:
            channel.queue_purge("cpu")
    assert after[key("adplatform_celery_queue_depth", queue="cpu")] == cpu_before + 2
    assert after[key("adplatform_celery_queue_depth", queue="gpu")] == gpu_before

    # Finished jobs: two generations of 90 s and 150 s, one failed training of 10 s, one queued.
    now = timezone.now()
    for seconds in (90, 150):
        factories.JobFactory(kind=Job.Kind.GENERATE_CLIPS, status=Job.Status.SUCCEEDED,
                             started_at=now - timedelta(seconds=seconds), finished_at=now)
    factories.JobFactory(kind=Job.Kind.TRAIN_LORA, status=Job.Status.FAILED,
                         started_at=now - timedelta(seconds=10), finished_at=now)
    factories.JobFactory(kind=Job.Kind.TRAIN_LORA, status=Job.Status.QUEUED)
    factories.JobFactory(kind=Job.Kind.TRAIN_LORA, status=Job.Status.CANCELLED)  # never started: no duration
    # Clips served and what viewers did with them (the clips' counters).
    factories.ClipFactory(impressions=5, clicks=2, completes=1)
    factories.ClipFactory(impressions=3)
    factories.WebhookDeliveryFactory(status="delivered", attempts=2)
    client.get("/api/v1/health")

    metrics = _scrape(client)
    generated = {"kind": "generate_clips", "outcome": "succeeded"}
    assert metrics[key("adplatform_job_duration_seconds_count", **generated)] == 2
    assert metrics[key("adplatform_job_duration_seconds_sum", **generated)] == pytest.approx(240)
    assert metrics[key("adplatform_job_duration_seconds_bucket", **generated, le="60.0")] == 0
    assert metrics[key("adplatform_job_duration_seconds_bucket", **generated, le="120.0")] == 1
    assert metrics[key("adplatform_job_duration_seconds_bucket", **generated, le="300.0")] == 2
    assert metrics[key("adplatform_job_duration_seconds_bucket", **generated, le="+Inf")] == 2
    failed = {"kind": "train_lora", "outcome": "failed"}
    assert metrics[key("adplatform_job_duration_seconds_count", **failed)] == 1
    assert metrics[key("adplatform_job_duration_seconds_bucket", **failed, le="15.0")] == 1
    assert not any(name.startswith("adplatform_job_duration") and ("outcome", "cancelled") in labels
                   for name, labels in metrics)
    assert metrics[key("adplatform_jobs_unfinished", kind="train_lora", status="queued")] == 1

    assert metrics[key("adplatform_clip_events_total", type="impression")] == 8
    assert metrics[key("adplatform_clip_events_total", type="click")] == 2
    assert metrics[key("adplatform_clip_events_total", type="complete")] == 1
    assert metrics[key("adplatform_webhook_deliveries", status="delivered")] == 1
    assert metrics[key("adplatform_webhook_deliveries", status="pending")] == 0
    assert metrics[key("adplatform_webhook_delivery_attempts_total", status="delivered")] == 2

    # Requests by route and status, and latency, from django-prometheus.
    assert metrics[key("django_http_responses_total_by_status_view_method_total",
                       method="GET", status="200", view="api:health")] >= 1
    assert any(name == "django_http_requests_latency_seconds_by_view_method_count"
               and ("view", "api:health") in labels for name, labels in metrics)


def test_the_broker_being_down_is_a_metric_not_an_error(client, settings, monkeypatch):
    from celery import Celery

    from adplatform.celery import app

    settings.METRICS_TOKEN = TOKEN
    with _closed_port() as closed:
        unreachable = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        monkeypatch.setattr(app, "connection_for_read", lambda: Celery.connection_for_read(app, unreachable))
        monkeypatch.setattr(app, "connection_for_write", lambda: Celery.connection_for_write(app, unreachable))
        metrics = _scrape(client)
        ready = client.get("/readyz")
    assert metrics[("adplatform_broker_up", ())] == 0
    assert not any(name == "adplatform_celery_queue_depth" for name, _ in metrics)
    assert ready.status_code == 503
    assert [name for name, result in ready.json()["checks"].items() if result != "ok"] == ["Broker()"]


# --- logs ----------------------------------------------------------------------------------------

@contextmanager
def _console_lines():
    """What the configured console handler (settings.LOGGING: JSON, privacy filter) writes."""
    (handler,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        handler.setStream(previous)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_a_request_logs_json_lines_with_its_request_id_and_the_viewer_hashed(serve_client, settings):
    assert settings.LOG_FORMAT == "json"
    with _console_lines() as lines:
        response = serve_client.get(f"/api/v1/profiles/{SECRET_ID}")
    assert response.status_code == 404
    request_id = response["X-Request-ID"]
    mine = [line for line in lines if line.get("request_id") == request_id]
    events = {line["event"] for line in mine}
    assert "request_finished" in events
    assert f"Not Found: /api/v1/profiles/{external_id_hash(SECRET_ID)}" in events  # Django's own, plain logging
    finished = next(line for line in mine if line["event"] == "request_finished")
    assert finished["code"] == 404 and finished["level"] == "warning" and "timestamp" in finished
    text = json.dumps(lines)
    assert SECRET_ID not in text and external_id_hash(SECRET_ID) in text


def test_a_worker_binds_the_job_id_to_its_lines():
    """django-structlog's task_prerun receiver (the one its worker step connects) with our binder."""
    from django_structlog.celery.receivers import CeleryReceiver
    from django_structlog.celery.steps import DjangoStructLogInitStep

    from adplatform.celery import app
    from generation import tasks

    assert DjangoStructLogInitStep in app.steps["worker"]
    task = app.tasks[tasks.campaign_generate.name]
    task.push_request(args=[4321], kwargs={}, id="task-1")
    try:
        with _console_lines() as lines:
            CeleryReceiver().receiver_task_prerun("task-1", task)
            logging.getLogger("campaigns.services.jobs").info("job step")
    finally:
        task.pop_request()
        import structlog

        structlog.contextvars.clear_contextvars()
    assert [line["event"] for line in lines] == ["task_started", "job step"]
    assert all(line["job_id"] == 4321 and line["task_id"] == "task-1" for line in lines)
