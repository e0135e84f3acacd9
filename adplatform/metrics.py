"""Prometheus metrics on /metrics, for a scraper that holds METRICS_TOKEN (README "Health and metrics").

Two sources:
- this process's request metrics, from django-prometheus' middleware: requests by view and status,
  latency histograms by view (``django_http_*``). Under gunicorn with several workers, set
  PROMETHEUS_MULTIPROC_DIR so every worker's counts are summed into each scrape.
- the platform's state, computed at scrape time from the database and the broker, so the figures are
  the same whichever process or pod answers: queue depth per Celery queue, job durations by kind and
  outcome, jobs waiting or running, clip events (impressions, clicks, completes) reported by apps,
  and webhook deliveries by status.
  Every pod reports the same platform figures: aggregate them with max(), not sum().
"""
import logging
import os
from datetime import timedelta

import prometheus_client
from django.conf import settings
from django.http import HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

logger = logging.getLogger(__name__)

# Jobs last from seconds (segmentation) to hours (LoRA training).
JOB_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)


def celery_queues() -> list[str]:
    """The queues tasks are routed to (settings.CELERY_TASK_ROUTES) and the default queue."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    return sorted(routed | {settings.CELERY_TASK_DEFAULT_QUEUE})


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue, as the broker counts them (Redis: LLEN of the queue's lists,
    every priority; the filesystem broker: its message files). A queue the broker has never held
    (Redis drops an empty list) is empty."""
    from kombu.exceptions import ChannelError

    from adplatform.celery import app

    depths = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=5)
        channel = connection.default_channel
        for queue in celery_queues():
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                depths[queue] = 0
    return depths


def job_duration_rows() -> list[dict]:
    """Per (kind, outcome) of finished jobs that ran: count, total seconds, and how many took at most
    each bucket's seconds. Every finished job ever, not a window: a histogram's counts must only grow."""
    from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
    from django.db.models.lookups import LessThanOrEqual

    from campaigns.models import Job

    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {f"le_{index}": Count("id", filter=LessThanOrEqual(duration, timedelta(seconds=bound)))
               for index, bound in enumerate(JOB_DURATION_BUCKETS)}
    return list(
        Job.objects.filter(status__in=Job.FINISHED, started_at__isnull=False, finished_at__isnull=False)
        .values("kind", "status").annotate(count=Count("id"), total=Sum(duration), **buckets)
        .order_by("kind", "status")
    )


class PlatformCollector:
    """The platform's figures, read when Prometheus scrapes."""

    def collect(self):
        yield from self.queues()
        yield from self.jobs()
        yield from self.clip_events()
        yield from self.webhook_deliveries()

    def queues(self):
        up = GaugeMetricFamily("adplatform_broker_up", "Whether the Celery broker answered this scrape (1) or not (0).")
        try:
            depths = queue_depths()
        except Exception:
            logger.warning("metrics: the broker did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("adplatform_celery_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"])
        for queue, count in depths.items():
            depth.add_metric([queue], count)
        yield depth

    def jobs(self):
        from django.db.models import Count

        from campaigns.models import Job

        histogram = HistogramMetricFamily(
            "adplatform_job_duration_seconds",
            "Run time (started to finished) of finished jobs, by kind and outcome.",
            labels=["kind", "outcome"])
        for row in job_duration_rows():
            buckets = [(str(float(bound)), row[f"le_{index}"]) for index, bound in enumerate(JOB_DURATION_BUCKETS)]
            buckets.append(("+Inf", row["count"]))
            total = row["total"].total_seconds() if row["total"] is not None else 0.0
            histogram.add_metric([row["kind"], row["status"]], buckets, total)
        yield histogram

        unfinished = GaugeMetricFamily("adplatform_jobs_unfinished", "Jobs queued or running, by kind and status.",
                                       labels=["kind", "status"])
        for row in (Job.objects.exclude(status__in=Job.FINISHED).values("kind", "status")
                    .annotate(count=Count("id")).order_by("kind", "status")):
            unfinished.add_metric([row["kind"], row["status"]], row["count"])
        yield unfinished

    def clip_events(self):
        from django.db.models import Sum

        from campaigns.models import Clip
        from campaigns.services.serving import COUNTERS

        totals = Clip.objects.aggregate(**{event_type: Sum(field) for event_type, field in COUNTERS.items()})
        events = CounterMetricFamily("adplatform_clip_events",
                                     "Clip events reported by apps and video players, by type (the clips' counters).",
                                     labels=["type"])
        for event_type in COUNTERS:
            events.add_metric([str(event_type)], totals[event_type] or 0)
        yield events

    def webhook_deliveries(self):
        from django.db.models import Count, Sum

        from campaigns.models import WebhookDelivery

        deliveries = GaugeMetricFamily("adplatform_webhook_deliveries",
                                       "Webhook deliveries (one event to one endpoint) by status.", labels=["status"])
        attempts = CounterMetricFamily("adplatform_webhook_delivery_attempts",
                                       "HTTP attempts made to deliver webhooks, by the delivery's status.",
                                       labels=["status"])
        rows = {row["status"]: row for row in WebhookDelivery.objects.values("status")
                .annotate(count=Count("id"), attempts=Sum("attempts")).order_by("status")}
        for status in WebhookDelivery.Status.values:
            row = rows.get(status, {})
            deliveries.add_metric([status], row.get("count", 0))
            attempts.add_metric([status], row.get("attempts") or 0)
        yield deliveries
        yield attempts


PLATFORM_REGISTRY = CollectorRegistry(auto_describe=False)
PLATFORM_REGISTRY.register(PlatformCollector())


def process_registry() -> CollectorRegistry:
    """django-prometheus' request metrics: this process's, or every gunicorn worker's when they
    write to PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


def metrics_view(request):
    """Not public: 404 unless METRICS_TOKEN is set, 403 without ``Authorization: Bearer <token>``."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Not Found\n", status=404, content_type="text/plain")
    if not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    body = prometheus_client.generate_latest(process_registry()) + prometheus_client.generate_latest(PLATFORM_REGISTRY)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
