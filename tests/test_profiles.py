"""Profiles over the serve API: upsert (201/200), read, erase (204) leaving no trace, every bound on
attributes and ids named in a 400, scopes, and organization isolation."""
import json
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from campaigns import services
from campaigns.models import Clip, Event, Profile, SegmentMembership
from tests import factories
from tests.conftest import bucket_keys
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

ATTRIBUTES = {"interests": ["hiking"], "style": "minimal", "locale": "zh-TW"}


def put(client, external_id: str, body):
    return client.put(f"/api/v1/profiles/{external_id}", body, format="json")


# --- upsert and read -----------------------------------------------------------------------------

def test_put_creates_then_updates(serve_client, org):
    created = put(serve_client, "viewer-1", {"attributes": ATTRIBUTES})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["external_id"] == "viewer-1" and body["attributes"] == ATTRIBUTES
    assert body["embedded"] is False and body["segments"] == []
    assert {"created_at", "updated_at"} <= set(body)

    updated = put(serve_client, "viewer-1", {"attributes": {"style": "bold"}})
    assert updated.status_code == 200, updated.content
    assert updated.json()["attributes"] == {"style": "bold"}
    assert Profile.objects.filter(organization=org).count() == 1


def test_put_enqueues_the_embedding_after_commit(serve_client, django_capture_on_commit_callbacks):
    with mock.patch("adplatform.celery.app.send_task") as send, \
            django_capture_on_commit_callbacks(execute=True):
        put(serve_client, "viewer-2", {"attributes": ATTRIBUTES})
    profile = Profile.objects.get(external_id="viewer-2")
    send.assert_called_once_with("cpu.profile_embed", args=[profile.pk])


def test_unchanged_put_of_an_embedded_profile_costs_no_model_time(serve_client, org, django_capture_on_commit_callbacks):
    profile = factories.ProfileFactory(organization=org, external_id="same", attributes=ATTRIBUTES,
                                       embedding=[1.0, 0.0], embedded_at="2026-01-01T00:00:00Z")
    with mock.patch("adplatform.celery.app.send_task") as send, \
            django_capture_on_commit_callbacks(execute=True):
        assert put(serve_client, "same", {"attributes": dict(reversed(ATTRIBUTES.items()))}).status_code == 200
    send.assert_not_called()
    profile.refresh_from_db()
    assert profile.embedding == [1.0, 0.0]


def test_changed_attributes_drop_the_stale_embedding(serve_client, org):
    profile = factories.ProfileFactory(organization=org, external_id="changes", embedding=[1.0, 0.0],
                                       embedded_at="2026-01-01T00:00:00Z")
    put(serve_client, "changes", {"attributes": {"interests": ["chess"]}})
    profile.refresh_from_db()
    assert profile.embedding is None and profile.embedded_at is None


def test_get_shows_the_profile_and_its_segments(serve_client, org):
    profile = factories.ProfileFactory(organization=org, external_id="seen@app:1", attributes=ATTRIBUTES)
    segment = factories.SegmentFactory(campaign__brand__organization=org, name="Hikers")
    SegmentMembership.objects.create(organization=org, profile=profile, campaign=segment.campaign, segment=segment,
                                     distance=0.25)
    response = serve_client.get("/api/v1/profiles/seen@app:1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["attributes"] == ATTRIBUTES
    assert body["segments"] == [{"campaign": segment.campaign_id, "segment": {"id": segment.pk, "name": "Hikers"},
                                 "distance": 0.25}]


def test_unknown_profile_is_404(serve_client):
    assert_error(serve_client.get("/api/v1/profiles/nobody"), 404, "not_found")
    assert_error(serve_client.delete("/api/v1/profiles/nobody"), 404, "not_found")


# --- erasure -------------------------------------------------------------------------------------

def test_delete_erases_profile_events_memberships_and_own_clips(serve_client, org, s3_client,
                                                                 django_capture_on_commit_callbacks):
    profile = factories.ProfileFactory(organization=org, external_id="forget-me")
    segment = factories.SegmentFactory(campaign__brand__organization=org)
    campaign = segment.campaign
    shared = factories.ClipFactory(campaign=campaign, segment=segment, status=Clip.Status.APPROVED)
    own_video = default_storage.save(f"org-{org.pk}/campaigns/{campaign.pk}/clips/own.mp4", ContentFile(b"mp4"))
    own_poster = default_storage.save(f"org-{org.pk}/campaigns/{campaign.pk}/clips/own.jpg", ContentFile(b"jpg"))
    own = factories.ClipFactory(campaign=campaign, profile=profile, video=own_video, poster=own_poster)
    SegmentMembership.objects.create(organization=org, profile=profile, campaign=campaign, segment=segment,
                                     clip=shared)
    for kind in ("impression", "click"):
        services.event_record(organization=org, clip_id=shared.pk, profile="forget-me", event_type=kind)
    other = factories.ProfileFactory(organization=org, external_id="stays")
    services.event_record(organization=org, clip_id=shared.pk, profile="stays", event_type="impression")

    with django_capture_on_commit_callbacks(execute=True):
        response = serve_client.delete("/api/v1/profiles/forget-me")
    assert response.status_code == 204 and response.content == b""

    assert not Profile.objects.filter(external_id="forget-me").exists()
    assert not Event.objects.filter(profile_id=profile.pk).exists()
    assert not SegmentMembership.objects.filter(profile_id=profile.pk).exists()
    assert not Clip.objects.filter(pk=own.pk).exists()
    keys = bucket_keys(s3_client)
    assert own_video not in keys and own_poster not in keys and shared.video.name in keys
    # Nothing else left holding the id or the attributes.
    assert "forget-me" not in json.dumps(list(Event.objects.values()), default=str)
    # Others' data and the anonymous totals stay.
    assert Event.objects.filter(profile=other).count() == 1
    shared.refresh_from_db()
    assert (shared.impressions, shared.clicks) == (2, 1)
    assert_error(serve_client.get("/api/v1/profiles/forget-me"), 404)


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, needle", [
    ({}, "required"),
    ({"attributes": ["hiking"]}, "JSON object"),
    ({"attributes": "hiking"}, "JSON object"),
    ({"attributes": {"bio": "x" * 9000}}, "8192 bytes"),
    ({"attributes": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "4 levels"),
    ({"attributes": {"a": [[[["deep"]]]]}}, "4 levels"),
    ({"attributes": {f"k{i}": i for i in range(51)}}, "50 keys"),
    ({"attributes": {"a": {f"k{i}": i for i in range(50)}}}, "50 keys"),
    ({"attributes": {"": 1}}, "keys must be 1 to"),
    ({"attributes": {"k" * 101: 1}}, "keys must be 1 to"),
])
def test_bad_attributes_are_400_naming_the_field(serve_client, body, needle):
    error = assert_error(put(serve_client, "viewer-3", body), 400, "invalid")
    assert "attributes" in error["details"], error
    assert needle in error["message"], error
    assert not Profile.objects.filter(external_id="viewer-3").exists()


def test_attributes_at_the_bounds_are_accepted(serve_client):
    nested = {"a": {"b": {"c": [1, 2]}}}  # four levels, the most allowed
    many = {f"k{i}": i for i in range(46)}
    assert put(serve_client, "edge", {"attributes": {**nested, **many}}).status_code == 201


@pytest.mark.parametrize("external_id", ["has space", "emoji😀", "x" * 129, "semi;colon", "quote'",
                                         # not addressable in a URL path; a final newline slipped past "$"
                                         ".", "..", "viewer%0A"])
def test_bad_external_id_is_400_naming_it(serve_client, external_id):
    error = assert_error(put(serve_client, external_id, {"attributes": {}}), 400, "invalid")
    assert "external_id" in error["details"] and "128" in error["message"]
    assert_error(serve_client.get(f"/api/v1/profiles/{external_id}"), 400)
    assert not Profile.objects.exists()


@pytest.mark.parametrize("external_id", ["...", ".a", "a.", "a:b@c.d_e-f", "x" * 128])
def test_dots_are_fine_beside_other_characters(serve_client, external_id):
    response = put(serve_client, external_id, {"attributes": {"style": "minimal"}})
    assert response.status_code == 201, response.content


def test_malformed_json_is_400(serve_client):
    response = serve_client.generic("PUT", "/api/v1/profiles/v", "{nope", content_type="application/json")
    assert_error(response, 400, "malformed_body")


def test_wrong_method_is_405(serve_client):
    assert_error(serve_client.post("/api/v1/profiles/v", {"attributes": {}}, format="json"), 405)


# --- auth and isolation --------------------------------------------------------------------------

def test_profiles_need_a_serve_key(client, manage_client):
    assert_error(client.get("/api/v1/profiles/v"), 401)
    error = assert_error(put(manage_client, "v", {"attributes": {}}), 403, "permission_denied")
    assert "serve" in error["message"]


def test_another_organizations_profile_is_404_and_untouched(serve_client, other_org):
    factories.ProfileFactory(organization=other_org, external_id="theirs", attributes={"style": "theirs"})
    assert_error(serve_client.get("/api/v1/profiles/theirs"), 404)
    assert_error(serve_client.delete("/api/v1/profiles/theirs"), 404)
    # The same id in this organization is a different viewer.
    assert put(serve_client, "theirs", {"attributes": {"style": "ours"}}).status_code == 201
    assert Profile.objects.get(organization=other_org, external_id="theirs").attributes == {"style": "theirs"}


def test_profile_endpoints_are_in_the_schema(client):
    text = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content.decode()
    for path in ("/api/v1/profiles/{external_id}", "/api/v1/campaigns/{campaign_id}/clip", "/api/v1/events"):
        assert path in text
