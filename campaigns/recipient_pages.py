"""A recipient's personal landing page (no login: the token in the link is the key), its call to
action, and the recipients CSV that lists every page's link.

Opening the page records an impression of the viewer's clip; the call to action records a click and
redirects to the campaign's ``cta_url`` (http or https only). A revoked or unknown token gets a
plain 404 page. The page speaks the viewer's language: their profile's ``locale`` (or
``language``) attribute when the platform has it, else their browser's. The token must not leak
to the advertiser's site: the page and the redirect send no Referer.
"""
import csv
import re
from contextlib import nullcontext
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_GET

from campaigns import selectors, services
from campaigns.errors import NotFound
from campaigns.models import Campaign

_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
DEFAULT_COLOURS = ("#1F2937", "#F9FAFB")
# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
# external_id cannot hold "(", so only the free-text segment name needs the guard.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cta_allowed(url: str) -> bool:
    """Whether a call-to-action URL may be redirected to: an absolute http(s) URL."""
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _viewer_language(attributes: dict) -> str | None:
    for key in ("locale", "language"):
        value = attributes.get(key) if isinstance(attributes, dict) else None
        if isinstance(value, str) and value.strip():
            try:
                return translation.get_supported_language_variant(value.strip().lower().replace("_", "-"))
            except LookupError:
                continue
    return None


def _text_on(colour: str) -> str:
    """Black or white, whichever reads better on `colour` (WCAG relative luminance)."""
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#111111" if luminance > 0.4 else "#FFFFFF"


def _brand_colours(palette) -> dict:
    colours = [c for c in (palette or []) if isinstance(c, str) and _HEX_COLOUR.fullmatch(c)]
    primary = colours[0] if colours else DEFAULT_COLOURS[0]
    background = colours[1] if len(colours) > 1 else DEFAULT_COLOURS[1]
    return {"primary": primary, "on_primary": _text_on(primary), "background": background,
            "text": _text_on(background)}


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    return _private(render(request, "landing/404.html", status=404))


def _served(page, request: HttpRequest):
    try:
        return services.clip_for_viewer(organization=page.organization, campaign_id=page.campaign_id,
                                        external_id=page.profile.external_id, request=request)
    except NotFound:  # paused, archived, or no approved clip yet
        return None


@require_GET
def recipient_page(request: HttpRequest, token: str) -> HttpResponse:
    page = selectors.recipient_page_by_token(token=token)
    if page is None:
        return _not_found(request)
    language = _viewer_language(page.profile.attributes)
    with translation.override(language) if language else nullcontext():
        served = _served(page, request)
        if served is not None:
            services.event_record(organization=page.organization, clip_id=served.clip_id,
                                  profile=page.profile.external_id, event_type="impression")
        campaign, brand = page.campaign, page.campaign.brand
        response = render(request, "landing/page.html", {
            "brand": brand, "campaign": campaign, "clip": served, "colours": _brand_colours(brand.palette),
            "cta": reverse("recipient-cta", args=[token]) if cta_allowed(campaign.cta_url) else None,
        })
    return _private(response)


@require_GET
def recipient_cta(request: HttpRequest, token: str) -> HttpResponse:
    page = selectors.recipient_page_by_token(token=token)
    if page is None or not cta_allowed(page.campaign.cta_url):
        return _not_found(request)
    served = _served(page, request)
    if served is not None:
        services.event_record(organization=page.organization, clip_id=served.clip_id,
                              profile=page.profile.external_id, event_type="click")
    return _private(HttpResponseRedirect(page.campaign.cta_url))


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def recipients_csv_response(*, campaign: Campaign, request: HttpRequest) -> HttpResponse:
    """`external_id,segment,clip_id,page_url` for every placed viewer (API and dashboard). A revoked
    page's URL is empty; so is the clip of a campaign with no approved clip yet."""
    rows = services.recipients_export_rows(campaign=campaign)
    placeholder = "T" * 43
    prefix = request.build_absolute_uri(reverse("recipient-page", args=[placeholder]))[:-len(placeholder)]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    response["Cache-Control"] = "private, no-store"
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(["external_id", "segment", "clip_id", "page_url"])
    writer.writerows([external_id, _cell(segment or ""), clip_id or "", prefix + token if token else ""]
                     for external_id, segment, clip_id, token in rows)
    return response
