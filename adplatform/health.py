"""Liveness and readiness (README "Health and metrics"), with django-health-check's checks.

Liveness says the process answers; it touches nothing else, so a database outage never gets pods
restarted. Readiness says this pod can do its work: the database, the cache (rate limits), the
default file storage (S3 in production) and the Celery broker (where jobs are enqueued) all answer.
A failed check makes readiness 503, and the pod is taken out of the Service until it passes again.
"""
import asyncio
import dataclasses
from datetime import timedelta

from django.conf import settings
from django.http import JsonResponse
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis: PING; the filesystem broker: its folders)."""

    def run(self) -> None:
        from adplatform.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                             timeout=self.timeout.total_seconds())
        except Exception as exc:  # kombu raises the transport's own errors: any is "unreachable"
            raise ServiceUnavailable(f"broker unreachable ({type(exc).__name__})") from exc


READINESS_CHECKS = (
    "health_check.checks.Database",
    "health_check.checks.Cache",
    "health_check.checks.Storage",
    Broker,
)


def liveness_view(request):
    return JsonResponse({"status": "ok"})


class ReadinessView(HealthCheckView):
    """Always JSON, and 503 (not the library's 500) when a check fails: load balancers and the
    kubelet read the status; people read the body, one line per check."""

    checks = READINESS_CHECKS

    def get_checks(self):
        # Each check's wall-clock budget: a service slower than this is as good as down.
        for check in super().get_checks():
            check.timeout = timedelta(seconds=settings.READINESS_CHECK_TIMEOUT_S)
            yield check

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            self.results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        failed = any(result.error for result in self.results)
        return JsonResponse(
            {"status": "unavailable" if failed else "ok",
             "checks": {repr(result.check): str(result.error) if result.error else "ok" for result in self.results}},
            status=503 if failed else 200,
        )

