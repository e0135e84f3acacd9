"""Webhooks (Standard Webhooks): signed deliveries to a real loopback receiver, retries with the same
webhook-id, the SSRF guard, the API's contract, the events, and the dashboard page."""
import json
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from campaigns import services
from campaigns.models import Campaign, Clip, Job, WebhookDelivery, WebhookEndpoint
from campaigns.services import webhooks
from tests import factories
from tests.conftest import api_client_for
from tests.helpers import LoopbackServer, assert_error, wait_for

pytestmark = pytest.mark.django_db


class Receiver(LoopbackServer):
    """An HTTP server on loopback that answers the given status codes in turn (the last one repeats)."""

    path = "/hooks/adclip"

    def __init__(self, codes: list[int]):
        self.codes = list(codes)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
                code = receiver.codes[min(len(receiver.requests), len(receiver.codes)) - 1]
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True


def create_endpoint(client, url: str, events: list[str]):
    return client.post("/api/v1/webhooks", {"url": url, "events": events}, format="json")


# --- the bar: a signed clip.pending_review after generation, retried with the same id ----------

@pytest.mark.worker
def test_generation_notifies_a_receiver_that_fails_twice_three_times_with_one_id(worker, manage_client, org,
                                                                                   allow_private):
    brand = services.brand_create(organization=org, name="Trailhead", palette=["#E4572E"], style_notes="warm")
    with Receiver([500, 500, 200]) as receiver:
        created = create_endpoint(manage_client, receiver.url, ["clip.pending_review"])
        assert created.status_code == 201, created.content
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")

        campaign = manage_client.post("/api/v1/campaigns", {"brand": brand.pk, "name": "Summer", "brief": "Trail "
                                      "shoes for the weekend", "num_frames": 9, "width": 32, "height": 32},
                                      format="json").json()
        response = manage_client.post(f"/api/v1/campaigns/{campaign['id']}/generate", {"steps": 2}, format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["job"]["id"]
        wait_for(lambda: Job.objects.get(pk=job_id).is_finished, timeout=300)
        assert Job.objects.get(pk=job_id).status == Job.Status.SUCCEEDED, Job.objects.get(pk=job_id).error
        clip = Clip.objects.get(job_id=job_id)

        # Production backoff (about 5 s, then 10 s): the whole exchange takes about 20 s.
        wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").exists(), timeout=120, interval=0.5)

    assert len(receiver.requests) == 3
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1 and ids.pop().startswith("msg_")
    for request in receiver.requests:
        event = Webhook(secret).verify(request["body"], request["headers"])
        assert event["type"] == "clip.pending_review"
        assert event["data"]["id"] == clip.pk and event["data"]["status"] == "pending_review"
        assert event["data"]["campaign"] == campaign["id"]
    assert len({r["body"] for r in receiver.requests}) == 1  # the same bytes every time
    first, second, third = (r["at"] for r in receiver.requests)
    assert 4 <= second - first <= 60  # the first retry within a minute

    # The log shows the three attempts.
    endpoint_id = created.json()["id"]
    log = manage_client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries").json()
    assert len(log) == 1
    assert log[0]["type"] == "clip.pending_review" and log[0]["status"] == "delivered"
    assert log[0]["attempts"] == 3 and log[0]["last_status_code"] == 200 and log[0]["next_retry_at"] is None
    assert [a["status_code"] for a in log[0]["history"]] == [500, 500, 200]
    assert log[0]["event_id"] == receiver.requests[0]["headers"]["webhook-id"]


@pytest.mark.worker
def test_the_sweeper_wakes_a_delivery_whose_wake_up_was_lost(worker, org, allow_private):
    with Receiver([200]) as receiver:
        endpoint = factories.WebhookEndpointFactory(organization=org, url=receiver.url)
        overdue = factories.WebhookDeliveryFactory(endpoint=endpoint, attempts=1, last_status_code=500,
                                                   next_retry_at=timezone.now() - timedelta(minutes=5))
        just_due = factories.WebhookDeliveryFactory(endpoint=endpoint, next_retry_at=timezone.now())
        assert webhooks.webhook_deliver_due() == 1  # the fresh one's own message is on its way
        wait_for(lambda: WebhookDelivery.objects.get(pk=overdue.pk).status == "delivered", timeout=60)
    overdue.refresh_from_db()
    assert overdue.attempts == 2 and overdue.last_status_code == 200
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [overdue.event_id]
    assert WebhookDelivery.objects.get(pk=just_due.pk).attempts == 0


# --- the retry path, attempt by attempt ---------------------------------------------------------

def test_each_failed_attempt_is_recorded_and_rescheduled_with_backoff(org, allow_private):
    with Receiver([500, 503, 204]) as receiver:
        endpoint = factories.WebhookEndpointFactory(organization=org, url=receiver.url)
        delivery = factories.WebhookDeliveryFactory(endpoint=endpoint, next_retry_at=timezone.now())
        delays = []
        for expected in (500, 503, 204):
            assert webhooks.webhook_deliver(delivery_id=delivery.pk) is not None
            assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None  # not due again yet: nothing sent
            delivery.refresh_from_db()
            assert delivery.last_status_code == expected
            if expected != 204:
                delays.append((delivery.next_retry_at - delivery.last_attempt_at).total_seconds())
                # The scheduled time is reached (what the wake-up message waits for).
                WebhookDelivery.objects.filter(pk=delivery.pk).update(next_retry_at=timezone.now())
    assert delivery.status == "delivered" and delivery.attempts == 3 and delivery.next_retry_at is None
    assert [a["status_code"] for a in delivery.history] == [500, 503, 204]
    assert 5 <= delays[0] <= 60 and 10 <= delays[1] <= 60
    assert len(receiver.requests) == 3
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


def test_a_refused_connection_is_retried_and_the_schedule_covers_a_day(org, allow_private):
    endpoint = factories.WebhookEndpointFactory(organization=org, url="http://127.0.0.1:9/closed")
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint, next_retry_at=timezone.now())
    webhooks.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.last_status_code is None and delivery.last_error
    assert delivery.next_retry_at > timezone.now()

    # Retries go on until an attempt 24 h or more after the event has failed, at most an hour apart.
    assert webhooks.webhook_retry_delay(1) <= 60
    assert max(webhooks.webhook_retry_delay(n) for n in range(1, 60)) <= 3600
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_retry_at=timezone.now(),
                                                          created_at=timezone.now() - timedelta(hours=23, minutes=59))
    webhooks.webhook_deliver(delivery_id=delivery.pk)
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "pending"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_retry_at=timezone.now(),
                                                          created_at=timezone.now() - timedelta(hours=24))
    webhooks.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.next_retry_at is None and delivery.attempts == 3


# --- the SSRF guard ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://8.8.8.8/hook",  # not https
    "https://127.0.0.1/hook",
    "https://localhost:8443/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[fd00::1]/hook",
    "https://0.0.0.0/hook",
    "ftp://8.8.8.8/hook",
    "https://user:pw@8.8.8.8/hook",
    "not a url",
    "https://no-such-host.invalid/hook",
])
def test_unsafe_urls_are_refused_naming_url(manage_client, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    body = assert_error(create_endpoint(manage_client, url, ["clip.approved"]), 400, "invalid")
    assert list(body["details"]) == ["url"]
    assert not WebhookEndpoint.objects.exists()


def test_private_targets_only_where_allowed(manage_client, allow_private):
    assert create_endpoint(manage_client, "http://127.0.0.1:9000/hook", ["webhook.test"]).status_code == 201
    assert create_endpoint(manage_client, "https://10.0.0.8/hook", ["webhook.test"]).status_code == 201
    # http:// to a public address is refused even then.
    body = assert_error(create_endpoint(manage_client, "http://8.8.8.8/hook", ["webhook.test"]), 400)
    assert "url" in body["details"]


def test_the_guard_runs_again_at_delivery_time(org, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with Receiver([200]) as receiver:
        # An endpoint that passed when it was made (a development setting, or a name that resolved elsewhere).
        endpoint = factories.WebhookEndpointFactory(organization=org, url=receiver.url)
        delivery = factories.WebhookDeliveryFactory(endpoint=endpoint, next_retry_at=timezone.now())
        webhooks.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == "failed" and delivery.last_error.startswith("refused")


# --- the API -------------------------------------------------------------------------------------

def test_the_secret_is_shown_once_and_rotation_signs_with_both(manage_client, org):
    created = create_endpoint(manage_client, "https://8.8.8.8/hooks", ["clip.approved", "job.failed"])
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) >= {"id", "url", "events", "secret"} and body["secret"].startswith("whsec_")
    assert body["events"] == ["clip.approved", "job.failed"]
    listed = manage_client.get("/api/v1/webhooks").json()
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    assert body["secret"] not in manage_client.get(f"/api/v1/webhooks/{body['id']}/deliveries").content.decode()

    rotated = manage_client.post(f"/api/v1/webhooks/{body['id']}/rotate").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    at, payload = timezone.now(), '{"type":"webhook.test"}'
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(at.timestamp())),
               "webhook-signature": webhooks.webhook_sign(endpoint=endpoint, event_id="msg_1", at=at, body=payload)}
    for secret in (body["secret"], rotated["secret"]):  # receivers on either secret verify
        assert Webhook(secret).verify(payload, headers) == {"type": "webhook.test"}


def test_delete_and_test(manage_client, org, django_capture_on_commit_callbacks):
    endpoint = factories.WebhookEndpointFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = manage_client.post(f"/api/v1/webhooks/{endpoint.pk}/test")
    assert response.status_code == 202, response.content
    assert response.json()["delivery"]["type"] == "webhook.test" and len(sent) == 1
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert json.loads(delivery.payload)["data"]["endpoint"] == endpoint.pk

    assert manage_client.delete(f"/api/v1/webhooks/{endpoint.pk}").status_code == 204
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None  # a queued attempt finds nothing


def test_another_organizations_webhook_is_404(manage_client, other_org):
    theirs = factories.WebhookEndpointFactory(organization=other_org)
    factories.WebhookDeliveryFactory(endpoint=theirs)
    for method, path in [("delete", ""), ("post", "/test"), ("post", "/rotate"), ("get", "/deliveries")]:
        assert_error(getattr(manage_client, method)(f"/api/v1/webhooks/{theirs.pk}{path}"), 404, "not_found")
    assert manage_client.get("/api/v1/webhooks").json() == []
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()


def test_webhooks_need_the_manage_scope(serve_client):
    assert_error(serve_client.get("/api/v1/webhooks"), 403)


@pytest.mark.parametrize("body,field", [
    ({"url": "https://8.8.8.8/h"}, "events"),
    ({"url": "https://8.8.8.8/h", "events": []}, "events"),
    ({"url": "https://8.8.8.8/h", "events": ["clip.exploded"]}, "events"),
    ({"url": "https://8.8.8.8/h", "events": ["clip.approved", "clip.approved"]}, "events"),
    ({"url": "https://8.8.8.8/h", "events": "clip.approved"}, "events"),
    ({"events": ["clip.approved"]}, "url"),
    ({"url": 42, "events": ["clip.approved"]}, "url"),
    ({"url": "https://8.8.8.8/" + "a" * 2000, "events": ["clip.approved"]}, "url"),
])
def test_bad_bodies_are_400_naming_the_field(manage_client, body, field):
    details = assert_error(manage_client.post("/api/v1/webhooks", body, format="json"), 400, "invalid")["details"]
    assert field in details


def test_the_schema_states_the_constraints(manage_client):
    schema = manage_client.get("/api/v1/schema/?format=json").json()
    props = schema["components"]["schemas"]["WebhookInRequest"]["properties"]
    assert props["url"]["maxLength"] == 2000 and props["url"]["pattern"] == "^https?://"
    assert props["events"]["minItems"] == 1
    items = props["events"]["items"]
    if "$ref" in items:
        items = schema["components"]["schemas"][items["$ref"].rsplit("/", 1)[-1]]
    assert set(items["enum"]) == set(webhooks.EVENT_TYPES)
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/webhooks"])
    assert "202" in paths["/api/v1/webhooks/{webhook_id}/test"]["post"]["responses"]
    assert "204" in paths["/api/v1/webhooks/{webhook_id}"]["delete"]["responses"]


# --- events --------------------------------------------------------------------------------------

def test_review_and_campaign_status_emit_events_to_subscribers_only(manage_client, org,
                                                                    django_capture_on_commit_callbacks):
    listening = factories.WebhookEndpointFactory(organization=org, events=["clip.approved",
                                                                           "campaign.status_changed"])
    factories.WebhookEndpointFactory(organization=org, events=["job.failed"])  # not subscribed
    factories.WebhookEndpointFactory(organization=org, events=["clip.approved"], is_active=False)
    factories.WebhookEndpointFactory(events=["clip.approved"])  # another organization's
    campaign = factories.CampaignFactory(organization=org, brand=factories.BrandFactory(organization=org),
                                         status=Campaign.Status.IN_REVIEW)
    clip = factories.ClipFactory(campaign=campaign)
    with django_capture_on_commit_callbacks(execute=False):
        assert manage_client.post(f"/api/v1/clips/{clip.pk}/review", {"decision": "approve"},
                                  format="json").status_code == 200
        assert manage_client.post(f"/api/v1/campaigns/{campaign.pk}/status", {"status": "live"},
                                  format="json").status_code == 200
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [(d.endpoint_id, d.type) for d in deliveries] == [(listening.pk, "clip.approved"),
                                                            (listening.pk, "campaign.status_changed")]
    approved, status = (json.loads(d.payload) for d in deliveries)
    assert approved["data"]["id"] == clip.pk and approved["data"]["status"] == "approved"
    assert status["data"]["status"] == "live" and status["data"]["previous_status"] == "in_review"
    assert status["data"]["id"] == campaign.pk and "segments" in status["data"]


def test_a_rejection_is_clip_rejected(org, django_capture_on_commit_callbacks):
    factories.WebhookEndpointFactory(organization=org, events=["clip.rejected"])
    clip = factories.ClipFactory(campaign__brand__organization=org)
    with django_capture_on_commit_callbacks(execute=False):
        services.clip_review(clip=clip, decision="reject", note="off-brand")
    assert WebhookDelivery.objects.get().type == "clip.rejected"


@pytest.mark.parametrize("status,event", [("succeeded", "job.succeeded"), ("failed", "job.failed"),
                                          ("cancelled", None), ("running", None)])
def test_webhook_job_finished(org, status, event):
    factories.WebhookEndpointFactory(organization=org, events=["job.succeeded", "job.failed"])
    job = factories.JobFactory(organization=org, status=status)
    deliveries = services.webhook_job_finished(job)
    assert [d.type for d in deliveries] == ([event] if event else [])
    if event:
        assert json.loads(deliveries[0].payload)["data"]["status"] == status


def test_the_job_runner_announces_each_outcome_once(org, django_capture_on_commit_callbacks):
    """job_run's success, a failure of the work, and a job whose workers died too often."""
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.services.jobs import job_run, jobs_requeue_stale

    factories.WebhookEndpointFactory(organization=org, events=["job.succeeded", "job.failed"])
    done = factories.JobFactory(organization=org)
    broken = factories.JobFactory(organization=org)
    dying = factories.JobFactory(organization=org, status="running", attempts=3, worker_losses=2,
                                 heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks():
        job_run(job_id=done.pk, work=lambda handle: {"ok": True})
        job_run(job_id=broken.pk, work=lambda handle: 1 / 0)
        jobs_requeue_stale()
    sent = {(d.payload and json.loads(d.payload)["data"]["id"], d.type) for d in WebhookDelivery.objects.all()}
    assert sent == {(done.pk, "job.succeeded"), (broken.pk, "job.failed"), (dying.pk, "job.failed")}


def test_an_organization_without_webhooks_pays_one_query(org, django_assert_num_queries):
    clip = factories.ClipFactory(campaign__brand__organization=org)
    with django_assert_num_queries(1):
        assert webhooks.webhook_clip_event(clip=clip, type="clip.pending_review") == []


# --- the dashboard ------------------------------------------------------------------------------

@pytest.fixture
def member(client, org):
    user = factories.UserFactory()
    factories.MembershipFactory(user=user, organization=org)
    client.force_login(user)
    return client


def test_dashboard_page_creates_shows_the_secret_once_tests_and_deletes(member, org, allow_private,
                                                                        django_capture_on_commit_callbacks):
    page = member.get("/webhooks/")
    assert page.status_code == 200 and b'href="/webhooks/"' in page.content
    created = member.post("/webhooks/", {"url": "http://127.0.0.1:9000/hook",
                                         "events": ["clip.pending_review", "clip.approved"]})
    assert created.status_code == 201, created.content
    endpoint = WebhookEndpoint.objects.get(organization=org)
    assert endpoint.secret.encode() in created.content
    assert endpoint.secret.encode() not in member.get("/webhooks/").content
    with django_capture_on_commit_callbacks(execute=False):
        assert member.post(f"/webhooks/{endpoint.pk}/test/").status_code == 302
    log = member.get(f"/webhooks/{endpoint.pk}/")
    assert log.status_code == 200 and WebhookDelivery.objects.get().event_id.encode() in log.content
    assert member.post(f"/webhooks/{endpoint.pk}/delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_dashboard_refuses_an_unsafe_url_on_the_form(member, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = member.post("/webhooks/", {"url": "https://127.0.0.1/hook", "events": ["clip.approved"]})
    assert response.status_code == 400 and b"private" in response.content
    assert not WebhookEndpoint.objects.exists()


def test_dashboard_page_in_traditional_chinese(member):
    page = member.get("/webhooks/", HTTP_ACCEPT_LANGUAGE="zh-hant")
    assert "網路鉤子".encode() in page.content


def test_dashboard_another_organizations_webhook_is_404(member, other_org):
    theirs = factories.WebhookEndpointFactory(organization=other_org)
    assert member.get(f"/webhooks/{theirs.pk}/").status_code == 404
    assert member.post(f"/webhooks/{theirs.pk}/delete/").status_code == 404
    assert member.post(f"/webhooks/{theirs.pk}/test/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()


def test_api_client_for_other_org_cannot_list_mine(org, other_org):
    factories.WebhookEndpointFactory(organization=org)
    assert api_client_for(other_org, ["manage"]).get("/api/v1/webhooks").json() == []
