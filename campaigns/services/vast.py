"""VAST 4.2 for standard video players: the document for a viewer's clip, and its tracking URLs.

A player asks ``GET /api/v1/campaigns/{id}/vast?profile=`` and gets one ``InLine`` ad: the clip
the JSON endpoint would serve (same lookup, same variant), with the impression, ``start``, quartile,
``complete`` and click-tracking URLs pointing at this platform's own pixel. Each of those URLs is
signed (Django's TimestampSigner) over what it records: the organization, clip, viewer and segment,
the answer's ``AdServingId`` and the event type, so a player needs no key and nobody can make one
record anything else. The unique (serving id, event type) constraint on Event makes each URL count
once however often it is fired; an altered or expired one records nothing.

The XML is built with lxml, never by formatting strings, so a campaign's name or call-to-action
URL cannot break out of its element.
"""
import logging
import re
import uuid
from datetime import timedelta

from django.core import signing
from django.db import IntegrityError
from django.db.models import Exists
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from campaigns.models import Clip, Event, Profile

from .serving import ServedClip, event_store

logger = logging.getLogger(__name__)

VAST_VERSION = "4.2"
VAST_NS = "http://www.iab.com/VAST"
AD_SYSTEM = "adplatform"
# How long a VAST answer's tracking URLs record: a player fires them while it plays the ad, which
# is minutes after the request; a day leaves room for prefetching players and clock skew.
TRACKING_MAX_AGE = timedelta(days=1)
_SALT = "campaigns.vast.tracking"
# The player's event names (VAST) and the platform's Event types, in the funnel's order.
LINEAR_TRACKING = {
    "start": Event.Type.START,
    "firstQuartile": Event.Type.FIRST_QUARTILE,
    "midpoint": Event.Type.MIDPOINT,
    "thirdQuartile": Event.Type.THIRD_QUARTILE,
    "complete": Event.Type.COMPLETE,
}
# A token is short (six dot-separated fields, a timestamp and a signature); anything much longer is junk.
MAX_TOKEN_CHARS = 300
# Characters XML 1.0 cannot hold at all (lxml refuses them); dropped from free text such as a title.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The transparent 1×1 GIF every tracking URL answers.
PIXEL_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
             b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def vast_tracking_token(*, organization_id: int, clip_id: int, profile_id: int | None, segment_id: int | None,
                        serving_id: uuid.UUID, event_type: str) -> str:
    """The signed value of one tracking URL: URL-safe as it is (digits, hex, dots, base64url)."""
    value = f"{organization_id}.{clip_id}.{profile_id or ''}.{segment_id or ''}.{serving_id.hex}.{event_type}"
    return _signer().sign(value)


def vast_tracking_record(*, token: str) -> bool:
    """Record the event a tracking URL stands for, once; False when it records nothing.

    Nothing is recorded for a token that was altered, forged, expired, or already recorded, nor
    for one whose clip or viewer has since been deleted.
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        return False
    try:
        value = _signer().unsign(token, max_age=TRACKING_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one too
        logger.info("vast tracking URL with a bad or expired signature: nothing recorded")
        return False
    organization_id, clip_id, profile_id, segment_id, serving_hex, event_type = value.split(".")
    organization_id, clip_id = int(organization_id), int(clip_id)
    profile_id = int(profile_id) if profile_id else None
    # The clip and the viewer must still exist: an erased viewer's late pixels record nothing.
    alive = Clip.objects.filter(pk=clip_id, organization_id=organization_id)
    if profile_id is not None:
        alive = alive.filter(Exists(Profile.objects.filter(pk=profile_id, organization_id=organization_id)))
    if not alive.exists():
        return False
    try:
        event_store(organization_id=organization_id, clip_id=clip_id, profile_id=profile_id,
                    segment_id=int(segment_id) if segment_id else None,
                    event_type=event_type, serving_id=uuid.UUID(hex=serving_hex))
    except IntegrityError:  # fired before (unique per serving id and type), or its rows went meanwhile
        return False
    return True


def _duration(seconds: float) -> str:
    """VAST's HH:MM:SS.mmm (XML Schema's xs:time)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _tag(name: str) -> str:
    return f"{{{VAST_NS}}}{name}"


def _child(parent, name: str, text: str | None = None, **attrs) -> etree._Element:
    element = etree.SubElement(parent, _tag(name), {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _uri(parent, name: str, url: str, **attrs) -> etree._Element:
    """A URI element, its URL in CDATA as VAST asks (plain escaped text when CDATA cannot hold it)."""
    element = _child(parent, name, **attrs)
    element.text = etree.CDATA(url) if "]]>" not in url else url
    return element


def _root() -> etree._Element:
    return etree.Element(_tag("VAST"), {"version": VAST_VERSION}, nsmap={None: VAST_NS})


def _serialize(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def vast_empty() -> bytes:
    """No ad: ``<VAST version="4.2"/>``, the VAST way to say there is nothing to play."""
    return _serialize(_root())


def vast_document(*, served: ServedClip | None, organization_id: int, request: HttpRequest) -> bytes:
    """The VAST 4.2 answer for a served clip (one InLine linear ad), or the empty one for None."""
    if served is None:
        return vast_empty()
    serving_id = uuid.uuid4()
    pixel_base = request.build_absolute_uri(reverse("api:vast-tracking")) + "?t="

    def pixel(event_type: str) -> str:
        return pixel_base + vast_tracking_token(
            organization_id=organization_id, clip_id=served.clip_id, profile_id=served.profile_id,
            segment_id=served.segment_id, serving_id=serving_id, event_type=event_type)

    root = _root()
    ad = _child(root, "Ad", id=f"clip-{served.clip_id}")
    inline = _child(ad, "InLine")
    # The order below is the schema's (AdDefinitionBase, then Inline): players validate it.
    _child(inline, "AdSystem", AD_SYSTEM)
    _uri(inline, "Impression", pixel(Event.Type.IMPRESSION), id=serving_id.hex)
    _child(inline, "AdServingId", serving_id.hex)
    _child(inline, "AdTitle", _NOT_XML.sub("", served.campaign_name) or f"clip {served.clip_id}")
    creatives = _child(inline, "Creatives")
    creative = _child(creatives, "Creative", id=str(served.clip_id), sequence=1)
    _child(creative, "UniversalAdId", f"clip-{served.clip_id}", idRegistry="unknown")
    linear = _child(creative, "Linear")
    tracking = _child(linear, "TrackingEvents")
    for vast_event, event_type in LINEAR_TRACKING.items():
        _uri(tracking, "Tracking", pixel(event_type), event=vast_event)
    _child(linear, "Duration", _duration(served.num_frames / served.fps if served.fps else 0))
    media = _child(linear, "MediaFiles")
    _uri(media, "MediaFile", served.url, id=f"clip-{served.clip_id}-mp4", delivery="progressive",
         type="video/mp4", width=served.width, height=served.height)
    clicks = _child(linear, "VideoClicks")
    _uri(clicks, "ClickTracking", pixel(Event.Type.CLICK))
    if served.cta_url:
        _uri(clicks, "ClickThrough", served.cta_url)
    # The media URL stops working at expires_at: a player must not cache the answer past it.
    _child(inline, "Expires", str(max(0, int((served.expires_at - timezone.now()).total_seconds()))))
    return _serialize(root)
