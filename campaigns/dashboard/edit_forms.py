"""The clip page's edit forms: re-scene (with the keep box drawn on the poster), extend, loop, connect.

They parse what a person typed; ``campaigns.services.editing`` decides what is allowed, and its
refusals come back onto these forms (``edit_form_add_errors``).
"""
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from campaigns.models import Clip
from generation.limits import MAX_EDIT_PROMPT_CHARS, MAX_FRAMES, MAX_VARIANTS

EDIT_KIND_LABELS = {
    "rescene": _("Re-scene"),
    "extend": _("Extend"),
    "loop": _("Loop"),
    "connect": _("Connect"),
}
EVERY_SEGMENT = "all"
OWN_PROMPT = "prompt"


class EditForm(forms.Form):
    kind = ""
    variants = forms.IntegerField(label=_("Variants"), min_value=1, max_value=MAX_VARIANTS, initial=1)
    prompt = forms.CharField(label=_("Prompt for the new material"), required=False, max_length=MAX_EDIT_PROMPT_CHARS,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Leave empty to continue the clip's own prompt."))

    box_names: tuple[str, ...] = ()
    field_order = ["prompt", "variants"]

    def __init__(self, *args, clip: Clip, **kwargs):
        kwargs.setdefault("prefix", self.kind)
        super().__init__(*args, **kwargs)
        self.clip = clip

    def box_fields(self) -> list:
        return [self[name] for name in self.box_names]

    def other_fields(self) -> list:
        return [field for field in self if field.name not in self.box_names]


def box_field(name: str) -> forms.FloatField:
    """One edge of the keep box, a fraction of the width or height; the poster's drawing fills it."""
    return forms.FloatField(label=name, min_value=0.0, max_value=1.0,
                            widget=forms.NumberInput(attrs={"step": "0.001", "data-box": name}))


class ResceneForm(EditForm):
    kind = "rescene"
    box_names = ("x0", "y0", "x1", "y1")
    x0, y0, x1, y1 = (box_field(name) for name in ("x0", "y0", "x1", "y1"))
    target = forms.ChoiceField(label=_("New scene"))
    field_order = ["x0", "y0", "x1", "y1", "target", "prompt", "variants"]

    def __init__(self, *args, segments=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(EVERY_SEGMENT, _("Every segment, each in its own setting (approved clips only)"))]
        for segment in segments:
            where = segment.setting or _("setting suggested when the job runs")
            choices.append((str(segment.pk), _("Segment “%(name)s”: %(setting)s") % {"name": segment.name,
                                                                                    "setting": where}))
        choices.append((OWN_PROMPT, _("The prompt below")))
        self.fields["target"].choices = choices
        self.fields["prompt"].help_text = _("For “The prompt below”; with one segment it replaces the "
                                            "segment's prompt.")

    def clean(self):
        data = super().clean()
        if data.get("target") == EVERY_SEGMENT and data.get("prompt"):
            self.add_error("prompt", _("Every segment takes its own setting: clear the prompt, or choose one "
                                       "segment or “The prompt below”."))
        if data.get("target") == OWN_PROMPT and not data.get("prompt"):
            self.add_error("prompt", _("Write the new scene's prompt, or choose a segment."))
        return data

    @property
    def keep_box(self) -> list[float]:
        return [self.cleaned_data[k] for k in ("x0", "y0", "x1", "y1")]


class ExtendForm(EditForm):
    kind = "extend"
    frames = forms.IntegerField(label=_("New frames"), min_value=1, max_value=MAX_FRAMES, initial=8)
    direction = forms.ChoiceField(label=_("Direction"), choices=[
        ("forward", _("Forward: after the last frame")), ("backward", _("Backward: before the first frame"))])
    field_order = ["frames", "direction", "prompt", "variants"]


class LoopForm(EditForm):
    kind = "loop"


class ConnectForm(EditForm):
    kind = "connect"
    other_clip = forms.TypedChoiceField(label=_("Bridge to clip"), coerce=int)
    field_order = ["other_clip", "prompt", "variants"]

    def __init__(self, *args, others=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["other_clip"].choices = [
            (c.pk, f"#{c.pk} · {c.segment.name if c.segment_id else '–'} · {c.get_status_display()}") for c in others]


EDIT_FORMS = {form.kind: form for form in (ResceneForm, ExtendForm, LoopForm, ConnectForm)}

# Service field names that the forms call otherwise (None: shown above the form's fields).
SERVICE_FIELDS = {"keep_box": None, "segment": "target", "variants_per_segment": "variants", "clip": None,
                  "kind": None}


def edit_form_add_errors(form: EditForm, exc: ValidationError) -> None:
    """A service's refusal onto the form: the field it names where the form has one, else on top."""
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    for field, messages in items:
        field = SERVICE_FIELDS.get(field, field)
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
