"""Shapes of the edit requests (API v1.1, "Edits"): one serializer per kind, told apart by `kind`.

These check types and ranges, and the OpenAPI schema shows exactly these constraints; what needs
the database (a segment of the clip's campaign, another clip's organization and size) and the
box's order (x0 < x1, y0 < y1) are checked by ``campaigns.services.editing``, which names the field.
"""
from rest_framework import serializers

from generation.editing import EDIT_KINDS, EXTEND_DIRECTIONS
from generation.limits import MAX_EDIT_PROMPT_CHARS, MAX_FRAMES, MAX_STEPS, MAX_VARIANTS

KEEP_BOX_HELP = ("[x0, y0, x1, y1]: the box around the product, as fractions 0..1 of the width and height from the "
                 "top-left corner, with x0 < x1 and y0 < y1")


def keep_box_field() -> serializers.ListField:
    return serializers.ListField(child=serializers.FloatField(min_value=0.0, max_value=1.0), min_length=4,
                                 max_length=4, help_text=KEEP_BOX_HELP)


def steps_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_STEPS,
                                    help_text="denoising steps; default: the model's")


class EditInBase(serializers.Serializer):
    variants = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_VARIANTS,
                                        help_text="how many new clips (variants) to make")
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=MAX_EDIT_PROMPT_CHARS,
                                   help_text="what the new material shows; default: the source clip's prompt (for "
                                             "rescene with a segment: the platform's prompt for that segment)")
    steps = steps_field()


def _kind(kind: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[kind], help_text=f"the kind of edit: one of {', '.join(EDIT_KINDS)}")


class ResceneEditInSerializer(EditInBase):
    kind = _kind("rescene")
    keep_box = keep_box_field()
    segment = serializers.IntegerField(required=False, min_value=1,
                                       help_text="a segment of the clip's campaign: the new scene is its setting. "
                                                 "Give `segment`, `prompt`, or both")


class ExtendEditInSerializer(EditInBase):
    kind = _kind("extend")
    frames = serializers.IntegerField(min_value=1, max_value=MAX_FRAMES, help_text="how many new frames to add")
    direction = serializers.ChoiceField(choices=list(EXTEND_DIRECTIONS), required=False, default="forward",
                                        help_text="forward: after the last frame; backward: before the first")


class LoopEditInSerializer(EditInBase):
    kind = _kind("loop")


class ConnectEditInSerializer(EditInBase):
    kind = _kind("connect")
    other_clip = serializers.IntegerField(min_value=1, help_text="a clip of this organization with the same width "
                                                                 "and height; the bridge ends where it starts")


EDIT_IN_SERIALIZERS: dict[str, type[EditInBase]] = {
    "rescene": ResceneEditInSerializer,
    "extend": ExtendEditInSerializer,
    "loop": LoopEditInSerializer,
    "connect": ConnectEditInSerializer,
}
assert set(EDIT_IN_SERIALIZERS) == set(EDIT_KINDS)


class CampaignResceneInSerializer(serializers.Serializer):
    clip = serializers.IntegerField(min_value=1, help_text="an approved clip of this campaign")
    keep_box = keep_box_field()
    variants_per_segment = serializers.IntegerField(required=False, default=1, min_value=1,
                                                    max_value=MAX_VARIANTS)
    steps = steps_field()
