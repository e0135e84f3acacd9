"""Serve-scope API views: profiles, the clip for a viewer, events; plus a health check.

Scoped to the API key's organization; rate-limited per key by the default throttle. The web
process imports nothing heavy here: embeddings and segment assignment happen on CPU workers.
"""
import hashlib
import threading
import time

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import authentication, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.api.auth import ApiKeyAuthentication, ApiKeyUser, HasServeScope
from campaigns.api.errors import ErrorSerializer
from campaigns.api.serve_serializers import (
    EventInSerializer,
    EventSerializer,
    HealthSerializer,
    ProfileInSerializer,
    ProfileSerializer,
    ServedClipSerializer,
)
from campaigns.api.views import errors
from campaigns.models import ApiKey
from campaigns.selectors_serving import profile_memberships
from campaigns.services.profiles import EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE, profile_clean_external_id


class RememberingApiKeyAuthentication(ApiKeyAuthentication):
    """The API-key check, remembered per process for a few seconds: for the serve endpoints only.

    Apps call these on every view of every viewer; looking the key up each time would be half the
    database work of serving a clip. The price: a revoked key keeps working on serve endpoints for
    up to ``TTL_S`` seconds in each web process that saw it just before. Manage endpoints check
    every time.
    """

    TTL_S = 10.0
    MAX_KEYS = 10_000
    _known: dict[bytes, tuple[float, ApiKey]] = {}
    _lock = threading.Lock()

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        digest = hashlib.sha256(header).digest() if header else b""
        known = self._known.get(digest) if digest else None
        if known is not None and known[0] > time.monotonic():
            return ApiKeyUser(known[1]), known[1]
        result = super().authenticate(request)
        if result is not None:
            with self._lock:
                if len(self._known) >= self.MAX_KEYS:
                    self._known.clear()
                self._known[digest] = (time.monotonic() + self.TTL_S, result[1])
        return result

    @classmethod
    def forget_all(cls) -> None:
        with cls._lock:
            cls._known.clear()


class RememberingApiKeyScheme(OpenApiAuthenticationExtension):
    """The serve endpoints' scheme in the OpenAPI schema: the same header, a key with `serve`."""

    target_class = "campaigns.api.serve_views.RememberingApiKeyAuthentication"
    name = "ServeApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>` of a key with the `serve` scope."}


class ServeView(APIView):
    authentication_classes = [RememberingApiKeyAuthentication]
    permission_classes = [HasServeScope]

    @property
    def organization(self):
        return self.request.auth.organization


def _external_id(value: str) -> str:
    """The path's external id, or a 400 naming it (ids that can never exist are a client error)."""
    try:
        return profile_clean_external_id(external_id=value)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None


# The schema states the rule the service enforces, so that a client (or a fuzzer) can know it.
EXTERNAL_ID_SCHEMA = {"type": "string", "pattern": f"^{EXTERNAL_ID_PATTERN}$", "minLength": 1, "maxLength": 128}
PROFILE_ID = OpenApiParameter("external_id", EXTERNAL_ID_SCHEMA, OpenApiParameter.PATH,
                              description=f"the app's viewer id: {EXTERNAL_ID_RULE}")


class ProfileView(ServeView):
    def _profile_body(self, profile) -> dict:
        return ProfileSerializer(profile, context={"memberships": list(profile_memberships(profile=profile))}).data

    @extend_schema(parameters=[PROFILE_ID], request=ProfileInSerializer,
                   responses={200: ProfileSerializer, 201: ProfileSerializer, **errors(400)}, tags=["profiles"],
                   description="Create (201) or replace (200) a viewer's attributes. The answer comes at once; a "
                               "worker then embeds the attributes and places the viewer in the nearest segment of "
                               "each campaign (`embedded` turns true).")
    def put(self, request, external_id: str):
        data = ProfileInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile, created = services.profile_upsert(organization=self.organization, external_id=external_id,
                                                   attributes=data.validated_data["attributes"])
        return Response(self._profile_body(profile), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(parameters=[PROFILE_ID], responses={200: ProfileSerializer, **errors(400, 404)}, tags=["profiles"])
    def get(self, request, external_id: str):
        profile = selectors.profile_get(organization=self.organization, external_id=_external_id(external_id))
        return Response(self._profile_body(profile))

    @extend_schema(parameters=[PROFILE_ID], responses={204: None, **errors(400, 404)}, tags=["profiles"],
                   description="Erase the viewer: the profile, its events and its segment memberships, and their "
                               "part in clustered segments (centroids and words recomputed, a segment under "
                               "SEGMENT_MIN_SIZE merged, clips made from words that no longer hold withdrawn).")
    def delete(self, request, external_id: str):
        profile = selectors.profile_get(organization=self.organization, external_id=_external_id(external_id))
        services.profile_delete(profile=profile)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignClipForViewerView(ServeView):
    @extend_schema(
        parameters=[OpenApiParameter("profile", EXTERNAL_ID_SCHEMA, required=True,
                                     description=f"the viewer's external id: {EXTERNAL_ID_RULE}")],
        responses={200: ServedClipSerializer, **errors(400),
                   404: OpenApiResponse(ErrorSerializer, description="`not_found`: no such campaign in this "
                                        "organization; `no_clip`: nothing approved, or the campaign is paused "
                                        "or archived.")},
        tags=["serving"],
        description="An approved clip for the viewer's segment, else the campaign's fallback approved clip. The "
                    "viewer keeps getting the same variant; `url` is fetchable by a plain GET until `expires_at`.",
    )
    def get(self, request, campaign_id: int):
        external_id = request.query_params.get("profile")
        if not external_id:
            raise ValidationError({"profile": [f"the query parameter profile is required: the viewer's external id "
                                               f"({EXTERNAL_ID_RULE})."]})
        served = services.clip_for_viewer(organization=self.organization, campaign_id=campaign_id,
                                          external_id=external_id, request=request)
        # A plain dict rather than the serializer: this is the hottest path of the app, and the
        # serializer above documents the same shape for the schema.
        return Response({
            "clip": {"id": served.clip_id, "url": served.url, "poster_url": served.poster_url, "width": served.width,
                     "height": served.height, "num_frames": served.num_frames, "fps": served.fps},
            "segment": {"id": served.segment_id, "name": served.segment_name} if served.segment_id is not None else None,
            "expires_at": served.expires_at.isoformat().replace("+00:00", "Z"),
            "fallback": served.fallback,
        })


class EventCreateView(ServeView):
    @extend_schema(request=EventInSerializer, responses={202: EventSerializer, **errors(400)}, tags=["serving"],
                   description="Report an impression, click or complete of a clip by a viewer, or a stage of the "
                               "viewing funnel: start, first_quartile, midpoint, third_quartile. A clip that is "
                               "not this organization's is refused as unknown (400 naming `clip_id`).")
    def post(self, request):
        data = EventInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        event = services.event_record(organization=self.organization, clip_id=fields["clip_id"],
                                      profile=fields["profile"], event_type=fields["type"])
        return Response(EventSerializer(event).data, status=status.HTTP_202_ACCEPTED)


class HealthView(APIView):
    """No key, no database, no throttle: for load balancers, and the floor of the serving benchmark."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(responses={200: HealthSerializer}, tags=["health"], auth=[])
    def get(self, request):
        return Response({"status": "ok"})
