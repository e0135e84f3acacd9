"""Shapes of the serve-scope API: profiles, the clip for a viewer, events (validation lives in services)."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Event
from campaigns.services.profiles import EXTERNAL_ID_RULE, MAX_DEPTH, MAX_KEYS
from generation.limits import MAX_ATTRIBUTES_BYTES, MAX_EXTERNAL_ID_CHARS


@extend_schema_field({"type": "object", "additionalProperties": True, "minProperties": 1, "maxProperties": MAX_KEYS})
class AttributesInField(serializers.JSONField):
    """A viewer's attributes as sent: the contract's "free-form JSON object", not empty (a profile keeps
    at least one), checked by the service, which names the bound hit."""


@extend_schema_field({"type": "object", "additionalProperties": True})
class AttributesField(serializers.JSONField):
    """A viewer's attributes as stored (a recipients CSV of ids alone leaves them empty)."""


class ProfileInSerializer(serializers.Serializer):
    attributes = AttributesInField(help_text=(
        f"free-form JSON object of the viewer's preferences, at most {MAX_ATTRIBUTES_BYTES} bytes, "
        f"{MAX_KEYS} keys and {MAX_DEPTH} levels deep"))


class SegmentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ProfileSegmentSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(source="campaign_id")
    segment = SegmentRefSerializer()
    distance = serializers.FloatField(help_text="cosine distance to the segment's centroid (0 = identical)")


class ProfileSerializer(serializers.Serializer):
    external_id = serializers.CharField(help_text=EXTERNAL_ID_RULE)
    attributes = AttributesField()
    embedded = serializers.SerializerMethodField(help_text="false until a worker has embedded these attributes")
    segments = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_embedded(self, profile) -> bool:
        return profile.embedded_at is not None

    @extend_schema_field(ProfileSegmentSerializer(many=True))
    def get_segments(self, profile) -> list:
        return ProfileSegmentSerializer(self.context.get("memberships", []), many=True).data


class ServedClipBodySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="signed URL of the MP4; a plain GET fetches it until expires_at")
    poster_url = serializers.CharField(help_text="signed URL of the poster image")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    num_frames = serializers.IntegerField()
    fps = serializers.IntegerField()


class ServedClipSerializer(serializers.Serializer):
    clip = ServedClipBodySerializer()
    segment = SegmentRefSerializer(allow_null=True, help_text="the viewer's segment; null for an unknown viewer")
    expires_at = serializers.DateTimeField()
    fallback = serializers.BooleanField(help_text="true when the clip is the campaign's fallback, not of the "
                                                  "viewer's own segment")


class EventInSerializer(serializers.Serializer):
    clip_id = serializers.IntegerField(min_value=1, help_text="a clip of this organization")
    profile = serializers.CharField(max_length=MAX_EXTERNAL_ID_CHARS, help_text=f"the viewer's external id: {EXTERNAL_ID_RULE}")
    type = serializers.ChoiceField(choices=Event.Type.values, error_messages={
        "invalid_choice": f'"{{input}}" is not an event type; allowed: {", ".join(Event.Type.values)}.'})


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    clip_id = serializers.IntegerField()
    type = serializers.CharField()
    created_at = serializers.DateTimeField()


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
