"""factory_boy factories, one per model."""
import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from campaigns import models
from campaigns.services.webhooks import webhook_secret_new


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-123")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = models.Membership.Role.MARKETER


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Brand

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Brand {n}")
    palette = ["#FF5A1F", "#FFFFFF"]
    style_notes = "bold, sunny, playful"
    trigger_token = factory.Sequence(lambda n: f"brand{n}style")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Campaign

    brand = factory.SubFactory(BrandFactory)
    organization = factory.SelfAttribute("brand.organization")
    name = factory.Sequence(lambda n: f"Campaign {n}")
    brief = "Summer sale on trail shoes"
    num_frames = 9
    width = 64
    height = 64
    fps = 8


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Segment

    campaign = factory.SubFactory(CampaignFactory)
    organization = factory.SelfAttribute("campaign.organization")
    name = factory.Sequence(lambda n: f"Segment {n}")
    attributes = {"interests": ["hiking"]}


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Job

    organization = factory.SubFactory(OrganizationFactory)
    kind = models.Job.Kind.SEGMENT_PROFILES


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Profile

    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"viewer-{n}")
    attributes = {"interests": ["hiking"], "style": "minimal"}


class ClipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Clip

    campaign = factory.SubFactory(CampaignFactory)
    organization = factory.SelfAttribute("campaign.organization")
    segment = None
    prompt = "a prompt"
    seed = factory.Sequence(lambda n: n)
    model = "tiny"
    steps = 2
    guidance = 5.0
    num_frames = 9
    width = 64
    height = 64
    fps = 8
    video = factory.django.FileField(filename="clip.mp4", data=b"\x00\x00\x00\x18ftypmp42")
    poster = factory.django.FileField(filename="poster.jpg", data=b"\xff\xd8\xff")


class BrandAssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.BrandAsset

    brand = factory.SubFactory(BrandFactory)
    organization = factory.SelfAttribute("brand.organization")
    kind = models.BrandAsset.Kind.IMAGE
    content_type = "image/png"
    checksum = factory.Sequence(lambda n: f"{n:064x}")
    size_bytes = 100
    width = 64
    height = 64
    file = factory.django.FileField(filename="asset.png", data=b"\x89PNG\r\n\x1a\n")


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WebhookEndpoint

    organization = factory.SubFactory(OrganizationFactory)
    url = factory.Sequence(lambda n: f"https://hooks.example.com/{n}")
    events = ["clip.pending_review", "clip.approved", "clip.rejected"]
    secret = factory.LazyFunction(webhook_secret_new)


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    organization = factory.SelfAttribute("endpoint.organization")
    event_id = factory.Sequence(lambda n: f"msg_{n:032x}")
    type = "webhook.test"
    payload = '{"type":"webhook.test","timestamp":"2026-01-01T00:00:00Z","data":{}}'


class LoraAdapterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LoraAdapter

    brand = factory.SubFactory(BrandFactory)
    organization = factory.SelfAttribute("brand.organization")
    version = factory.Sequence(lambda n: n + 1)
    base_model = "tiny"
    status = models.LoraAdapter.Status.SUCCEEDED


class FleetWorkerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FleetWorker
        django_get_or_create = ("hostname",)

    hostname = factory.Sequence(lambda n: f"gpu{n}@fleet")
    seen_at = factory.LazyFunction(timezone.now)
    gpu = True


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A key row; tests that call the API with a key make it with services.api_key_create, which
    returns the raw key once."""

    class Meta:
        model = models.ApiKey

    organization = factory.SubFactory(OrganizationFactory)
    prefix = factory.Sequence(lambda n: f"ak_{n:06d}")
    hashed_key = factory.Sequence(lambda n: f"{n:064x}")
    scopes = [models.ApiKey.Scope.SERVE]


class SegmentMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SegmentMembership

    segment = factory.SubFactory(SegmentFactory)
    campaign = factory.SelfAttribute("segment.campaign")
    organization = factory.SelfAttribute("segment.organization")
    profile = factory.SubFactory(ProfileFactory, organization=factory.SelfAttribute("..organization"))


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Review

    clip = factory.SubFactory(ClipFactory)
    organization = factory.SelfAttribute("clip.organization")
    reviewer = factory.SubFactory(UserFactory)
    decision = models.Review.Decision.APPROVE


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Event

    clip = factory.SubFactory(ClipFactory)
    organization = factory.SelfAttribute("clip.organization")
    type = models.Event.Type.IMPRESSION


class RecipientPageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.RecipientPage

    campaign = factory.SubFactory(CampaignFactory)
    organization = factory.SelfAttribute("campaign.organization")
    profile = factory.SubFactory(ProfileFactory, organization=factory.SelfAttribute("..organization"))
    token = factory.Sequence(lambda n: f"test-page-token-{n:04d}-" + "x" * 24)
