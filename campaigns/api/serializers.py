"""Shapes of the API's requests and answers (input validation lives in services)."""
from rest_framework import serializers

from campaigns.models import Brand, BrandAsset, Campaign, Clip, Job, LoraAdapter


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


class SegmentInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    attributes = serializers.DictField(required=False)


class CampaignInSerializer(serializers.Serializer):
    brand = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=200)
    brief = serializers.CharField(max_length=2000)
    # Types are checked by the service, which knows the model's rules and names what is allowed.
    num_frames = serializers.JSONField(required=False)
    width = serializers.JSONField(required=False)
    height = serializers.JSONField(required=False)
    fps = serializers.JSONField(required=False)
    segments = serializers.JSONField(required=False, help_text="an integer k, or a list of {name, attributes}")


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    attributes = serializers.DictField()


class CampaignSerializer(serializers.ModelSerializer):
    segments = SegmentSerializer(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "brand", "name", "brief", "num_frames", "width", "height", "fps", "status",
                  "segment_count", "segments", "created_at", "updated_at"]


class GenerateInSerializer(serializers.Serializer):
    variants_per_segment = serializers.JSONField(required=False, default=1)
    steps = serializers.JSONField(required=False, default=None)


class ClipSerializer(serializers.ModelSerializer):
    segment = serializers.SerializerMethodField()
    video_url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = ["id", "campaign", "segment", "variant", "status", "prompt", "negative_prompt", "seed", "model",
                  "lora_version", "steps", "guidance", "num_frames", "width", "height", "fps", "seconds",
                  "video_url", "poster_url", "created_at", "decided_at"]

    def get_segment(self, clip) -> dict | None:
        return {"id": clip.segment_id, "name": clip.segment.name} if clip.segment_id else None

    def _url(self, name: str) -> str | None:
        from campaigns.files import signed_url

        return signed_url(name, request=self.context.get("request"))[0] if name else None

    def get_video_url(self, clip) -> str | None:
        return self._url(clip.video.name)

    def get_poster_url(self, clip) -> str | None:
        return self._url(clip.poster.name)


class ReviewInSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class AssetInSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG or WebP image, or MP4 clip")
    caption = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class AssetSerializer(serializers.ModelSerializer):
    class Meta:
        model = BrandAsset
        fields = ["id", "brand", "kind", "content_type", "caption", "checksum", "size_bytes", "width", "height",
                  "num_frames", "created_at"]


class TrainInSerializer(serializers.Serializer):
    # Types and ranges are checked by the service, which names what is allowed.
    steps = serializers.JSONField(required=False, default=None)
    rank = serializers.JSONField(required=False, default=None)
    learning_rate = serializers.JSONField(required=False, default=None)


class LoraSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoraAdapter
        fields = ["id", "brand", "version", "base_model", "status", "parameters", "metrics", "job", "created_at"]
