"""Sign-in throttling with django-axes: after LOGIN_FAILURE_LIMIT wrong passwords for one username
from one address, the dashboard's and the admin's sign-in refuse that pair, the right password
included, with a page that says why; other addresses and other usernames are unaffected."""
import pytest
from django.contrib.auth import get_user_model

from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "a-right-password-9"


@pytest.fixture
def person():
    user = factories.UserFactory(username="dana")
    user.set_password(PASSWORD)
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def sign_in(client, url: str, password: str, ip: str = "203.0.113.7", **extra):
    return client.post(url, {"username": "dana", "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_username_from_that_address(client, person, settings, url):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, url, "wrong").status_code == 200
    locked = sign_in(client, url, "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-in attempts" in page and "Try again in 15 minutes" in page

    right = sign_in(client, url, PASSWORD)
    assert right.status_code == 429 and "Too many failed sign-in attempts" in right.content.decode()
    assert "_auth_user_id" not in client.session

    # Another address may still sign in as dana; the lockout is per username and address.
    other = sign_in(client, url, PASSWORD, ip="198.51.100.4")
    assert other.status_code == 302
    assert client.session["_auth_user_id"] == str(person.pk)


def test_a_success_before_the_limit_resets_the_count(client, person, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "/accounts/login/", "wrong")
    assert sign_in(client, "/accounts/login/", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "/accounts/login/", "wrong").status_code == 200
    assert sign_in(client, "/accounts/login/", PASSWORD).status_code == 302


def test_forwarded_for_is_ignored_unless_a_proxy_is_declared(client, person, settings):
    settings.BEHIND_PROXY = False
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "/accounts/login/", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert sign_in(client, "/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


def test_behind_a_proxy_the_address_is_the_one_it_appended(client, person, settings):
    settings.BEHIND_PROXY = True
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "/accounts/login/", "wrong", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9")
    assert sign_in(client, "/accounts/login/", PASSWORD, ip="10.0.0.2",
                   HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert sign_in(client, "/accounts/login/", PASSWORD, ip="10.0.0.2",
                   HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1").status_code == 302
    assert get_user_model().objects.filter(pk=person.pk).exists()
