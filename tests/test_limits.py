"""Every limit agrees across the layers: model fields, API serializers and the OpenAPI schema,
dashboard forms, services and the prompt builder all read generation.limits.

Data-driven: each limit is one row of LAYERS, each layer a small probe that reads what that
layer enforces. A new limit (or a new place that enforces one) is a row or a probe more.
"""
import pytest
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.api import edit_serializers, serializers, serve_serializers, webhook_serializers
from campaigns.dashboard import edit_forms, forms
from campaigns.models import Brand, BrandAsset, Campaign, Profile, Review, Segment, WebhookEndpoint
from campaigns.services.campaigns import campaign_create, campaign_generate, clean_cta_url
from campaigns.services.profiles import profile_clean_attributes
from campaigns.services.segments import segment_update
from campaigns.services.webhooks import webhook_url_clean
from generation import limits
from generation.personalization import clean_setting
from generation.prompts import build_prompt
from tests import factories

pytestmark = pytest.mark.django_db


# --- what each layer says: a probe reads the limit a layer enforces -----------------------------
# A probe is (label, read), read(ctx) -> the limit; ctx holds the OpenAPI schema ("api"), a few
# rows to work on ("world") and the expected limit ("limit", for probes that try values).

def model(cls, field):
    return f"model {cls.__name__}.{field}", lambda ctx: cls._meta.get_field(field).max_length


def serializer(cls, field, attr="max_length"):
    return f"serializer {cls.__name__}.{field}", lambda ctx: getattr(cls().fields[field], attr)


def form(cls, field, attr="max_length"):
    return f"form {cls.__name__}.{field}", lambda ctx: getattr(cls.base_fields[field], attr)


def schema(component, field, key="maxLength"):
    return (f"schema {component}.{field}",
            lambda ctx: ctx["api"]["components"]["schemas"][component]["properties"][field][key])


def _largest_accepted(refused, limit):
    """``limit`` when ``refused`` lets it through and stops one more; else what went wrong."""
    if refused(limit):
        return f"refuses {limit}"
    return limit if refused(limit + 1) else f"accepts {limit + 1}"


def service(name, call, field):
    """A service refuses past the limit with a ValidationError naming ``field``; other refusals
    (a campaign's state, the compute budget) come after the limit was passed."""
    def read(ctx):
        def refused(value) -> bool:
            try:
                call(value, ctx["world"])
            except ValidationError as exc:
                return field in getattr(exc, "message_dict", {})
            except Exception:  # noqa: BLE001 - refused for another reason: this limit passed
                return False
            return False
        return _largest_accepted(refused, ctx["limit"])
    return f"service {name}", read


def engine(name, call):
    """The same for a function of the engine (no Django there), which raises ValueError."""
    def read(ctx):
        def refused(value) -> bool:
            try:
                call(value)
            except ValueError:
                return True
            return False
        return _largest_accepted(refused, ctx["limit"])
    return f"engine {name}", read


def chars(n):
    return "x" * n


def attributes_of(size: int) -> dict:
    """A JSON object whose compact UTF-8 encoding is exactly ``size`` bytes."""
    return {"k": "x" * (size - len('{"k":""}'))}


@pytest.fixture(scope="module")
def api():
    """The OpenAPI document as /api/v1/schema/ serves it (once: it takes a second to build)."""
    from django.test import Client

    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def world(org):
    brand = factories.BrandFactory(organization=org)
    campaign = factories.CampaignFactory(brand=brand)
    factories.SegmentFactory(campaign=campaign)
    return {"org": org, "brand": brand, "campaign": campaign, "segment": factories.SegmentFactory(campaign=campaign)}


def _create(world, **kwargs):
    values = {"organization": world["org"], "brand": world["brand"], "name": "Spring", "brief": "Trail shoes"}
    return campaign_create(**{**values, **kwargs})


def _prompt(brief):
    return build_prompt(brief=brief, brand_name="Acme", style_notes="", palette=[], trigger_token="acme",
                        segment_attributes={})


LAYERS = {
    "MAX_BRIEF_CHARS": [
        model(Campaign, "brief"), serializer(serializers.CampaignInSerializer, "brief"),
        schema("CampaignInRequest", "brief"), form(forms.CampaignForm, "brief"),
        service("campaign_create", lambda n, w: _create(w, brief=chars(n)), "brief"),
        engine("build_prompt", lambda n: _prompt(chars(n))),
    ],
    "MAX_NAME_CHARS": [
        model(Brand, "name"), model(Campaign, "name"), model(Segment, "name"),
        serializer(serializers.BrandInSerializer, "name"), serializer(serializers.CampaignInSerializer, "name"),
        serializer(serializers.SegmentUpdateInSerializer, "name"),
        schema("BrandInRequest", "name"), schema("CampaignInRequest", "name"),
        schema("PatchedSegmentUpdateInRequest", "name"),
        form(forms.BrandForm, "name"), form(forms.CampaignForm, "name"),
        service("segment_update", lambda n, w: segment_update(segment=w["segment"], name=chars(n)), "name"),
        service("campaign_create segments", lambda n, w: _create(w, segments=[{"name": chars(n)}]), "segments"),
    ],
    "MAX_STYLE_NOTES_CHARS": [
        model(Brand, "style_notes"), serializer(serializers.BrandInSerializer, "style_notes"),
        schema("BrandInRequest", "style_notes"), form(forms.BrandForm, "style_notes"),
    ],
    "MAX_CAPTION_CHARS": [
        model(BrandAsset, "caption"), serializer(serializers.AssetInSerializer, "caption"),
        schema("AssetInRequest", "caption"),
    ],
    "MAX_REVIEW_NOTE_CHARS": [
        model(Review, "note"), serializer(serializers.ReviewInSerializer, "note"), schema("ReviewInRequest", "note"),
        form(forms.ReviewForm, "note"),
    ],
    "MAX_EDIT_PROMPT_CHARS": [
        serializer(edit_serializers.ExtendEditInSerializer, "prompt"), schema("ExtendEditInRequest", "prompt"),
        form(edit_forms.ExtendForm, "prompt"),
    ],
    "MAX_SETTING_CHARS": [
        model(Segment, "setting"), serializer(serializers.SegmentUpdateInSerializer, "setting"),
        schema("PatchedSegmentUpdateInRequest", "setting"), form(forms.SegmentSettingForm, "setting"),
        service("segment_update", lambda n, w: segment_update(segment=w["segment"], setting=chars(n)), "setting"),
        engine("clean_setting", lambda n: clean_setting(chars(n))),
    ],
    "MAX_URL_CHARS": [
        model(WebhookEndpoint, "url"), serializer(webhook_serializers.WebhookInSerializer, "url"),
        schema("WebhookInRequest", "url"), form(forms.WebhookForm, "url"),
        service("webhook_url_clean", lambda n, w: webhook_url_clean("https://example.com/" + chars(n - 20)), "url"),
        model(Campaign, "cta_url"), form(forms.CampaignForm, "cta_url"),
        service("clean_cta_url", lambda n, w: clean_cta_url("https://example.com/" + chars(n - 20)), "cta_url"),
    ],
    "MAX_EXTERNAL_ID_CHARS": [
        model(Profile, "external_id"), serializer(serve_serializers.EventInSerializer, "profile"),
        schema("EventInRequest", "profile"),
    ],
    "MAX_PALETTE": [
        serializer(serializers.BrandInSerializer, "palette"), schema("BrandInRequest", "palette", "maxItems"),
        service("brand_create", lambda n, w: services.brand_create(organization=w["org"], name="Acme",
                                                                   palette=["#FFFFFF"] * n), "palette"),
    ],
    "MAX_SEGMENTS": [
        form(forms.CampaignForm, "k", "max_value"),
        service("campaign_create k", lambda n, w: _create(w, segments=n), "segments"),
        service("campaign_create list", lambda n, w: _create(w, segments=[{"name": f"s{i}"} for i in range(n)]),
                "segments"),
    ],
    "MAX_VARIANTS": [
        schema("GenerateInRequest", "variants_per_segment", "maximum"),
        form(forms.GenerateForm, "variants_per_segment", "max_value"),
        service("campaign_generate", lambda n, w: campaign_generate(campaign=w["campaign"], variants_per_segment=n,
                                                                    enqueue=False), "variants_per_segment"),
        serializer(edit_serializers.ExtendEditInSerializer, "variants", "max_value"),
        schema("ExtendEditInRequest", "variants", "maximum"), form(edit_forms.ExtendForm, "variants", "max_value"),
        serializer(edit_serializers.CampaignResceneInSerializer, "variants_per_segment", "max_value"),
    ],
    "MAX_STEPS": [
        schema("GenerateInRequest", "steps", "maximum"), form(forms.GenerateForm, "steps", "max_value"),
        service("campaign_generate", lambda n, w: campaign_generate(campaign=w["campaign"], steps=n, enqueue=False),
                "steps"),
        serializer(edit_serializers.ExtendEditInSerializer, "steps", "max_value"),
        schema("ExtendEditInRequest", "steps", "maximum"),
    ],
    "MAX_ATTRIBUTES_BYTES": [
        service("profile_clean_attributes", lambda n, w: profile_clean_attributes(attributes=attributes_of(n)),
                "attributes"),
        service("campaign_create segments",
                lambda n, w: _create(w, segments=[{"name": "a", "attributes": attributes_of(n)}]), "segments"),
    ],
    "MAX_FRAMES": [
        form(forms.CampaignForm, "num_frames", "max_value"),
        serializer(edit_serializers.ExtendEditInSerializer, "frames", "max_value"),
        schema("ExtendEditInRequest", "frames", "maximum"), form(edit_forms.ExtendForm, "frames", "max_value"),
    ],
    "MAX_SIDE": [form(forms.CampaignForm, "width", "max_value"), form(forms.CampaignForm, "height", "max_value")],
    "MAX_FPS": [
        form(forms.CampaignForm, "fps", "max_value"),
        service("campaign_create", lambda n, w: _create(w, fps=n), "fps"),
    ],
}


@pytest.fixture
def ctx(api, world):
    return {"api": api, "world": world}


@pytest.mark.parametrize("name,probe", [(name, probe) for name, probes in LAYERS.items() for probe in probes],
                         ids=lambda value: value if isinstance(value, str) else value[0])
def test_every_layer_enforces_the_one_limit(api, request, name, probe):
    label, read = probe
    expected = getattr(limits, name)
    # Only services need rows to work on.
    world = request.getfixturevalue("world") if label.startswith("service") else None
    observed = read({"api": api, "world": world, "limit": expected})
    assert observed == expected, f"{label} says {observed!r}, generation.limits.{name} is {expected!r}"


def test_every_limit_is_checked_somewhere():
    """A limit added to generation.limits without a row here fails this test."""
    names = {name for name in dir(limits) if name.isupper()}
    assert names == set(LAYERS) | {"TRAINING_LIMITS"}


@pytest.mark.parametrize("name", list(limits.TRAINING_LIMITS))
def test_training_limits_agree(ctx, name):
    low, high = limits.TRAINING_LIMITS[name]
    props = ctx["api"]["components"]["schemas"]["TrainInRequest"]["properties"][name]
    assert (props["minimum"], props["maximum"]) == (low, high)
    field = forms.TrainForm.base_fields[name]
    assert (field.min_value, field.max_value) == (low, high)
    brand = ctx["world"]["brand"]

    def refused(value) -> bool:
        try:
            services.brand_train(brand=brand, enqueue=False, **{name: value})
        except ValidationError as exc:
            return name in exc.message_dict
        except Exception:  # noqa: BLE001 - refused for another reason (no assets yet): the bounds passed
            return False
        return False

    step = 1 if isinstance(high, int) else low
    assert not refused(low) and not refused(high)
    assert refused(low - step if isinstance(high, int) else low / 10) and refused(high + step)
