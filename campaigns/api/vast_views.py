"""VAST for standard video players: the VAST 4.2 answer for a viewer, and its tracking pixel.

XML and GIF answers, but errors keep the API's JSON envelope: the content negotiation below
ignores the client's Accept header (players send ``application/xml`` or ``image/*``), so DRF
never answers 406 and always renders an error as JSON.
"""
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from campaigns import services
from campaigns.api.errors import ErrorSerializer
from campaigns.api.serve_views import EXTERNAL_ID_SCHEMA, ServeView
from campaigns.api.views import errors
from campaigns.errors import NotFound
from campaigns.services.profiles import EXTERNAL_ID_RULE
from campaigns.services.vast import PIXEL_GIF, vast_document, vast_tracking_record


class FirstRenderer(BaseContentNegotiation):
    """The view's first renderer (JSON, for errors) whatever the client accepts."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


VAST_EXAMPLE = ('<?xml version=\'1.0\' encoding=\'UTF-8\'?>\n<VAST xmlns="http://www.iab.com/VAST" version="4.2">'
                '<Ad id="clip-7"><InLine><AdSystem>adplatform</AdSystem>…</InLine></Ad></VAST>')


class CampaignVastView(ServeView):
    content_negotiation_class = FirstRenderer

    @extend_schema(
        parameters=[OpenApiParameter("profile", EXTERNAL_ID_SCHEMA, required=True,
                                     description=f"the viewer's external id: {EXTERNAL_ID_RULE}")],
        responses={(200, "application/xml"): OpenApiResponse(OpenApiTypes.STR, description=(
                       "A VAST 4.2 document with one InLine linear ad for the viewer's clip (the same clip "
                       "the JSON `clip` endpoint serves): AdSystem, Impression, AdServingId, AdTitle, a "
                       "Creative with Duration, one MediaFile (video/mp4, the signed URL), TrackingEvents "
                       "start, firstQuartile, midpoint, thirdQuartile, complete, and VideoClicks "
                       "(ClickTracking; ClickThrough = the campaign's `cta_url` when it has one). Impression "
                       "and tracking URLs are signed pixels of this platform: no key needed, each records "
                       "its event once, for a day. Nothing approved to serve (or the campaign is paused or "
                       "archived): the empty `<VAST version=\"4.2\"/>`.")),
                   # With a (status, media type) key above, every key must be one for the others to show.
                   **{(code, "application/json"): answer for code, answer in errors(400).items()},
                   (404, "application/json"): OpenApiResponse(ErrorSerializer,
                                                              description="no such campaign in this organization")},
        tags=["serving"],
        description="VAST 4.2 for standard video players. " + VAST_EXAMPLE,
    )
    def get(self, request, campaign_id: int):
        external_id = request.query_params.get("profile")
        if not external_id:
            raise ValidationError({"profile": [f"the query parameter profile is required: the viewer's external id "
                                               f"({EXTERNAL_ID_RULE})."]})
        try:
            served = services.clip_for_viewer(organization=self.organization, campaign_id=campaign_id,
                                              external_id=external_id, request=request)
        except NotFound as exc:
            if exc.code != "no_clip":
                raise
            served = None  # nothing to play: VAST says so with an empty document, not an error
        body = vast_document(served=served, organization_id=self.organization.pk, request=request)
        return HttpResponse(body, content_type="application/xml; charset=utf-8",
                            headers={"Cache-Control": "no-store"})


class VastTrackingView(APIView):
    """The pixel behind every impression and tracking URL of a VAST answer.

    No key (players fire these from viewers' devices) and no throttle: a signature is checked
    before any database work, and a valid URL can write at most once. Every answer is the same
    1×1 GIF, recorded or not (altered, expired, repeated): players ignore it, and a prober learns
    nothing from it.
    """

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    content_negotiation_class = FirstRenderer

    @extend_schema(
        parameters=[OpenApiParameter("t", str, required=True, description="the signed token, as the VAST answer "
                                                                          "gave it")],
        responses={(200, "image/gif"): OpenApiResponse(OpenApiTypes.BINARY, description=(
            "a transparent 1×1 GIF, always; the event is recorded only the first time a URL with a valid, "
            "unexpired signature is fetched"))},
        tags=["serving"], auth=[],
        description="A VAST tracking URL (impression, start, quartiles, complete, click). Not called by apps: "
                    "players fetch the URLs the VAST answer lists.",
    )
    def get(self, request):
        vast_tracking_record(token=request.query_params.get("t", ""))
        return HttpResponse(PIXEL_GIF, content_type="image/gif",
                            headers={"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"})
