"""Webhooks (Standard Webhooks): endpoints per organization, signed deliveries, retries, the SSRF guard.

An event (``webhook_event_emit``) becomes one WebhookDelivery per active endpoint subscribed to its
type, written in the caller's transaction and handed to the cpu queue once that commits. Each
attempt (``webhook_deliver``) POSTs the same body with the same ``webhook-id``, signed with the
endpoint's secret by the ``standardwebhooks`` library. A non-2xx answer, a timeout or a refused
connection schedules the next attempt with exponential backoff (about 5 s, 10 s, 20 s… at most an
hour apart) until an attempt made 24 hours or more after the event has failed too.
``webhook_deliver_due`` re-sends whatever is overdue, for a wake-up message the broker lost.

The SSRF guard: a URL must be https:// to a public address. Only with WEBHOOK_ALLOW_PRIVATE
(development) may it be http:// to a loopback or private address. The host is resolved, and every
address checked, when the endpoint is made and again before every attempt; the attempt then
connects to the address that was checked (no second lookup that could answer differently).
"""
import base64
import ipaddress
import json
import logging
import math
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, Clip, Job, Organization, Segment, WebhookDelivery, WebhookEndpoint
from generation.limits import MAX_URL_CHARS

logger = logging.getLogger(__name__)

EVENT_TYPES: list[str] = list(WebhookEndpoint.EventType.values)
DELIVER_TASK = "cpu.webhook_deliver"
# Backoff: the first retry about 5 s after a failure, doubling, never more than an hour apart; an
# event is tried until an attempt at least RETRY_FOR after it was made has failed (about 34 tries).
FIRST_RETRY_S = 5.0
MAX_RETRY_GAP_S = 3600.0
RETRY_FOR = timedelta(hours=24)
# An attempt holds its delivery this long (more than the timeout); a worker that died mid-attempt
# leaves it to be taken up again after that.
LEASE = timedelta(seconds=60)
# The sweeper leaves alone what is due since less than this: its own wake-up message is on its way.
SWEEP_GRACE = timedelta(seconds=60)
# After a rotation the old secret signs too (a second `v1,` signature) for this long.
ROTATION_GRACE = timedelta(hours=24)
MAX_HISTORY = 100
USER_AGENT = "Adclip-Webhooks/1"


class UnsafeTarget(Exception):
    """This URL may not be called: its scheme or one of its host's addresses is not allowed."""


# --- endpoints -----------------------------------------------------------------------------------

def webhook_secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_url_clean(url) -> str:
    """The URL's shape and scheme (no lookup); a ValidationError naming `url` when it is refused."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError({"url": "url is required: the https:// address that receives the events."})
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise ValidationError({"url": f"url must be at most {MAX_URL_CHARS} characters."})
    try:
        URLValidator(schemes=["http", "https"])(url)
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port out of range
    except (ValidationError, ValueError):
        raise ValidationError({"url": "url must be an absolute https:// URL."}) from None
    if parts.username is not None or parts.password is not None:
        raise ValidationError({"url": "url may not carry a user name or password; the signature authenticates "
                                      "the platform to the receiver."})
    if parts.scheme == "http" and not settings.WEBHOOK_ALLOW_PRIVATE:
        raise ValidationError({"url": "url must be https:// (http:// is allowed only to private or loopback "
                                      "addresses, and only where WEBHOOK_ALLOW_PRIVATE is on)."})
    return url


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def webhook_url_resolve(url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address the URL's host resolves to, each checked against the SSRF rules.

    Raises UnsafeTarget for a refused target, OSError (socket.gaierror) when the name does not resolve.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if https else 80), type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE
    for address in addresses:
        public = _is_public(address)
        if address.is_multicast or address.is_unspecified:
            raise UnsafeTarget(f"{parts.hostname} resolves to {address}, which cannot receive webhooks.")
        if not https and (public or not allow_private):
            raise UnsafeTarget(f"http:// is allowed only to private or loopback addresses where "
                               f"WEBHOOK_ALLOW_PRIVATE is on; {parts.hostname} resolves to {address}. Use https://.")
        if not public and not allow_private:
            raise UnsafeTarget(f"{parts.hostname} resolves to {address}, a private, loopback or link-local "
                               "address; webhooks go to public addresses only.")
    if not addresses:
        raise socket.gaierror(f"{parts.hostname} has no address")
    return addresses


def _url_check(url) -> str:
    url = webhook_url_clean(url)
    try:
        webhook_url_resolve(url)
    except UnsafeTarget as exc:
        raise ValidationError({"url": str(exc)}) from None
    except (OSError, UnicodeError):
        raise ValidationError({"url": f"the host {urlsplit(url).hostname} could not be resolved."}) from None
    return url


def _events_clean(events) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationError({"events": f"events must be a non-empty list of event types: {', '.join(EVENT_TYPES)}."})
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise ValidationError({"events": f"unknown event type {unknown[0]!r}; choose from: {', '.join(EVENT_TYPES)}."})
    return list(dict.fromkeys(events))


def webhook_endpoint_create(*, organization: Organization, url, events) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (``endpoint.secret``: show it now, it is never shown again)."""
    endpoint = WebhookEndpoint(organization=organization, url=_url_check(url), events=_events_clean(events),
                               secret=webhook_secret_new())
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def webhook_endpoint_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for ROTATION_GRACE so receivers can switch over."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = timezone.now() + ROTATION_GRACE
    endpoint.secret = webhook_secret_new()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Gone with its delivery log; attempts still queued find nothing and do nothing."""
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint alone, whatever it subscribes to."""
    return webhook_event_emit(
        organization=endpoint.organization_id, type=WebhookEndpoint.EventType.WEBHOOK_TEST, endpoints=[endpoint],
        data={"endpoint": endpoint.pk, "url": endpoint.url, "message": "A test event sent from Adclip."},
    )[0]


# --- events --------------------------------------------------------------------------------------

def webhook_event_emit(*, organization: Organization | int, type: str, data: dict | Callable[[], dict],
                       endpoints: list[WebhookEndpoint] | None = None) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the organization subscribed to ``type``, sent after commit.

    ``data`` is the event's object as the API shows it, or a function that makes it (called only
    when some endpoint listens, so an organization without webhooks pays one query).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    organization_id = organization if isinstance(organization, int) else organization.pk
    if endpoints is None:
        # Subscriptions are filtered here rather than in SQL: JSON containment is not portable to SQLite.
        endpoints = [endpoint for endpoint in WebhookEndpoint.objects.filter(organization_id=organization_id,
                                                                             is_active=True)
                     if type in endpoint.events]
    if not endpoints:
        return []
    now = timezone.now()
    body = json.dumps({"type": type, "timestamp": now, "data": data() if callable(data) else data},
                      cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    event_id = f"msg_{uuid.uuid4().hex}"
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery.objects.create(organization_id=organization_id, endpoint=endpoint,
                                                  event_id=event_id, type=type, payload=body, next_retry_at=now)
        _enqueue(delivery.pk)
        deliveries.append(delivery)
    return deliveries


def webhook_job_finished(job: Job) -> list[WebhookDelivery]:
    """`job.succeeded` or `job.failed` for a job whose outcome has just been recorded (else nothing)."""
    from campaigns.api.serializers import JobSerializer

    job = Job.objects.filter(pk=job.pk).first()
    types = {Job.Status.SUCCEEDED: WebhookEndpoint.EventType.JOB_SUCCEEDED,
             Job.Status.FAILED: WebhookEndpoint.EventType.JOB_FAILED}
    if job is None or job.status not in types:
        return []
    return webhook_event_emit(organization=job.organization_id, type=types[job.status],
                              data=lambda: dict(JobSerializer(job).data))


def webhook_clip_event(*, clip: Clip, type: str) -> list[WebhookDelivery]:
    """`clip.pending_review` (a clip made for review), `clip.approved` or `clip.rejected`."""
    from campaigns.api.serializers import ClipSerializer

    return webhook_event_emit(organization=clip.organization_id, type=type,
                              data=lambda: dict(ClipSerializer(clip).data))


def webhook_campaign_status_changed(*, campaign: Campaign | int, previous: str) -> list[WebhookDelivery]:
    """`campaign.status_changed`: the campaign as the API shows it, plus ``previous_status``."""
    from django.db.models import prefetch_related_objects

    from campaigns import selectors
    from campaigns.api.serializers import CampaignSerializer

    campaign_id = campaign if isinstance(campaign, int) else campaign.pk
    organization_id = Campaign.objects.filter(pk=campaign_id).values_list("organization_id", flat=True).first()
    if organization_id is None:
        return []

    def data() -> dict:
        fresh = Campaign.objects.get(pk=campaign_id)
        prefetch_related_objects([fresh], selectors.segments_with_size())
        return {**CampaignSerializer(fresh).data, "previous_status": previous}

    return webhook_event_emit(organization=organization_id, type=WebhookEndpoint.EventType.CAMPAIGN_STATUS_CHANGED,
                              data=data)


def _deliveries_about(organization_id: int, types: list[str], ids) -> QuerySet[WebhookDelivery]:
    """Stored deliveries of these event types whose object (``data``) has one of these ids. Bodies are
    compact JSON whose ``data`` starts with its ``id`` (every serializer lists it first)."""
    about = Q(pk__in=[])
    for object_id in ids:
        about |= Q(payload__contains=f'"data":{{"id":{int(object_id)},')
    return WebhookDelivery.objects.filter(organization_id=organization_id, type__in=types).filter(about)


def webhook_payloads_after_erasure(*, organization_id: int, campaign_id: int, clip_ids: list[int]) -> None:
    """Stored webhook bodies stop saying what an erasure took back (campaigns.services.segmentation):
    deliveries of withdrawn clips go (a pending one is never sent: its clip is gone), and the bodies
    of the campaign's status changes and segmentation jobs show its segments as they are now (same
    event id; a retry sends the new bytes, signed as always)."""
    from campaigns.api.serializers import SegmentSerializer

    from .segmentation import _segments_listed

    event = WebhookEndpoint.EventType
    if clip_ids:
        _deliveries_about(organization_id, [event.CLIP_PENDING_REVIEW, event.CLIP_APPROVED, event.CLIP_REJECTED],
                          clip_ids).delete()
    segments = SegmentSerializer(Segment.objects.filter(campaign_id=campaign_id).order_by("position", "id")
                                 .annotate(size=Count("memberships")), many=True).data
    listed = _segments_listed(campaign_id)
    job_ids = Job.objects.filter(campaign_id=campaign_id, kind=Job.Kind.SEGMENT_PROFILES).values_list("pk", flat=True)
    changed = []
    for types, ids, rewrite in (
            ([event.CAMPAIGN_STATUS_CHANGED], [campaign_id], lambda data: {**data, "segments": segments}),
            ([event.JOB_SUCCEEDED, event.JOB_FAILED], list(job_ids),
             lambda data: {**data, "result": {**data["result"], "segments": listed}}
             if isinstance(data.get("result"), dict) and "segments" in data["result"] else data)):
        for delivery in _deliveries_about(organization_id, types, ids).only("id", "payload"):
            body = json.loads(delivery.payload)
            body["data"] = rewrite(body["data"])
            delivery.payload = json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
            changed.append(delivery)
    WebhookDelivery.objects.bulk_update(changed, ["payload"], batch_size=500)


# --- delivery ------------------------------------------------------------------------------------

def _enqueue(delivery_id: int, countdown: float = 0.0) -> None:
    """Wake the delivery task once the surrounding transaction commits (at once outside one)."""
    from adplatform.celery import app

    # The countdown stays under an hour, well inside the broker's visibility timeout.
    transaction.on_commit(lambda: app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown or None))


def webhook_retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 5 s doubling, with up to 20 % jitter, at most 1 h."""
    base = FIRST_RETRY_S * 2 ** min(max(attempts, 1) - 1, 20)
    return min(MAX_RETRY_GAP_S, base * random.uniform(1.0, 1.2))


def webhook_sign(*, endpoint: WebhookEndpoint, event_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: `v1,<sig>`, and a second one with the previous secret while it lasts."""
    from standardwebhooks import Webhook

    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > at:
        keys.append(endpoint.previous_secret)
    return " ".join(Webhook(key).sign(msg_id=event_id, timestamp=at, data=body) for key in keys)


def _post(url: str, *, address, body: bytes, headers: dict) -> tuple[int | None, str]:
    """POST to the checked address (TLS still verifies the URL's host name): (status code, error text)."""
    import urllib3

    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT)
    if https:
        pool = urllib3.HTTPSConnectionPool(str(address), port, timeout=timeout, retries=False, maxsize=1,
                                           cert_reqs="CERT_REQUIRED", server_hostname=parts.hostname,
                                           assert_hostname=parts.hostname)
    else:
        pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, retries=False, maxsize=1)
    try:
        response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": parts.netloc},
                                redirect=False, assert_same_host=False, preload_content=False)
        try:
            snippet = response.read(300, decode_content=False).decode("utf-8", "replace")
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    finally:
        pool.close()
    if 200 <= response.status < 300:
        return response.status, ""
    return response.status, f"HTTP {response.status}: {snippet.strip()}"[:500]


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """One attempt at a due delivery, recorded on its row; None when there is nothing to do.

    Safe to call any number of times: an attempt first takes the delivery (a conditional update),
    so a duplicate message, or the sweeper racing a wake-up, finds it taken or not yet due.
    """
    now = timezone.now()
    taken = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING,
                                           next_retry_at__lte=now).update(next_retry_at=now + LEASE)
    if not taken:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    started = time.monotonic()
    status_code, error, final = None, "", False
    if not endpoint.is_active:
        error, final = "the endpoint is disabled", True
    else:
        try:
            address = webhook_url_resolve(endpoint.url)[0]
        except UnsafeTarget as exc:
            error, final = f"refused: {exc}", True
        except (OSError, UnicodeError) as exc:
            error = f"could not resolve {urlsplit(endpoint.url).hostname}: {exc}"
        else:
            at = timezone.now()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": delivery.event_id,
                "webhook-timestamp": str(math.floor(at.timestamp())),
                "webhook-signature": webhook_sign(endpoint=endpoint, event_id=delivery.event_id, at=at,
                                                  body=delivery.payload),
            }
            try:
                status_code, error = _post(endpoint.url, address=address, body=delivery.payload.encode(),
                                           headers=headers)
            except Exception as exc:  # whatever went wrong, the attempt is recorded and the next one scheduled
                logger.exception("webhook %s: attempt failed unexpectedly", delivery.event_id)
                error = f"{type(exc).__name__}: {exc}"
    return _record(delivery, status_code=status_code, error=error, final=final,
                   ms=round((time.monotonic() - started) * 1000))


def _record(delivery: WebhookDelivery, *, status_code: int | None, error: str, final: bool,
            ms: int) -> WebhookDelivery | None:
    at = timezone.now()
    delivered = status_code is not None and 200 <= status_code < 300
    fields = {
        "attempts": delivery.attempts + 1,
        "last_status_code": status_code,
        "last_error": error[:500],
        "last_attempt_at": at,
        "history": [*delivery.history, {"at": at.isoformat(), "status_code": status_code, "error": error[:200],
                                        "ms": ms}][-MAX_HISTORY:],
    }
    delay = None
    if delivered:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=at, next_retry_at=None)
    elif final or at - delivery.created_at >= RETRY_FOR:
        fields.update(status=WebhookDelivery.Status.FAILED, next_retry_at=None)
    else:
        delay = webhook_retry_delay(fields["attempts"])
        fields["next_retry_at"] = at + timedelta(seconds=delay)
    if not WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields):
        return None  # the endpoint was deleted meanwhile
    if delay is not None:
        _enqueue(delivery.pk, countdown=delay)
    log = logger.info if delivered else logger.warning
    log("webhook %s (%s) to endpoint %s, attempt %s: %s", delivery.event_id, delivery.type, delivery.endpoint_id,
        fields["attempts"], status_code or error)
    for name, value in fields.items():
        setattr(delivery, name, value)
    return delivery


def webhook_deliver_due(*, limit: int = 1000) -> int:
    """Wake every pending delivery overdue by more than SWEEP_GRACE (its wake-up was lost); how many."""
    overdue = (WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING,
                                              next_retry_at__lte=timezone.now() - SWEEP_GRACE)
               .order_by("next_retry_at").values_list("pk", flat=True)[:limit])
    ids = list(overdue)
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids)
