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
import copy
import logging
import re
import uuid
from datetime import timedelta

from django.core import signing
from django.db import IntegrityError
from django.db.models import Exists
from django.http import HttpRequest
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
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
                        serving_id: uuid.UUID, event_type: str, signer: signing.TimestampSigner | None = None) -> str:
    """The signed value of one tracking URL: URL-safe as it is (digits, hex, dots, base64url).

    Pass one ``signer`` for the URLs of one answer: making a signer costs as much as signing.
    """
    value = f"{organization_id}.{clip_id}.{profile_id or ''}.{segment_id or ''}.{serving_id.hex}.{event_type}"
    return (signer or _signer()).sign(value)


_tracking_paths: dict[str, str] = {}


def _tracking_path() -> str:
    """The pixel's path, resolved once per script prefix (``reverse`` costs as much as the lookup)."""
    prefix = get_script_prefix()
    path = _tracking_paths.get(prefix)
    if path is None:
        path = _tracking_paths[prefix] = reverse("api:vast-tracking")
    return path


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


_TAGS = {name: _tag(name) for name in (
    "Ad", "InLine", "AdSystem", "Impression", "AdServingId", "AdTitle", "Creatives", "Creative", "UniversalAdId",
    "Linear", "TrackingEvents", "Tracking", "Duration", "MediaFiles", "MediaFile", "VideoClicks", "ClickTracking",
    "ClickThrough", "Expires")}


def _child(parent, name: str, text: str | None = None, **attrs) -> etree._Element:
    element = etree.SubElement(parent, _TAGS[name], attrs)
    if text is not None:
        element.text = text
    return element


def _uri_text(url: str):
    """A URI element's text: in CDATA as VAST asks (plain escaped text when CDATA cannot hold it)."""
    return etree.CDATA(url) if "]]>" not in url else url


def _root() -> etree._Element:
    return etree.Element(_tag("VAST"), {"version": VAST_VERSION}, nsmap={None: VAST_NS})


def _serialize(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def vast_empty() -> bytes:
    """No ad: ``<VAST version="4.2"/>``, the VAST way to say there is nothing to play."""
    return _serialize(_root())


def _skeleton() -> tuple[etree._Element, dict[str, int]]:
    """The answer's fixed structure in the schema's order (AdDefinitionBase, then Inline), built once.

    Each answer is a copy with its values filled in: copying a tree is done in C, while building
    one element by element from Python would cost as much as the clip lookup itself. Returns the
    tree and the position (in document order) of every element an answer fills.
    """
    slots: dict[str, etree._Element] = {}
    root = _root()
    slots["Ad"] = ad = _child(root, "Ad")
    inline = _child(ad, "InLine")
    _child(inline, "AdSystem", AD_SYSTEM)
    slots["Impression"] = _child(inline, "Impression")
    slots["AdServingId"] = _child(inline, "AdServingId")
    slots["AdTitle"] = _child(inline, "AdTitle")
    creatives = _child(inline, "Creatives")
    slots["Creative"] = creative = _child(creatives, "Creative", sequence="1")
    slots["UniversalAdId"] = _child(creative, "UniversalAdId", idRegistry="unknown")
    linear = _child(creative, "Linear")
    tracking = _child(linear, "TrackingEvents")
    for vast_event in LINEAR_TRACKING:
        slots[vast_event] = _child(tracking, "Tracking", event=vast_event)
    slots["Duration"] = _child(linear, "Duration")
    media = _child(linear, "MediaFiles")
    slots["MediaFile"] = _child(media, "MediaFile", delivery="progressive", type="video/mp4")
    slots["VideoClicks"] = clicks = _child(linear, "VideoClicks")
    slots["ClickTracking"] = _child(clicks, "ClickTracking")
    slots["ClickThrough"] = _child(clicks, "ClickThrough")
    slots["Expires"] = _child(inline, "Expires")
    order = {element: index for index, element in enumerate(root.iter())}
    return root, {name: order[element] for name, element in slots.items()}


_SKELETON, _SLOTS = _skeleton()


class _AnswerSigner(signing.TimestampSigner):
    """The signer of one answer's seven URLs: the same tokens as TimestampSigner's (they unsign with
    it), for a fraction of the cost. The URLs share one timestamp, taken once; and the HMAC is keyed
    once, by Django's own ``salted_hmac``, then copied per URL instead of derived again each time.
    """

    def __init__(self):
        super().__init__(salt=_SALT)
        self._timestamp = super().timestamp()
        self._keyed = salted_hmac(self.salt + "signer", b"", self.key, algorithm=self.algorithm)

    def timestamp(self) -> str:
        return self._timestamp

    def signature(self, value, key=None) -> str:
        if key is not None:
            return super().signature(value, key)
        mac = self._keyed.copy()
        mac.update(value.encode())
        return signing.b64_encode(mac.digest()).decode()


def vast_document(*, served: ServedClip | None, organization_id: int, request: HttpRequest) -> bytes:
    """The VAST 4.2 answer for a served clip (one InLine linear ad), or the empty one for None."""
    if served is None:
        return vast_empty()
    serving_id = uuid.uuid4()
    pixel_base = request.build_absolute_uri(_tracking_path()) + "?t="
    signer = _AnswerSigner()

    def pixel(event_type: str) -> etree.CDATA:
        return etree.CDATA(pixel_base + vast_tracking_token(
            organization_id=organization_id, clip_id=served.clip_id, profile_id=served.profile_id,
            segment_id=served.segment_id, serving_id=serving_id, event_type=event_type, signer=signer))

    root = copy.deepcopy(_SKELETON)
    elements = list(root.iter())
    slot = {name: elements[index] for name, index in _SLOTS.items()}
    slot["Ad"].set("id", f"clip-{served.clip_id}")
    slot["Impression"].set("id", serving_id.hex)
    slot["Impression"].text = pixel(Event.Type.IMPRESSION)
    slot["AdServingId"].text = serving_id.hex
    slot["AdTitle"].text = _NOT_XML.sub("", served.campaign_name) or f"clip {served.clip_id}"
    slot["Creative"].set("id", str(served.clip_id))
    slot["UniversalAdId"].text = f"clip-{served.clip_id}"
    for vast_event, event_type in LINEAR_TRACKING.items():
        slot[vast_event].text = pixel(event_type)
    slot["Duration"].text = _duration(served.num_frames / served.fps if served.fps else 0)
    media = slot["MediaFile"]
    media.set("id", f"clip-{served.clip_id}-mp4")
    media.set("width", str(served.width))
    media.set("height", str(served.height))
    media.text = _uri_text(served.url)
    slot["ClickTracking"].text = pixel(Event.Type.CLICK)
    if served.cta_url:
        slot["ClickThrough"].text = _uri_text(served.cta_url)
    else:
        slot["VideoClicks"].remove(slot["ClickThrough"])
    # The media URL stops working at expires_at: a player must not cache the answer past it.
    slot["Expires"].text = str(max(0, int((served.expires_at - timezone.now()).total_seconds())))
    return _serialize(root)
