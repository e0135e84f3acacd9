"""Serving: the clip a viewer sees in a campaign, and the events apps report back.

The hot path (``clip_for_viewer``) loads no model and embeds nothing: the viewer's segment was
decided when their profile was embedded (a SegmentMembership row). In the steady state it is one
indexed query, membership ⋈ profile ⋈ campaign ⋈ segment ⋈ remembered clip; a viewer seen for
the first time costs one more read (the approved variants) and one write (the chosen one).

Choosing among approved variants: Thompson sampling on each clip's own counters, Beta(1 + successes,
1 + impressions − successes), where a success is what the campaign's ``objective`` says (a click,
or a completed view), so a variant that does better per impression wins more new viewers over time
while the others still get some; the choice is remembered on the membership, so a viewer keeps
seeing the same variant. Viewers without a membership (unknown, or not yet embedded) get a variant
of the fallback segment picked by a hash of their id: the same one every time, with no write.
"""
import hashlib
import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection, transaction
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


@dataclass(frozen=True)
class ServedClip:
    clip_id: int
    width: int
    height: int
    num_frames: int
    fps: int
    url: str
    poster_url: str
    expires_at: datetime
    segment_id: int | None  # the viewer's segment; None for a viewer without one
    segment_name: str | None
    fallback: bool  # True when the clip is not of the viewer's own segment
    # For the VAST answer, read by the same lookup (no extra query).
    campaign_name: str = ""
    cta_url: str = ""
    profile_id: int | None = None  # None for a viewer the platform does not know


# The hot lookup, written out once: campaign ⟕ viewer ⟕ membership ⟕ segment ⟕ remembered clip.
# Raw SQL because here the ORM's query compilation would cost more than the query itself. Every
# join is on a primary key or a unique index (profile: organization + external_id; membership:
# profile + campaign). No row: no such campaign in this organization.
_LOOKUP_SQL = """
SELECT c.status, m.id, m.segment_id, m.clip_id, s.name,
       k.status, k.segment_id, k.width, k.height, k.num_frames, k.fps, k.video, k.poster,
       c.name, c.cta_url, c.objective, p.id
FROM {campaign} c
LEFT JOIN {profile} p ON p.organization_id = c.organization_id AND p.external_id = %s
LEFT JOIN {membership} m ON m.profile_id = p.id AND m.campaign_id = c.id
LEFT JOIN {segment} s ON s.id = m.segment_id
LEFT JOIN {clip} k ON k.id = m.clip_id
WHERE c.id = %s AND c.organization_id = %s
""".format(campaign=Campaign._meta.db_table, profile=Profile._meta.db_table,
           membership=SegmentMembership._meta.db_table, segment=Segment._meta.db_table, clip=Clip._meta.db_table)


@contextmanager
def _hot_cursor():
    """A cursor for the serving path's few queries; on PostgreSQL they run as prepared statements.

    Planning the lookup's five-way join takes longer than running it (0.3 ms against 0.05 ms
    prepared, measured here). Django turns psycopg's prepared statements off, for connection
    poolers in transaction mode, and its default cursors bind parameters client-side, which never
    prepares; so preparing is switched on for this connection's server-binding cursors only, and
    only this function makes one. Behind PgBouncer, use 1.21 or newer with max_prepared_statements
    set, or set SERVE_PREPARED_STATEMENTS = False.
    """
    if connection.vendor != "postgresql" or not settings.SERVE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = 0  # prepare on first use (psycopg keeps up to 100 per connection)
    cursor = ServerBindingCursor(raw)
    # Django's own wrapper: the query is counted and logged like any other.
    wrapped = connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)
    with wrapped:
        yield wrapped


def _fetch_all(sql: str, params: list) -> list[tuple]:
    with _hot_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# Remembering a viewer's variant: conditional, so that of two first requests racing the first
# choice stays; and on PostgreSQL committed without waiting for the disk (see
# commit_without_waiting_for_disk), set inside the statement itself so that the write stays one
# round trip instead of four (BEGIN, SET LOCAL, UPDATE, COMMIT).
_REMEMBER_SQL = {
    "postgresql": """
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE {membership} SET clip_id = %s
WHERE id = %s AND clip_id IS NOT DISTINCT FROM %s AND EXISTS (SELECT 1 FROM relaxed)
""".format(membership=SegmentMembership._meta.db_table),
}


def _remember(*, membership_id: int, previous: int | None, chosen: int) -> bool:
    sql = _REMEMBER_SQL.get(connection.vendor)
    if sql is None:
        return bool(SegmentMembership.objects.filter(pk=membership_id, clip_id=previous).update(clip_id=chosen))
    with _hot_cursor() as cursor:
        cursor.execute(sql, [chosen, membership_id, previous])
        return cursor.rowcount == 1


def clip_for_viewer(*, organization: Organization, campaign_id: int, external_id: str,
                    request: HttpRequest | None = None) -> ServedClip:
    """An approved clip for this viewer in this campaign, with signed URLs.

    404 ``not_found`` for a campaign that is not this organization's; 404 ``no_clip`` when the
    campaign is paused or archived, or has no approved clip.
    """
    external_id = profile_clean_external_id(external_id=external_id, field="profile")
    if not 0 < campaign_id < 2**62:  # beyond the column's range: cannot exist
        raise NotFound("no such campaign in this organization.", code="not_found")

    # 1. Campaign, the viewer's membership, segment and remembered clip: one query.
    rows = _fetch_all(_LOOKUP_SQL, [external_id, campaign_id, organization.pk])
    if not rows:
        raise NotFound("no such campaign in this organization.", code="not_found")
    (campaign_status, membership_id, segment_id, remembered_id, segment_name,
     clip_status, clip_segment_id, width, height, num_frames, fps, video, poster,
     campaign_name, cta_url, objective, profile_id) = rows[0]
    viewer = {"segment_id": segment_id, "segment_name": segment_name, "campaign_name": campaign_name,
              "cta_url": cta_url, "profile_id": profile_id, "request": request}
    if campaign_status in NOT_SERVING:
        raise NotFound(NOT_SERVING[campaign_status], code="no_clip", details={"campaign_status": campaign_status})

    # 2. Steady state: the remembered variant, still approved and still of the viewer's segment.
    if remembered_id is not None and clip_status == Clip.Status.APPROVED and clip_segment_id == segment_id:
        return _served(clip_id=remembered_id, width=width, height=height, num_frames=num_frames, fps=fps,
                       video=video, poster=poster, fallback=False, **viewer)

    # 3. First visit (or the remembered clip was withdrawn): the candidates, then a choice.
    candidates, fallback = _candidates(organization, campaign_id, segment_id)
    if not candidates:
        raise NotFound("this campaign has no approved clip yet; clips are served once a reviewer approves them.",
                       code="no_clip", details={"campaign_status": campaign_status})
    if membership_id is None:
        chosen = _by_hash(candidates, campaign_id, external_id)
    else:
        by_id = {clip.id: clip for clip in candidates}
        chosen = by_id.get(remembered_id)
        if chosen is None:
            chosen = thompson_choice(candidates, objective=objective)
            if not _remember(membership_id=membership_id, previous=remembered_id, chosen=chosen.id):
                current = SegmentMembership.objects.filter(pk=membership_id).values_list("clip_id", flat=True).first()
                chosen = by_id.get(current, chosen)
    return _served(clip_id=chosen.id, width=chosen.width, height=chosen.height, num_frames=chosen.num_frames,
                   fps=chosen.fps, video=chosen.video, poster=chosen.poster, fallback=fallback, **viewer)


@contextmanager
def commit_without_waiting_for_disk():
    """A transaction whose commit does not wait for the WAL flush (PostgreSQL: synchronous_commit off).

    For the serving path's writes only (a remembered variant, an event): a database crash may lose
    the last fraction of a second of them, which costs a viewer a fresh draw or a report one count,
    while waiting for the disk on every one would cost milliseconds per request (3 ms here, against
    0.1 ms). Consistency is unaffected; other writes keep full durability.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


class Candidate(NamedTuple):
    """An approved clip as the choice needs it."""

    id: int
    segment_id: int | None
    width: int
    height: int
    num_frames: int
    fps: int
    video: str
    poster: str
    impressions: int
    clicks: int
    completes: int


# The viewer's segment's approved clips first; then, by segment position, the fallback's. One
# query for both cases, using the (campaign, status, segment) index.
_CANDIDATES_SQL = """
SELECT k.id, k.segment_id, k.width, k.height, k.num_frames, k.fps, k.video, k.poster, k.impressions, k.clicks,
       k.completes
FROM {clip} k
LEFT JOIN {segment} s ON s.id = k.segment_id
WHERE k.campaign_id = %s AND k.organization_id = %s AND k.status = %s
ORDER BY CASE WHEN k.segment_id = %s THEN 0 ELSE 1 END, s.position NULLS LAST, k.segment_id NULLS LAST, k.id
LIMIT {rows}
""".format(clip=Clip._meta.db_table, segment=Segment._meta.db_table, rows=FALLBACK_ROWS)


def _candidates(organization: Organization, campaign_id: int, segment_id: int | None) -> tuple[list[Candidate], bool]:
    """Approved clips of the viewer's segment; else of the campaign's fallback: (clips, is_fallback).

    The fallback is the approved clips of the first segment by position that has any (segment
    clustering puts the biggest audience first), else any approved clip of the campaign.
    """
    rows = [Candidate(*row) for row in _fetch_all(
        _CANDIDATES_SQL, [campaign_id, organization.pk, Clip.Status.APPROVED.value, segment_id or 0])]
    if not rows:
        return [], True
    first_segment = rows[0].segment_id
    return [c for c in rows if c.segment_id == first_segment], not (segment_id and first_segment == segment_id)


def thompson_choice(clips: list, rng: random.Random | None = None, *, objective: str = Campaign.Objective.CLICKS):
    """One draw from each clip's Beta(1 + successes, 1 + failures) posterior; the highest wins.

    A success is a click, or a completed view when the campaign's objective is ``completes``;
    either way counted per impression.
    """
    rng = rng or random
    field = "completes" if objective == Campaign.Objective.COMPLETES else "clicks"

    def draw(clip) -> float:
        wins = getattr(clip, field)
        return rng.betavariate(1 + wins, 1 + max(0, clip.impressions - wins))

    return max(clips, key=draw)


def _by_hash(clips: list[Candidate], campaign_id: int, external_id: str) -> Candidate:
    digest = hashlib.blake2b(f"{campaign_id}:{external_id}".encode(), digest_size=8).digest()
    return clips[int.from_bytes(digest, "big") % len(clips)]


def _served(*, video: str, poster: str, request: HttpRequest | None, **fields) -> ServedClip:
    url, expires_at = signed_url_reused(video, request=request)
    poster_url, poster_expires = signed_url_reused(poster, request=request)
    return ServedClip(url=url, poster_url=poster_url, expires_at=min(expires_at, poster_expires), **fields)


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

# Each event type's counter on its clip; the order is the viewing funnel's.
COUNTERS = {
    Event.Type.IMPRESSION: "impressions",
    Event.Type.START: "starts",
    Event.Type.FIRST_QUARTILE: "first_quartiles",
    Event.Type.MIDPOINT: "midpoints",
    Event.Type.THIRD_QUARTILE: "third_quartiles",
    Event.Type.COMPLETE: "completes",
    Event.Type.CLICK: "clicks",
}


def event_record(*, organization: Organization, clip_id, profile: str, event_type: str) -> Event:
    """Store one event of a clip by a viewer (impression, start, a quartile, complete, click), and
    bump the clip's counter.

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
    return event_store(organization_id=organization.pk, clip_id=clip["id"], profile_id=viewer["id"] if viewer else None,
                       segment_id=viewer["segment_id"] if viewer else None, event_type=event_type)


def event_store(*, organization_id: int, clip_id: int, profile_id: int | None, segment_id: int | None,
                event_type: str, serving_id=None) -> Event:
    """The one write of an event: its row and its clip's counter, together or not at all.

    With a ``serving_id`` (a VAST answer's tracking URL) a second report of the same type raises
    IntegrityError and leaves nothing behind: the unique constraint makes each URL count once.
    """
    field = COUNTERS[event_type]
    with commit_without_waiting_for_disk():
        event = Event.objects.create(organization_id=organization_id, clip_id=clip_id, profile_id=profile_id,
                                     segment_id=segment_id, type=event_type, serving_id=serving_id)
        Clip.objects.filter(pk=clip_id).update(**{field: F(field) + 1})
    return event
