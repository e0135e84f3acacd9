"""Hostile input (issue 12): deep JSON, oversized bodies and wrong types are each a 4xx with the
error envelope, never a 500; oversized bodies are refused before they are read; the schema states
the constraints the services enforce."""
import io
import json

import pytest
from django.urls import reverse

from campaigns.api.parsers import BoundedJSONParser
from campaigns.bounded_json import JsonTooDeep, json_depth, json_loads
from campaigns.errors import TooLarge
from campaigns.models import BrandAsset, Campaign
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000 + "]" * 100_000


def deep_object(key: str) -> str:
    return '{"%s": %s}' % (key, DEEP)


# --- deep JSON: 400 ------------------------------------------------------------------------------

def test_depth_is_measured_without_recursion_and_ignores_strings():
    assert json_depth(DEEP) == 100_000
    assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]"}]}') == 3
    assert json_depth("5") == 0
    with pytest.raises(JsonTooDeep):
        json_loads(DEEP, max_depth=32)
    assert json_loads('{"a": [[1]]}', max_depth=3) == {"a": [[1]]}


@pytest.mark.parametrize("method, path", [
    ("PUT", "/api/v1/profiles/viewer-1"),
    ("POST", "/api/v1/events"),
])
def test_deep_json_on_serve_endpoints_is_400(serve_client, method, path):
    response = serve_client.generic(method, path, deep_object("attributes"), content_type="application/json")
    body = assert_error(response, 400, "too_deep")
    assert body["details"] == {"max_depth": 32}


def test_deep_json_on_campaign_create_is_400(manage_client, org):
    brand = factories.BrandFactory(organization=org)
    body = '{"brand": %d, "name": "n", "brief": "b", "segments": %s}' % (brand.pk, DEEP)
    assert_error(manage_client.generic("POST", "/api/v1/campaigns", body, content_type="application/json"),
                 400, "too_deep")
    assert not Campaign.objects.exists()


def test_json_just_under_the_limit_still_parses(serve_client):
    nested = {"a": {"b": {"c": ["d"]}}}
    response = serve_client.put("/api/v1/profiles/viewer-1", {"attributes": nested}, format="json")
    assert response.status_code == 201, response.content


def test_deep_json_in_the_dashboard_segment_form_is_a_form_error(client, org):
    from campaigns import services
    from campaigns.models import Membership

    brand = factories.BrandFactory(organization=org)
    user = factories.UserFactory()
    services.membership_set(user=user, organization=org, role=Membership.Role.ADMIN)
    client.force_login(user)
    response = client.post(reverse("dashboard:campaign-create"), {
        "name": "Deep", "brand": brand.pk, "brief": "x", "format": "custom", "width": 32, "height": 32,
        "num_frames": 9, "fps": 8, "segment_mode": "define",
        "segment_name": ["Deep"], "segment_attributes": [deep_object("a")],
    })
    assert response.status_code == 400
    assert "nest at most 32 levels" in response.content.decode()
    assert not Campaign.objects.exists()


# --- text PostgreSQL cannot store: 400 --------------------------------------------------------------
# Found by the schema fuzzer: a NUL character (or half a surrogate pair) inside JSON is valid JSON,
# but no text or jsonb column takes it; a segment name holding one was a 500.

UNSTORABLE = ["\\u0000", "a\\u0000b", "\\ud800", "x\\udfffy"]  # as written in the JSON text


@pytest.mark.parametrize("text", UNSTORABLE)
def test_unstorable_text_in_a_campaign_segment_is_400_naming_segments(manage_client, org, text):
    brand = factories.BrandFactory(organization=org)
    body = '{"brand": %d, "name": "n", "brief": "b", "segments": [{"name": "%s"}]}' % (brand.pk, text)
    error = assert_error(manage_client.generic("POST", "/api/v1/campaigns", body, content_type="application/json"),
                         400, "invalid")
    assert list(error["details"]) == ["segments"]
    assert "segments[0].name" in error["message"]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("text", UNSTORABLE)
def test_unstorable_text_in_profile_attributes_is_400_naming_attributes(serve_client, text):
    for body in ('{"attributes": {"k": "%s"}}' % text, '{"attributes": {"%s": 1}}' % text):
        response = serve_client.generic("PUT", "/api/v1/profiles/viewer-1", body, content_type="application/json")
        assert list(assert_error(response, 400, "invalid")["details"]) == ["attributes"]


def test_escaped_backslashes_before_u0000_are_plain_text(serve_client):
    body = '{"attributes": {"note": "C:\\\\u0000 and \\\\ud800"}}'
    response = serve_client.generic("PUT", "/api/v1/profiles/viewer-1", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["attributes"]["note"] == "C:\\u0000 and \\ud800"


# --- not JSON, though Python's decoder takes it: 400 ----------------------------------------------

@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinite_numbers_are_malformed_json(serve_client, literal):
    body = '{"attributes": {"a": %s}}' % literal
    response = serve_client.generic("PUT", "/api/v1/profiles/viewer-1", body, content_type="application/json")
    assert_error(response, 400, "malformed_body")


@pytest.mark.parametrize("attributes,says", [
    ('{"a": "\\u0000"}', "NUL"),  # PostgreSQL keeps no NUL in text
    ('{"a": NaN}', "not valid JSON"),  # it reached PostgreSQL's jsonb, which refused it: a 500
])
def test_unstorable_or_non_json_attributes_in_the_dashboard_segment_form_are_a_form_error(client, org, attributes,
                                                                                          says):
    from campaigns import services
    from campaigns.models import Membership

    brand = factories.BrandFactory(organization=org)
    user = factories.UserFactory()
    services.membership_set(user=user, organization=org, role=Membership.Role.ADMIN)
    client.force_login(user)
    response = client.post(reverse("dashboard:campaign-create"), {
        "name": "Bad attributes", "brand": brand.pk, "brief": "x", "format": "custom", "width": 32, "height": 32,
        "num_frames": 9, "fps": 8, "segment_mode": "define",
        "segment_name": ["Bad"], "segment_attributes": [attributes],
    })
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Campaign.objects.exists()


# --- bodies over the limit: 413 before they are read ---------------------------------------------

class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def test_json_body_over_the_limit_is_413(serve_client, settings):
    body = json.dumps({"attributes": {"note": "x" * (settings.JSON_MAX_BYTES + 10)}})
    response = serve_client.generic("PUT", "/api/v1/profiles/viewer-1", body, content_type="application/json")
    error = assert_error(response, 413, "too_large")
    assert error["details"] == {"max_bytes": settings.JSON_MAX_BYTES}


def test_json_body_over_the_limit_is_refused_from_content_length_unread(serve_client, settings):
    response = serve_client.generic("POST", "/api/v1/events", b"", content_type="application/json",
                                    CONTENT_LENGTH=str(settings.JSON_MAX_BYTES + 1), **{"wsgi.input": Unreadable()})
    assert_error(response, 413, "too_large")


def test_multipart_upload_over_the_cap_is_refused_unread(manage_client, org, settings):
    brand = factories.BrandFactory(organization=org)
    claimed = settings.ASSET_MAX_BYTES + settings.UPLOAD_OVERHEAD_BYTES + 1
    response = manage_client.generic(
        "POST", f"/api/v1/brands/{brand.pk}/assets", b"",
        content_type="multipart/form-data; boundary=xyz", CONTENT_LENGTH=str(claimed),
        **{"wsgi.input": Unreadable()})
    assert_error(response, 413, "too_large")
    assert not BrandAsset.objects.exists()


def test_dashboard_upload_over_the_cap_is_413_unread(client, org, settings):
    brand = factories.BrandFactory(organization=org)
    claimed = settings.ASSET_MAX_BYTES + settings.UPLOAD_OVERHEAD_BYTES + 1
    response = client.generic("POST", f"/brands/{brand.pk}/assets/", b"", content_type="multipart/form-data; boundary=x",
                                    CONTENT_LENGTH=str(claimed), **{"wsgi.input": Unreadable()})
    assert response.status_code == 413


def test_a_body_without_content_length_is_bounded_by_the_parser(settings):
    settings.JSON_MAX_BYTES = 100
    with pytest.raises(TooLarge):
        BoundedJSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 200 + b'"}'))
    assert BoundedJSONParser().parse(io.BytesIO(b'{"a": 1}')) == {"a": 1}


# --- wrong types: 400 naming the field -----------------------------------------------------------

@pytest.mark.parametrize("value", [{}, [], 5, None, True, "nope"])
def test_campaign_status_of_a_wrong_type_is_400_naming_status(manage_client, org, value):
    campaign = factories.CampaignFactory(brand=factories.BrandFactory(organization=org))
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/status", {"status": value}, format="json")
    assert "status" in assert_error(response, 400)["details"]


WRONG = [{}, [], "x", -1, 1.5, True, None, {"a": {"b": 1}}, [[1]], "9" * 400]


def _sweep(client, method, path, base: dict) -> list:
    """Every field of ``base`` set to every wrong value: the 5xx answers, if any."""
    failures = []
    for field in base:
        for value in WRONG:
            response = client.generic(method, path, json.dumps({**base, field: value}),
                                      content_type="application/json")
            if response.status_code >= 500 or not response["Content-Type"].startswith("application/json"):
                failures.append((path, field, value, response.status_code))
            elif response.status_code == 400:
                assert response.json()["error"]["details"], (path, field, value, response.content)
    for body in ([], "x", 5, None):  # the body itself of the wrong type
        response = client.generic(method, path, json.dumps(body), content_type="application/json")
        if response.status_code >= 500:
            failures.append((path, "<body>", body, response.status_code))
    return failures


@pytest.mark.slow
def test_wrong_types_anywhere_are_4xx(full_client, org):
    brand = factories.BrandFactory(organization=org)
    factories.BrandAssetFactory(brand=brand)
    campaign = factories.CampaignFactory(brand=brand)
    segment = factories.SegmentFactory(campaign=campaign)
    clip = factories.ClipFactory(campaign=campaign, segment=segment)
    cases = [
        ("POST", "/api/v1/brands", {"name": "b", "palette": ["#000000"], "style_notes": ""}),
        ("POST", f"/api/v1/brands/{brand.pk}/train", {"steps": 10, "rank": 4, "learning_rate": 0.001}),
        ("POST", "/api/v1/campaigns", {"brand": brand.pk, "name": "n", "brief": "b", "num_frames": 9,
                                       "width": 32, "height": 32, "fps": 8, "segments": 2, "camera": "static",
                                       "start_image": None}),
        ("POST", f"/api/v1/campaigns/{campaign.pk}/generate", {"variants_per_segment": 1, "steps": 2}),
        ("POST", f"/api/v1/campaigns/{campaign.pk}/status", {"status": "archived"}),
        ("PATCH", f"/api/v1/campaigns/{campaign.pk}/segments/{segment.pk}", {"setting": "a beach", "name": "n"}),
        ("POST", f"/api/v1/clips/{clip.pk}/review", {"decision": "approve", "note": ""}),
        ("POST", f"/api/v1/clips/{clip.pk}/edits", {"kind": "extend", "frames": 4, "variants": 1, "prompt": "p",
                                                    "keep_box": [0, 0, 1, 1], "segment": segment.pk,
                                                    "other_clip": clip.pk, "direction": "forward", "steps": 2}),
        ("POST", f"/api/v1/campaigns/{campaign.pk}/rescene", {"clip": clip.pk, "keep_box": [0, 0, 1, 1],
                                                              "variants_per_segment": 1}),
        ("PUT", "/api/v1/profiles/viewer-1", {"attributes": {"a": 1}}),
        ("POST", "/api/v1/events", {"clip_id": clip.pk, "profile": "viewer-1", "type": "click"}),
    ]
    failures = [failure for method, path, base in cases for failure in _sweep(full_client, method, path, base)]
    assert not failures, failures


# --- the schema states the real constraints -------------------------------------------------------

def test_schema_states_profile_id_and_training_bounds(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    profile = schema["paths"]["/api/v1/profiles/{external_id}"]
    for method in ("get", "put", "delete"):
        (param,) = [p for p in profile[method]["parameters"] if p["name"] == "external_id"]
        assert param["schema"]["pattern"] == "^(?!\\.\\.?$)[A-Za-z0-9._:@-]{1,128}$"
        assert param["schema"]["maxLength"] == 128
    clip = schema["paths"]["/api/v1/campaigns/{campaign_id}/clip"]["get"]
    (query,) = [p for p in clip["parameters"] if p["name"] == "profile"]
    assert query["required"] and query["schema"]["pattern"] == param["schema"]["pattern"]
    train = schema["components"]["schemas"]["TrainInRequest"]["properties"]
    assert (train["steps"]["minimum"], train["steps"]["maximum"]) == (1, 20000)
    assert (train["rank"]["minimum"], train["rank"]["maximum"]) == (1, 256)
    assert train["learning_rate"]["type"] == "number"
    status = schema["components"]["schemas"]["CampaignStatusInRequest"]["properties"]["status"]
    assert "$ref" in status or status.get("enum")


def test_schema_states_413_and_415_wherever_a_body_is_read(client, manage_client, org):
    schema = client.get("/api/v1/schema/?format=json").json()
    with_body = [(method, path, operation) for path, item in schema["paths"].items()
                 for method, operation in item.items() if "requestBody" in operation]
    assert len(with_body) >= 14
    for method, path, operation in with_body:
        assert {"413", "415"} <= set(operation["responses"]), (method, path)
    # ... and they are real: an upload endpoint sent JSON, a JSON endpoint sent a form
    campaign = factories.CampaignFactory(brand=factories.BrandFactory(organization=org))
    assert_error(manage_client.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {}, format="json"), 415)
    assert_error(manage_client.generic("POST", "/api/v1/brands", "name=x",
                                       content_type="application/x-www-form-urlencoded"), 415)


def test_a_form_sent_to_a_json_endpoint_is_415(serve_client, client):
    # Found by the schema fuzzer, when JSON endpoints took multipart too: DRF parses a form's JSON
    # field with plain json.loads, so \u0000 in a multipart `attributes` reached jsonb (a 500).
    response = serve_client.put("/api/v1/profiles/viewer-1", {"attributes": '{"a": "\\u0000"}'}, format="multipart")
    assert_error(response, 415)
    schema = client.get("/api/v1/schema/?format=json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                upload = path.endswith(("/assets", "/recipients"))
                assert list(operation["requestBody"]["content"]) == (
                    ["multipart/form-data"] if upload else ["application/json"]), (method, path)
