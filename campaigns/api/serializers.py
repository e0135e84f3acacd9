"""Shapes of the API's requests and answers (input validation lives in services)."""
from rest_framework import serializers

from campaigns.models import Brand, Job


class BrandInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    palette = serializers.ListField(child=serializers.CharField(max_length=7), required=False, max_length=12)
    style_notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class BrandSerializer(serializers.ModelSerializer):
    class Meta:
        model = Brand
        fields = ["id", "name", "palette", "style_notes", "trigger_token", "created_at", "updated_at"]


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "kind", "status", "progress", "message", "error", "attempts", "result",
                  "created_at", "started_at", "finished_at"]


class JobEnvelopeSerializer(serializers.Serializer):
    job = JobSerializer()
