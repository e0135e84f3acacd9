"""The client's address, one rule for login lockout (django-axes) and API rate limits.

Without a proxy in front (DJANGO_BEHIND_PROXY off) it is REMOTE_ADDR, and X-Forwarded-For is
ignored: a client could write anything there and get a fresh counter per request. Behind one
proxy it is the last X-Forwarded-For entry, the one that proxy appended.
"""
import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The address, or None when the request has none (a request made up in code)."""
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if _is_address(last):
            return last
    return request.META.get("REMOTE_ADDR") or None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
