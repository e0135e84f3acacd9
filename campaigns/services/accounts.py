"""Organizations, memberships and API keys."""
import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from campaigns.models import ApiKey, Membership, Organization

KEY_PREFIX = "adp_"
# Writing last_used_at on every request would turn each API read into a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def organization_get_or_create(*, slug: str, name: str = "") -> Organization:
    clean = slugify(slug)
    if not clean or clean != slug:
        raise ValidationError({"slug": f"'{slug}' is not a slug: use lowercase letters, digits and hyphens."})
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return org


def membership_set(*, user, organization: Organization, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"'{role}' is not a role; allowed: {', '.join(Membership.Role.values)}."})
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    return membership


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, organization: Organization, scopes: list[str], name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned once and only its hash is stored."""
    allowed = ApiKey.Scope.values
    bad = [s for s in scopes if s not in allowed]
    if not scopes or bad:
        raise ValidationError({"scopes": f"scopes must be a non-empty subset of {allowed}; got {scopes}."})
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        organization=organization,
        name=name,
        prefix=raw[: len(KEY_PREFIX) + 6],
        hashed_key=_hash(raw),
        scopes=sorted(set(scopes)),
    )
    key.full_clean()
    key.save()
    return key, raw


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The live key for this raw key, or None; notes when it was last used."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 200:
        return None
    key = (
        ApiKey.objects.select_related("organization")
        .filter(hashed_key=_hash(raw_key), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
