"""Serving: the clip a viewer sees in a campaign, and the events apps report back.

The hot path (``clip_for_viewer``) loads no model and embeds nothing: the viewer's segment was
decided when their profile was embedded (a SegmentMembership row). In the steady state it is one
indexed query, membership ⋈ profile ⋈ campaign ⋈ segment ⋈ remembered clip; a viewer seen for
the first time costs one more read (the approved variants) and one write (the chosen one).

Choosing among approved variants: Thompson sampling on each clip's own counters, Beta(1 + clicks,
1 + impressions − clicks), so a variant with better click-through wins more new viewers over time
while the others still get some; the choice is remembered on the membership, so a viewer keeps
seeing the same variant. Viewers without a membership (unknown, or not yet embedded) get a variant
of the fallback segment picked by a hash of their id: the same one every time, with no write.
"""
import hashlib
import random
import threading
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.http import HttpRequest
from django.utils import timezone

from campaigns.errors import NotFound
from campaigns.files import signed_url
from campaigns.models import Campaign, Clip, Event, Organization, Profile, Segment, SegmentMembership

from .profiles import profile_clean_external_id

# Campaigns in these states answer no clip: the marketer stopped them.
NOT_SERVING = {
    Campaign.Status.PAUSED: "this campaign is paused; it serves clips again once it is set live.",
    Campaign.Status.ARCHIVED: "this campaign is archived and serves no clips.",
}
# Enough rows to hold the first segment's variants; more would only cost transfer time.
FALLBACK_ROWS = 64
# Only the columns a served clip needs (prompts can be long).
CLIP_FIELDS = ("id", "organization_id", "campaign_id", "segment_id", "status", "width", "height", "num_frames",
               "fps", "video", "poster", "impressions", "clicks")


@dataclass(frozen=True)
class ServedClip:
    clip: Clip
    segment: Segment | None
    url: str
    poster_url: str
    expires_at: datetime
    fallback: bool  # True when the clip is not of the viewer's own segment


def clip_for_viewer(*, organization: Organization, campaign_id: int, external_id: str,
                    request: HttpRequest | None = None) -> ServedClip:
    """An approved clip for this viewer in this campaign, with signed URLs.

    404 ``not_found`` for a campaign that is not this organization's; 404 ``no_clip`` when the
    campaign is paused or archived, or has no approved clip.
    """
    external_id = profile_clean_external_id(external_id=external_id, field="profile")

    # 1. The viewer's membership, with its campaign, segment and remembered clip: one query.
    membership = (
        SegmentMembership.objects
        .filter(organization=organization, campaign_id=campaign_id, profile__organization=organization,
                profile__external_id=external_id)
        .select_related("campaign", "segment", "clip")
        .only("id", "segment_id", "clip_id", "campaign__id", "campaign__status", "segment__id", "segment__name",
              *(f"clip__{name}" for name in CLIP_FIELDS))
        .first()
    )
    if membership is not None:
        campaign = membership.campaign
    else:
        campaign = Campaign.objects.filter(organization=organization, pk=campaign_id).only("id", "status").first()
        if campaign is None:
            raise NotFound("no such campaign in this organization.", code="not_found")
    if campaign.status in NOT_SERVING:
        raise NotFound(NOT_SERVING[campaign.status], code="no_clip", details={"campaign_status": campaign.status})

    # 2. Steady state: the remembered variant, still approved and still of the viewer's segment.
    segment = membership.segment if membership else None
    remembered = membership.clip if membership else None
    if remembered is not None and remembered.status == Clip.Status.APPROVED \
            and remembered.segment_id == membership.segment_id:
        return _served(remembered, segment, fallback=False, request=request)

    # 3. First visit (or the remembered clip was withdrawn): the candidates, then a choice.
    candidates, fallback = _candidates(organization, campaign.pk, membership.segment_id if membership else None)
    if not candidates:
        raise NotFound("this campaign has no approved clip yet; clips are served once a reviewer approves them.",
                       code="no_clip", details={"campaign_status": campaign.status})
    if membership is None:
        return _served(_by_hash(candidates, campaign.pk, external_id), None, fallback=True, request=request)
    by_id = {clip.pk: clip for clip in candidates}
    if membership.clip_id in by_id:
        return _served(by_id[membership.clip_id], segment, fallback=fallback, request=request)
    chosen = thompson_choice(candidates)
    # Conditional write: of two first requests racing, the first choice stays for good.
    if not SegmentMembership.objects.filter(pk=membership.pk, clip_id=membership.clip_id).update(clip=chosen):
        current = SegmentMembership.objects.filter(pk=membership.pk).values_list("clip_id", flat=True).first()
        chosen = by_id.get(current, chosen)
    return _served(chosen, segment, fallback=fallback, request=request)


def _candidates(organization: Organization, campaign_id: int, segment_id: int | None) -> tuple[list[Clip], bool]:
    """Approved clips of the viewer's segment; else of the campaign's fallback: (clips, is_fallback).

    The fallback is the approved clips of the first segment by position that has any (segment
    clustering puts the biggest audience first), else any approved clip of the campaign.
    """
    approved = Clip.objects.filter(organization=organization, campaign_id=campaign_id,
                                   status=Clip.Status.APPROVED).only(*CLIP_FIELDS)
    if segment_id is not None:
        own = list(approved.filter(segment_id=segment_id).order_by("id"))
        if own:
            return own, False
    rows = list(approved.order_by(F("segment__position").asc(nulls_last=True), F("segment_id").asc(nulls_last=True),
                                  "id")[:FALLBACK_ROWS])
    return [clip for clip in rows if rows and clip.segment_id == rows[0].segment_id], True


def thompson_choice(clips: list[Clip], rng: random.Random | None = None) -> Clip:
    """One draw from each clip's Beta(1 + clicks, 1 + non-clicks) posterior; the highest wins."""
    rng = rng or random
    return max(clips, key=lambda c: rng.betavariate(1 + c.clicks, 1 + max(0, c.impressions - c.clicks)))


def _by_hash(clips: list[Clip], campaign_id: int, external_id: str) -> Clip:
    digest = hashlib.blake2b(f"{campaign_id}:{external_id}".encode(), digest_size=8).digest()
    return clips[int.from_bytes(digest, "big") % len(clips)]


def _served(clip: Clip, segment: Segment | None, *, fallback: bool, request: HttpRequest | None) -> ServedClip:
    url, expires_at = signed_url_reused(clip.video.name, request=request)
    poster_url, poster_expires = signed_url_reused(clip.poster.name, request=request)
    return ServedClip(clip=clip, segment=segment, url=url, poster_url=poster_url,
                      expires_at=min(expires_at, poster_expires), fallback=fallback)


# --- signed URLs, reused while they have most of their life ahead ----------------------------------

_urls: dict[tuple, tuple[str, datetime]] = {}
_urls_lock = threading.Lock()
_MAX_URLS = 20_000


def signed_url_reused(name: str, *, request: HttpRequest | None = None) -> tuple[str, datetime]:
    """``signed_url``, but the same URL for every viewer of a file while it has over half its TTL left.

    Signing (an S3 presign or an HMAC) costs more than the rest of a served request, and one URL
    per file and half-hour also lets browsers and CDNs cache the video.
    """
    # LazyObject proxies __class__ and attributes to the configured storage.
    key = (default_storage.__class__.__name__,
           getattr(default_storage, "bucket_name", None) or getattr(default_storage, "location", ""),
           request.get_host() if request else "", request.scheme if request else "", name)
    now = timezone.now()
    cached = _urls.get(key)
    if cached is not None and cached[1] - now > settings.SIGNED_URL_TTL / 2:
        return cached
    fresh = signed_url(name, request=request)
    with _urls_lock:
        if len(_urls) >= _MAX_URLS:
            _urls.clear()  # many files or hosts: start over rather than grow without bound
        _urls[key] = fresh
    return fresh


def signed_urls_forget() -> None:
    """Drop every reused URL (tests, or after rotating storage credentials)."""
    with _urls_lock:
        _urls.clear()


# --- events --------------------------------------------------------------------------------------

COUNTERS = {Event.Type.IMPRESSION: "impressions", Event.Type.CLICK: "clicks", Event.Type.COMPLETE: "completes"}


@transaction.atomic
def event_record(*, organization: Organization, clip_id, profile: str, event_type: str) -> Event:
    """Store one impression, click or complete of a clip by a viewer, and bump the clip's counter.

    The clip must be this organization's (another organization's clip is refused exactly like a
    clip that does not exist: 400 naming ``clip_id``). An unknown viewer's event still counts,
    without a profile.
    """
    if event_type not in COUNTERS:
        raise ValidationError({"type": f"type must be one of {', '.join(COUNTERS)}; got {event_type!r}."})
    if isinstance(clip_id, bool) or not isinstance(clip_id, int) or not 0 < clip_id < 2**62:
        raise ValidationError({"clip_id": f"clip_id must be a clip's id (a positive integer); got {clip_id!r}."})
    external_id = profile_clean_external_id(external_id=profile, field="profile")
    clip = Clip.objects.filter(organization=organization, pk=clip_id).values("id", "campaign_id").first()
    if clip is None:
        raise ValidationError({"clip_id": f"there is no clip {clip_id} in this organization."})
    # The viewer and their segment in the clip's campaign, in one query.
    viewer = (
        Profile.objects.filter(organization=organization, external_id=external_id)
        .annotate(segment_id=Subquery(SegmentMembership.objects.filter(
            profile=OuterRef("pk"), campaign_id=clip["campaign_id"]).values("segment_id")[:1]))
        .values("id", "segment_id").first()
    )
    event = Event.objects.create(organization=organization, clip_id=clip["id"],
                                 profile_id=viewer["id"] if viewer else None,
                                 segment_id=viewer["segment_id"] if viewer else None, type=event_type)
    field = COUNTERS[event_type]
    Clip.objects.filter(pk=clip["id"]).update(**{field: F(field) + 1})
    return event
