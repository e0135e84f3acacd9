"""Reads: one accessor per lookup, always scoped by the organization.

A row of another organization is answered exactly as a row that does not exist (Http404).
"""
import re

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from campaigns.models import (
    Brand,
    BrandAsset,
    Campaign,
    Clip,
    Job,
    LoraAdapter,
    Membership,
    Organization,
    Profile,
    Review,
    Segment,
    WebhookDelivery,
    WebhookEndpoint,
)

# secrets.token_urlsafe output (services.recipients makes 43 characters).
RECIPIENT_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user, organization: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=organization).first()


def brand_list(*, organization: Organization) -> QuerySet[Brand]:
    return Brand.objects.filter(organization=organization).order_by("name")


def brand_get(*, organization: Organization, brand_id) -> Brand:
    return get_object_or_404(brand_list(organization=organization), pk=_int(brand_id))


def asset_list_for_brand(*, brand: Brand) -> QuerySet[BrandAsset]:
    return BrandAsset.objects.filter(organization_id=brand.organization_id, brand=brand).order_by("created_at")


def lora_list_for_brand(*, brand: Brand) -> QuerySet[LoraAdapter]:
    return LoraAdapter.objects.filter(organization_id=brand.organization_id, brand=brand).order_by("-version")


def lora_latest_for_brand(*, brand: Brand) -> LoraAdapter | None:
    return lora_list_for_brand(brand=brand).filter(status=LoraAdapter.Status.SUCCEEDED).first()


def job_list(*, organization: Organization) -> QuerySet[Job]:
    return Job.objects.filter(organization=organization).select_related("brand", "campaign").order_by("-created_at")


def job_get(*, organization: Organization, job_id) -> Job:
    return get_object_or_404(job_list(organization=organization), pk=_int(job_id))


def campaign_list(*, organization: Organization) -> QuerySet[Campaign]:
    return Campaign.objects.filter(organization=organization).select_related("brand").order_by("-created_at")


def campaign_get(*, organization: Organization, campaign_id) -> Campaign:
    return get_object_or_404(campaign_list(organization=organization), pk=_int(campaign_id))


def segment_list_for_campaign(*, campaign: Campaign) -> QuerySet[Segment]:
    return Segment.objects.filter(organization_id=campaign.organization_id, campaign=campaign)


def segment_get(*, campaign: Campaign, segment_id) -> Segment:
    return get_object_or_404(segment_list_for_campaign(campaign=campaign).select_related("campaign"),
                             pk=_int(segment_id))


def segments_with_size():
    """A prefetch of campaigns' segments, each with ``size``: the viewers placed in it (one query)."""
    from django.db.models import Count, Prefetch

    return Prefetch("segments", queryset=Segment.objects.annotate(size=Count("memberships")))


def clip_list_for_campaign(*, campaign: Campaign, status: str | None = None) -> QuerySet[Clip]:
    clips = Clip.objects.filter(organization_id=campaign.organization_id, campaign=campaign).select_related("segment")
    if status:
        clips = clips.filter(status=status)
    return clips


def clip_get(*, organization: Organization, clip_id) -> Clip:
    return get_object_or_404(
        Clip.objects.filter(organization=organization).select_related("campaign", "segment"), pk=_int(clip_id)
    )


def clip_list_pending(*, organization: Organization) -> QuerySet[Clip]:
    return (
        Clip.objects.filter(organization=organization, status=Clip.Status.PENDING_REVIEW)
        .select_related("campaign", "segment")
        .order_by("created_at", "id")
    )


def review_list(*, organization: Organization) -> QuerySet[Review]:
    return (
        Review.objects.filter(organization=organization)
        .select_related("clip", "clip__campaign", "reviewer", "api_key")
        .order_by("-created_at")
    )


def profile_get(*, organization: Organization, external_id: str) -> Profile:
    return get_object_or_404(Profile.objects.filter(organization=organization), external_id=external_id)


def _int(value) -> int:
    """Ids from URLs: anything that is not a positive integer is simply not found."""
    from django.http import Http404

    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Http404("not found") from None
    if number <= 0 or number > 2**62:
        raise Http404("not found")
    return number


def webhook_endpoint_list(*, organization: Organization) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=organization).order_by("-created_at", "-id")


def webhook_endpoint_get(*, organization: Organization, endpoint_id) -> WebhookEndpoint:
    return get_object_or_404(webhook_endpoint_list(organization=organization), pk=_int(endpoint_id))


def webhook_delivery_list_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(organization_id=endpoint.organization_id, endpoint=endpoint).order_by(
        "-created_at", "-id")


def recipient_page_by_token(*, token: str):
    """A live personal landing page by its token, with what the page shows; None when the token is
    unknown or revoked. Not scoped by organization: the long random token is the credential."""
    from campaigns.models import RecipientPage

    if not isinstance(token, str) or not RECIPIENT_TOKEN.fullmatch(token):
        return None  # not a token this platform makes: no query
    return (RecipientPage.objects.filter(token=token, revoked_at__isnull=True)
            .select_related("organization", "campaign__brand", "profile").first())
