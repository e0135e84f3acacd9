"""API keys: the header they come in, their scopes, revocation, the stored hash and the command."""
import pytest
from django.core.management import call_command

from campaigns import services
from campaigns.models import ApiKey
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_no_key_is_401_with_envelope(client):
    body = assert_error(client.post("/api/v1/brands", {"name": "x"}, content_type="application/json"), 401)
    assert "Api-Key" in body["message"]


def test_bad_key_is_401(client):
    response = client.post("/api/v1/brands", {"name": "x"}, content_type="application/json",
                           HTTP_AUTHORIZATION="Api-Key adp_not-a-real-key")
    assert_error(response, 401, "authentication_failed")


def test_wrong_scheme_is_401(client):
    response = client.get("/api/v1/jobs/1", HTTP_AUTHORIZATION="Bearer something")
    assert_error(response, 401)


def test_serve_key_cannot_manage(serve_client):
    body = assert_error(serve_client.post("/api/v1/brands", {"name": "x"}, format="json"), 403, "permission_denied")
    assert "manage" in body["message"]


def test_revoked_key_is_401(org):
    key, raw = services.api_key_create(organization=org, scopes=["manage"])
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=key.created_at)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert_error(client.post("/api/v1/brands", {"name": "x"}, format="json"), 401)


def test_only_the_hash_is_stored(org):
    key, raw = services.api_key_create(organization=org, scopes=["serve"])
    key.refresh_from_db()
    assert raw not in (key.hashed_key, key.prefix) and len(key.hashed_key) == 64
    assert raw.startswith(key.prefix)


def test_create_api_key_command_prints_a_working_key(capsys):
    call_command("create_api_key", "--org", "newco", "--scopes", "serve,manage")
    raw = capsys.readouterr().out.strip()
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.post("/api/v1/brands", {"name": "Newco"}, format="json")
    assert response.status_code == 201
    assert ApiKey.objects.get(prefix=raw[:10]).organization.slug == "newco"


def test_create_api_key_command_refuses_unknown_scope():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="scopes"):
        call_command("create_api_key", "--org", "newco", "--scopes", "admin")
