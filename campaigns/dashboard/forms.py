"""Dashboard forms: they parse what a person typed; the services decide what is allowed."""
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from campaigns.bounded_json import JsonTooDeep, JsonUnstorableText, json_loads
from campaigns.models import Campaign, Review, WebhookEndpoint
from generation.limits import (
    MAX_BRIEF_CHARS,
    MAX_FPS,
    MAX_FRAMES,
    MAX_NAME_CHARS,
    MAX_REVIEW_NOTE_CHARS,
    MAX_SEGMENTS,
    MAX_SETTING_CHARS,
    MAX_SIDE,
    MAX_STEPS,
    MAX_STYLE_NOTES_CHARS,
    MAX_URL_CHARS,
    MAX_VARIANTS,
    TRAINING_LIMITS,
)
from generation.personalization import CAMERA_PRESETS, SETTINGS_CATALOGUE


class BrandForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=MAX_NAME_CHARS)
    # The palette editor posts one "palette" value per colour input; read with getlist.
    style_notes = forms.CharField(
        label=_("Style notes"), required=False, max_length=MAX_STYLE_NOTES_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("How the brand looks and feels, in a few words: lighting, mood, textures."),
    )

    def __init__(self, *args, palette: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.palette = palette or []

    def clean(self):
        data = super().clean()
        if self.data:
            self.palette = [c.strip() for c in self.data.getlist("palette") if c.strip()]
        data["palette"] = self.palette
        return data


class TrainForm(forms.Form):
    steps = forms.IntegerField(label=_("Steps"), required=False, min_value=TRAINING_LIMITS["steps"][0],
                               max_value=TRAINING_LIMITS["steps"][1])
    rank = forms.IntegerField(label=_("Rank"), required=False, min_value=TRAINING_LIMITS["rank"][0],
                              max_value=TRAINING_LIMITS["rank"][1])
    learning_rate = forms.FloatField(label=_("Learning rate"), required=False,
                                     min_value=TRAINING_LIMITS["learning_rate"][0],
                                     max_value=TRAINING_LIMITS["learning_rate"][1])


FORMATS = {
    # key: (label, width ratio, height ratio)
    "story": (_("Story 9:16"), 9, 16),
    "feed": (_("Feed 1:1"), 1, 1),
    "landscape": (_("Landscape 16:9"), 16, 9),
}


def format_sizes(spec) -> dict[str, tuple[int, int]]:
    """Each format preset as a size the configured model takes: the long side is the model's
    default long side, the short one rounded to the family's size multiple."""
    m = spec.family.size_multiple
    long_side = max(spec.defaults["width"], spec.defaults["height"])
    sizes = {}
    for key, (_label, w, h) in FORMATS.items():
        short = max(m, round(long_side * min(w, h) / max(w, h) / m) * m)
        sizes[key] = (long_side, short) if w > h else (short, long_side) if h > w else (long_side, long_side)
    return sizes


def localized_label(english: str, chinese: str) -> str:
    """A preset's or catalogue entry's label in the page's language (the tables carry both)."""
    return chinese if (get_language() or "").lower().startswith("zh") else english


def camera_choices() -> list[tuple[str, str]]:
    return [(p.key, localized_label(p.label, p.label_zh)) for p in CAMERA_PRESETS]


def setting_suggestions() -> list[tuple[str, str]]:
    """(phrase, label) of every catalogue entry, for the setting inputs' suggestion list."""
    return [(e.phrase, localized_label(e.phrase, e.label_zh)) for e in SETTINGS_CATALOGUE]


class CampaignForm(forms.Form):
    name = forms.CharField(label=_("Campaign name"), max_length=MAX_NAME_CHARS)
    brand = forms.TypedChoiceField(label=_("Brand"), coerce=int)
    brief = forms.CharField(
        label=_("Brief"), max_length=MAX_BRIEF_CHARS, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What the clip should show, in your own words. Any language works."),
    )
    format = forms.ChoiceField(label=_("Format"), widget=forms.RadioSelect)
    width = forms.IntegerField(label=_("Width (px)"), required=False, min_value=1, max_value=MAX_SIDE)
    height = forms.IntegerField(label=_("Height (px)"), required=False, min_value=1, max_value=MAX_SIDE)
    num_frames = forms.IntegerField(label=_("Frames"), min_value=1, max_value=MAX_FRAMES)
    fps = forms.IntegerField(label=_("Frames per second"), min_value=1, max_value=MAX_FPS)
    segment_mode = forms.ChoiceField(
        label=_("Audience segments"), widget=forms.RadioSelect,
        choices=[("define", _("I define the segments")), ("auto", _("Cluster our viewers automatically"))],
        initial="define",
    )
    k = forms.IntegerField(label=_("Number of segments"), required=False, min_value=1, max_value=MAX_SEGMENTS, initial=3)
    camera = forms.ChoiceField(
        label=_("Camera move"), required=False,
        help_text=_("How the camera moves in every clip of the campaign."),
    )
    # Checked by the service (https only), which names the field on error.
    cta_url = forms.CharField(
        label=_("Call-to-action URL"), required=False, max_length=MAX_URL_CHARS,
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
        help_text=_("Where a click on the clip leads (https only). Optional."),
    )
    objective = forms.ChoiceField(
        label=_("Optimize variants for"), choices=Campaign.Objective.choices, initial=Campaign.Objective.CLICKS,
        required=False,  # absent (older clients of the form): clicks, as before
        help_text=_("Which result picks the winning variant over time: clicks, or views watched to the end."),
    )

    def __init__(self, *args, brands, spec, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.sizes = format_sizes(spec)
        self.fields["brand"].choices = [(b.pk, b.name) for b in brands]
        self.fields["camera"].choices = [("", _("Chosen from the brief"))] + camera_choices()
        self.fields["format"].choices = [
            (key, f"{label} · {self.sizes[key][0]}×{self.sizes[key][1]}") for key, (label, _w, _h) in FORMATS.items()
        ] + [("custom", _("Custom size"))]
        m, s = spec.family.frame_multiple, spec.family.size_multiple
        self.fields["format"].initial = "feed"
        self.fields["num_frames"].initial = spec.defaults["num_frames"]
        self.fields["num_frames"].widget.attrs.update({"step": m, "min": m + 1})
        self.fields["num_frames"].help_text = _("%(m)sk+1 frames: %(examples)s…") % {
            "m": m, "examples": ", ".join(str(n) for n in spec.family.allowed_frames(count=5))}
        self.fields["fps"].initial = spec.defaults["fps"]
        for name in ("width", "height"):
            self.fields[name].widget.attrs.update({"step": s, "min": s})
        self.fields["width"].help_text = _("Multiples of %(s)s.") % {"s": s}
        self.segment_rows: list[dict] = []

    def clean(self):
        data = super().clean()
        fmt = data.get("format")
        if fmt == "custom":
            for name in ("width", "height"):
                if not data.get(name):
                    self.add_error(name, _("Give a size for a custom format."))
        elif fmt in self.sizes:
            data["width"], data["height"] = self.sizes[fmt]
        if data.get("segment_mode") == "auto":
            if not data.get("k"):
                self.add_error("k", _("How many segments should the viewers be clustered into?"))
            data["segments"] = data.get("k")
        else:
            data["segments"] = self._segment_rows()
        return data

    def _segment_rows(self) -> list[dict]:
        names = self.data.getlist("segment_name") if self.data else []
        attrs = self.data.getlist("segment_attributes") if self.data else []
        settings = self.data.getlist("segment_setting") if self.data else []
        rows, problems = [], []
        for i, name in enumerate(names[:MAX_SEGMENTS]):
            text = attrs[i] if i < len(attrs) else ""
            setting = " ".join((settings[i] if i < len(settings) else "").split())
            self.segment_rows.append({"name": name, "attributes": text, "setting": setting})
            if not name.strip():
                if text.strip() or setting:
                    problems.append(_("Segment row %(n)s has attributes but no name.") % {"n": i + 1})
                continue
            if len(setting) > MAX_SETTING_CHARS:
                problems.append(_("Segment “%(name)s”: the setting is longer than %(max)s characters.")
                                % {"name": name.strip(), "max": MAX_SETTING_CHARS})
                continue
            try:
                row = {"name": name.strip(), "attributes": parse_attributes(text)}
            except ValidationError as exc:
                problems.append(_("Segment “%(name)s”: %(error)s") % {"name": name.strip(), "error": exc.messages[0]})
                continue
            if setting:  # empty: the platform suggests one
                row["setting"] = setting
            rows.append(row)
        if problems:
            raise ValidationError(problems)
        return rows


_PAIR_SPLIT = re.compile(r"[;；\n]")
_KEY_SPLIT = re.compile(r"[:：=]")
_VALUE_SPLIT = re.compile(r"[,，、]")


def parse_attributes(text: str) -> dict:
    """Attributes as a marketer types them: ``interests: hiking, camping; style: minimal``.

    Full-width punctuation works too (``興趣：登山、露營；風格：簡約``), and a JSON object is
    taken as it is. A key with several values becomes a list.
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json_loads(text)
        except JsonTooDeep as exc:
            raise ValidationError(_("JSON attributes may nest at most %(limit)s levels deep.") % {"limit": exc.limit})
        except JsonUnstorableText:
            raise ValidationError(_("JSON attributes may not hold a NUL character (\\u0000) or half of a "
                                    "surrogate pair (\\ud800-\\udfff)."))
        except ValueError as exc:  # malformed, or NaN and the like
            raise ValidationError(_("not valid JSON (%(error)s).") % {"error": getattr(exc, "msg", exc)})
        if not isinstance(value, dict):
            raise ValidationError(_("JSON attributes must be an object."))
        return value
    result: dict = {}
    for pair in _PAIR_SPLIT.split(text):
        if not pair.strip():
            continue
        parts = _KEY_SPLIT.split(pair, maxsplit=1)
        if len(parts) != 2 or not parts[0].strip():
            raise ValidationError(_("write attributes as “key: value, value; key: value” (got “%(pair)s”).")
                                  % {"pair": pair.strip()})
        values = [v.strip() for v in _VALUE_SPLIT.split(parts[1]) if v.strip()]
        result[parts[0].strip()] = values if len(values) != 1 else values[0]
    return result


class SegmentSettingForm(forms.Form):
    setting = forms.CharField(label=_("Setting"), max_length=MAX_SETTING_CHARS,
                              help_text=_("Where this audience's clips take place."))


class GenerateForm(forms.Form):
    variants_per_segment = forms.IntegerField(label=_("Variants per segment"), min_value=1, max_value=MAX_VARIANTS, initial=2)
    steps = forms.IntegerField(label=_("Denoising steps"), required=False, min_value=1, max_value=MAX_STEPS,
                               help_text=_("Leave empty for the model's default."))


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=Review.Decision.choices)
    note = forms.CharField(required=False, max_length=MAX_REVIEW_NOTE_CHARS)


class WebhookForm(forms.Form):
    url = forms.CharField(label=_("Endpoint URL"), max_length=MAX_URL_CHARS,
                          widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/adclip"}),
                          help_text=_("An https:// address that answers 2xx to a POST."))
    events = forms.MultipleChoiceField(label=_("Events"), widget=forms.CheckboxSelectMultiple,
                                       # webhook.test comes from the Test button, whatever is ticked.
                                       choices=[(value, value) for value in WebhookEndpoint.EventType.values
                                                if value != WebhookEndpoint.EventType.WEBHOOK_TEST])
