"""One error envelope: a service's refusal reads the same from the API and the dashboard."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from campaigns import services
from campaigns.errors import Conflict, TooLarge, error_payload
from campaigns.models import Membership
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("exc,status,body", [
    (Conflict("a finished job", code="job_finished", details={"status": "failed"}), 409,
     {"code": "job_finished", "message": "a finished job", "details": {"status": "failed"}}),
    (TooLarge("over 10 MB"), 413, {"code": "too_large", "message": "over 10 MB", "details": {}}),
    (ValidationError({"brief": ["at most 600 characters."], "name": ["required."]}), 400,
     {"code": "invalid", "message": "brief: at most 600 characters.; name: required.",
      "details": {"brief": ["at most 600 characters."], "name": ["required."]}}),
    (ValidationError("no segments yet."), 400,
     {"code": "invalid", "message": "no segments yet.", "details": {"non_field_errors": ["no segments yet."]}}),
    (PermissionDenied("reviewers only."), 403, {"code": "permission_denied", "message": "reviewers only.", "details": {}}),
])
def test_error_payload(exc, status, body):
    assert error_payload(exc) == (status, {"error": body})


def test_an_unexpected_error_has_no_payload():
    assert error_payload(ValueError("a bug")) is None


def test_the_api_and_the_dashboard_refuse_alike(manage_client, client, org):
    reviewer = factories.UserFactory()
    factories.MembershipFactory(user=reviewer, organization=org, role=Membership.Role.REVIEWER)
    clip = factories.ClipFactory(campaign__brand__organization=org)
    services.clip_review(clip=clip, decision="approve", note="", user=reviewer)

    api = assert_error(manage_client.post(f"/api/v1/clips/{clip.pk}/review", {"decision": "reject"}, format="json"),
                       409, "already_decided")
    client.force_login(reviewer)
    response = client.post(reverse("dashboard:review-decide", args=[clip.pk]), {"decision": "reject"},
                           HTTP_ACCEPT="application/json")
    dashboard = assert_error(response, 409, "already_decided")
    assert dashboard == api
    assert api["details"] == {"status": "approved", "decided_by": reviewer.get_username()}
