"""Shapes of the API's requests and answers (input validation lives in services)."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Brand, BrandAsset, Campaign, Clip, Job, LoraAdapter, Segment
from generation.limits import (
    MAX_BRIEF_CHARS,
    MAX_CAPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_PALETTE,
    MAX_REVIEW_NOTE_CHARS,
    MAX_SEGMENTS,
    MAX_SETTING_CHARS,
    MAX_STEPS,
    MAX_STYLE_NOTES_CHARS,
    MAX_VARIANTS,
    TRAINING_LIMITS,
)
from generation.personalization import CAMERA_BY_KEY, CAMERA_PRESETS, default_camera_for_brief

CAMERA_CHOICES = [(preset.key, preset.label) for preset in CAMERA_PRESETS]
SETTING_HELP = (f"where this segment's clips take place, a short phrase (1 to {MAX_SETTING_CHARS} characters), "
                "e.g. 'a mountain forest trail at dawn'; without one the platform suggests one from its catalogue")


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField would take 5 as "5", and a number where text belongs is a mistake."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class BrandInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME_CHARS)
    palette = serializers.ListField(child=serializers.CharField(max_length=7), required=False, max_length=MAX_PALETTE)
    style_notes = serializers.CharField(required=False, allow_blank=True, max_length=MAX_STYLE_NOTES_CHARS)


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


@extend_schema_field({"oneOf": [
    {"type": "integer", "minimum": 1, "maximum": MAX_SEGMENTS,
     "description": "k: cluster the organization's profiles into k segments"},
    {"type": "array", "maxItems": MAX_SEGMENTS, "description": "segments the marketer defines", "items": {
        "type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
            "attributes": {"type": "object", "additionalProperties": True},
            "setting": {"type": "string", "minLength": 1, "maxLength": MAX_SETTING_CHARS, "description": SETTING_HELP},
        }}},
]})
class SegmentsField(serializers.JSONField):
    """An integer k or a list of {name, attributes, setting?}; checked by the service, which names the index."""


CTA_URL_HELP = ("the call to action: an https:// URL (at most 2000 characters) that a click on the clip opens "
                "(VAST ClickThrough); optional")
OBJECTIVE_HELP = ("what the variant chooser's Thompson sampling maximizes per impression: `clicks` (default) or "
                  "`completes` (completed views)")


class CampaignInSerializer(serializers.Serializer):
    brand = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=MAX_NAME_CHARS)
    brief = serializers.CharField(max_length=MAX_BRIEF_CHARS)
    # Types are checked by the service, which knows the model's rules and names what is allowed.
    num_frames = serializers.JSONField(required=False)
    width = serializers.JSONField(required=False)
    height = serializers.JSONField(required=False)
    fps = serializers.JSONField(required=False)
    segments = SegmentsField(required=False, help_text="an integer k, or a list of {name, attributes, setting}")
    camera = serializers.ChoiceField(
        choices=CAMERA_CHOICES, required=False,
        help_text="a camera-move preset (GET /api/v1/presets); default: chosen from the brief",
        error_messages={"invalid_choice": f"\"{{input}}\" is not a camera preset; choose one of: "
                                          f"{', '.join(CAMERA_BY_KEY)}."},
    )
    start_image = serializers.IntegerField(
        required=False, allow_null=True, min_value=1,
        help_text="image-to-video: the id of an image asset of this campaign's brand; every clip starts from it "
                  "(its first frame is the image fitted to the campaign's size)")
    # Any JSON here: the service checks it is an https URL and names the field otherwise.
    cta_url = serializers.JSONField(required=False, help_text=CTA_URL_HELP)
    objective = serializers.ChoiceField(
        choices=Campaign.Objective.values, required=False, help_text=OBJECTIVE_HELP,
        error_messages={"invalid_choice": f"\"{{input}}\" is not an objective; choose one of: "
                                          f"{', '.join(Campaign.Objective.values)}."})


class CampaignStatusInSerializer(serializers.Serializer):
    # Only the states a marketer moves a campaign to; which moves are allowed is the service's call (409).
    status = serializers.ChoiceField(choices=["live", "paused", "archived"], error_messages={
        "invalid_choice": "status can be set to live, paused or archived; got \"{input}\"."})


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    attributes = serializers.DictField()
    setting = serializers.CharField(max_length=MAX_SETTING_CHARS, help_text=SETTING_HELP + "; empty until suggested")
    setting_source = serializers.ChoiceField(
        choices=Segment.SettingSource.choices, allow_blank=True,
        help_text="who chose the setting; empty while a suggestion is pending")
    size = serializers.SerializerMethodField(help_text="viewers placed in this segment")

    def get_size(self, segment) -> int:
        size = getattr(segment, "size", None)  # annotated by selectors.segments_with_size
        return segment.memberships.count() if size is None else size


class SegmentUpdateInSerializer(serializers.Serializer):
    setting = StrictCharField(required=False, min_length=1, max_length=MAX_SETTING_CHARS, help_text=SETTING_HELP)
    name = StrictCharField(required=False, min_length=1, max_length=MAX_NAME_CHARS)


class CameraField(serializers.ChoiceField):
    """The campaign's camera preset; a campaign made before presets existed shows the one its prompts use."""

    def get_attribute(self, campaign):
        return campaign.camera or default_camera_for_brief(campaign.brief)


class CampaignSerializer(serializers.ModelSerializer):
    segments = SegmentSerializer(many=True, read_only=True)
    camera = CameraField(choices=CAMERA_CHOICES, read_only=True, help_text="the camera-move preset")
    cta_url = serializers.CharField(read_only=True, help_text=CTA_URL_HELP + "; empty when none")
    objective = serializers.ChoiceField(choices=Campaign.Objective.values, read_only=True, help_text=OBJECTIVE_HELP)

    class Meta:
        model = Campaign
        fields = ["id", "brand", "name", "brief", "num_frames", "width", "height", "fps", "status",
                  "segment_count", "camera", "cta_url", "objective", "start_image", "segments", "created_at",
                  "updated_at"]


class CameraPresetSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    label_zh = serializers.CharField(help_text="the label in Traditional Chinese")


class SettingEntrySerializer(serializers.Serializer):
    key = serializers.CharField()
    phrase = serializers.CharField(help_text="the setting as it goes into the prompt")
    label_zh = serializers.CharField(help_text="the setting in Traditional Chinese")


class PresetsSerializer(serializers.Serializer):
    camera = CameraPresetSerializer(many=True, help_text="camera-move presets a campaign's `camera` takes")
    settings = SettingEntrySerializer(many=True, help_text="the settings catalogue suggestions come from")


class SignedUrls:
    """Serializer mixin: a stored file's signed, expiring URL (null when there is no file)."""

    def _url(self, name: str) -> str | None:
        from campaigns.files import signed_url

        return signed_url(name, request=self.context.get("request"))[0] if name else None


class ClipSerializer(SignedUrls, serializers.ModelSerializer):
    segment = serializers.SerializerMethodField()
    video_url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()
    # Edits (API v1.1): the source clip, the edit ({"kind", ...the request's fields}), the keep-mask.
    parent = serializers.IntegerField(source="parent_id", allow_null=True, read_only=True,
                                      help_text="the clip this one was edited from; null for a generated clip")
    edit = serializers.DictField(read_only=True, help_text="{} for a generated clip; else {\"kind\", ...the edit "
                                                          "request's fields}")
    conditioning = serializers.CharField(read_only=True, help_text="the engine path that made the clip: \"text\" "
                                                                    "(text-to-video), \"latent_blend\" (known pixels "
                                                                    "held), \"latent_blend_motion\" (and new frames "
                                                                    "guided by the clip's own motion), "
                                                                    "\"already_seamless\" (a loop returned as it "
                                                                    "was) or a conditioned pipeline's class name")
    mask_url = serializers.SerializerMethodField(help_text="an edited clip's keep-mask: one grayscale PNG, the "
                                                           "frames side by side in time, white where the source "
                                                           "was kept; null for a generated clip")

    class Meta:
        model = Clip
        fields = ["id", "campaign", "segment", "variant", "status", "prompt", "negative_prompt", "seed", "model",
                  "lora_version", "steps", "guidance", "num_frames", "width", "height", "fps", "seconds",
                  "video_url", "poster_url", "created_at", "decided_at", "parent", "edit", "conditioning", "mask_url"]

    def get_segment(self, clip) -> dict | None:
        return {"id": clip.segment_id, "name": clip.segment.name} if clip.segment_id else None

    def get_video_url(self, clip) -> str | None:
        return self._url(clip.video.name)

    def get_poster_url(self, clip) -> str | None:
        return self._url(clip.poster.name)

    def get_mask_url(self, clip) -> str | None:
        return self._url(clip.mask.name)


class ReviewInSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_REVIEW_NOTE_CHARS, default="")


class AssetInSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG or WebP image, or MP4 clip")
    caption = serializers.CharField(required=False, allow_blank=True, max_length=MAX_CAPTION_CHARS, default="")


class AssetSerializer(SignedUrls, serializers.ModelSerializer):
    status = serializers.ChoiceField(
        choices=BrandAsset.Status.choices, read_only=True,
        help_text="an image is `ready` at once; a clip is `processing` until a cpu worker has decoded every frame "
                  "(seconds to a minute), then `ready`, or `failed` with `error` saying why. Training uses ready "
                  "assets only.")
    error = serializers.CharField(read_only=True, help_text="why a clip failed its check; empty otherwise")
    poster_url = serializers.SerializerMethodField(help_text="a ready clip's first frame (JPEG, signed URL); null "
                                                             "for an image or a clip not yet checked")

    class Meta:
        model = BrandAsset
        fields = ["id", "brand", "kind", "content_type", "caption", "checksum", "size_bytes", "width", "height",
                  "num_frames", "status", "error", "poster_url", "created_at"]

    def get_poster_url(self, asset) -> str | None:
        return self._url(asset.poster.name)


def _bounded(kind: str, low, high, help_text: str, default=None) -> serializers.JSONField:
    """A number checked by a service (which names what is allowed); the schema states its type and
    bounds. With no default, absent or null means the model's own."""

    @extend_schema_field({"type": kind, "minimum": low, "maximum": high, "nullable": default is None})
    class Bounded(serializers.JSONField):
        pass

    usual = "absent or null: the model's default" if default is None else f"default {default}"
    return Bounded(required=False, default=default, help_text=f"{help_text}, {low:g} to {high:g}; {usual}")


class TrainInSerializer(serializers.Serializer):
    # Types and ranges are checked by the service, which names what is allowed.
    steps = _bounded("integer", *TRAINING_LIMITS["steps"], "training steps")
    rank = _bounded("integer", *TRAINING_LIMITS["rank"], "LoRA rank")
    learning_rate = _bounded("number", *TRAINING_LIMITS["learning_rate"], "learning rate")


class GenerateInSerializer(serializers.Serializer):
    variants_per_segment = _bounded("integer", 1, MAX_VARIANTS, "clips per segment", default=1)
    steps = _bounded("integer", 1, MAX_STEPS, "denoising steps")


class LoraSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoraAdapter
        fields = ["id", "brand", "version", "base_model", "status", "parameters", "metrics", "job", "created_at"]
