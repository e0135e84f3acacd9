"""The API's surface: brands through it, the error envelope for every kind of refusal, rate
limits, and one organization never seeing another's rows."""
import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import Job
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


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


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/campaigns/-1/recipients"])
def test_unknown_api_path_is_404_envelope_for_a_post_without_csrf_cookie(org, path):
    # Found by the schema fuzzer: a real client sends no CSRF cookie, and the catch-all answered
    # Django's HTML 403 page. The test client skips CSRF unless told to check it.
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {services.api_key_create(organization=org, scopes=['manage'])[1]}")
    assert_error(client.post(path, {}, format="json"), 404, "not_found")


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
