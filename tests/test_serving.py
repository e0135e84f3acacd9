"""The clip for a viewer and events: only approved clips, segment then fallback, the same variant
for the same viewer, Thompson sampling toward better click-through, signed URLs that fetch the
MP4's bytes, a pinned query count, every status code of the contract, organization isolation."""
import random
import urllib.request
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.models import Campaign, Clip, Event, SegmentMembership
from campaigns.selectors_serving import campaign_stats
from campaigns.services.serving import thompson_choice
from tests import factories
from tests.conftest import api_client_for
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db
APPROVED = Clip.Status.APPROVED


@pytest.fixture
def campaign(org):
    return factories.CampaignFactory(brand__organization=org, status=Campaign.Status.LIVE)


def segment_of(campaign, name: str, position: int):
    return factories.SegmentFactory(campaign=campaign, name=name, position=position)


def approved_clip(campaign, segment, **fields):
    return factories.ClipFactory(campaign=campaign, segment=segment, status=APPROVED, **fields)


def member(campaign, segment, external_id: str, **fields):
    profile = factories.ProfileFactory(organization=campaign.organization, external_id=external_id)
    return SegmentMembership.objects.create(organization=campaign.organization, profile=profile, campaign=campaign,
                                            segment=segment, **fields)


def get_clip(client, campaign_id, profile: str | None = "viewer"):
    query = "" if profile is None else f"?profile={profile}"
    return client.get(f"/api/v1/campaigns/{campaign_id}/clip{query}")


# --- choosing the clip ---------------------------------------------------------------------------

def test_viewer_gets_an_approved_clip_of_their_segment(serve_client, campaign):
    hikers, gamers = segment_of(campaign, "Hikers", 0), segment_of(campaign, "Gamers", 1)
    approved_clip(campaign, hikers)
    factories.ClipFactory(campaign=campaign, segment=gamers, status=Clip.Status.PENDING_REVIEW)
    factories.ClipFactory(campaign=campaign, segment=gamers, status=Clip.Status.REJECTED)
    gamer_clip = approved_clip(campaign, gamers, width=96, height=64, num_frames=17, fps=12)
    member(campaign, gamers, "g1")

    response = get_clip(serve_client, campaign.pk, "g1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["clip"] == {"id": gamer_clip.pk, "url": body["clip"]["url"], "poster_url": body["clip"]["poster_url"],
                            "width": 96, "height": 64, "num_frames": 17, "fps": 12}
    assert body["segment"] == {"id": gamers.pk, "name": "Gamers"}
    assert body["fallback"] is False
    expires_at = parse_datetime(body["expires_at"])
    assert timezone.now() + timedelta(minutes=30) < expires_at <= timezone.now() + timedelta(hours=1, seconds=5)


def test_only_approved_clips_are_served(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    factories.ClipFactory(campaign=campaign, segment=segment, status=Clip.Status.PENDING_REVIEW)
    factories.ClipFactory(campaign=campaign, segment=segment, status=Clip.Status.REJECTED)
    member(campaign, segment, "v1")
    error = assert_error(get_clip(serve_client, campaign.pk, "v1"), 404, "no_clip")
    assert "approved" in error["message"]
    assert_error(get_clip(serve_client, campaign.pk, "stranger"), 404, "no_clip")


def test_segment_without_approved_clips_falls_back_to_the_first_segment(serve_client, campaign):
    first, second, third = (segment_of(campaign, n, p) for n, p in (("First", 0), ("Second", 1), ("Third", 2)))
    approved_clip(campaign, second)
    fallback = approved_clip(campaign, second)
    factories.ClipFactory(campaign=campaign, segment=first, status=Clip.Status.PENDING_REVIEW)
    approved_clip(campaign, None)  # clips without a segment come last
    member(campaign, third, "t1")

    body = get_clip(serve_client, campaign.pk, "t1").json()
    assert body["clip"]["id"] in {fallback.pk, fallback.pk - 1}
    assert body["segment"] == {"id": third.pk, "name": "Third"} and body["fallback"] is True


def test_unknown_viewer_gets_the_fallback_with_no_segment_and_always_the_same(serve_client, campaign):
    first = segment_of(campaign, "First", 0)
    ids = {approved_clip(campaign, first).pk for _ in range(3)}
    answers = {get_clip(serve_client, campaign.pk, "never-seen").json()["clip"]["id"] for _ in range(4)}
    assert len(answers) == 1 and answers <= ids
    body = get_clip(serve_client, campaign.pk, "never-seen").json()
    assert body["segment"] is None and body["fallback"] is True
    # Different unknown viewers spread over the variants.
    spread = {get_clip(serve_client, campaign.pk, f"anon-{i}").json()["clip"]["id"] for i in range(30)}
    assert len(spread) > 1


def test_any_approved_clip_when_no_segment_has_one(serve_client, campaign):
    segment_of(campaign, "Empty", 0)
    loose = approved_clip(campaign, None)
    assert get_clip(serve_client, campaign.pk, "x").json()["clip"]["id"] == loose.pk


def test_the_same_viewer_keeps_the_same_variant(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    variants = [approved_clip(campaign, segment, variant=v) for v in range(4)]
    membership = member(campaign, segment, "loyal")
    first = get_clip(serve_client, campaign.pk, "loyal").json()["clip"]["id"]
    membership.refresh_from_db()
    assert membership.clip_id == first
    # Even when another variant becomes the clear winner, this viewer keeps theirs.
    winner = next(c for c in variants if c.pk != first)
    Clip.objects.filter(pk=winner.pk).update(impressions=1000, clicks=900)
    assert {get_clip(serve_client, campaign.pk, "loyal").json()["clip"]["id"] for _ in range(5)} == {first}


def test_a_withdrawn_variant_is_replaced(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    a, b = approved_clip(campaign, segment), approved_clip(campaign, segment)
    member(campaign, segment, "v", clip=a)
    assert get_clip(serve_client, campaign.pk, "v").json()["clip"]["id"] == a.pk
    Clip.objects.filter(pk=a.pk).update(status=Clip.Status.REJECTED)
    assert get_clip(serve_client, campaign.pk, "v").json()["clip"]["id"] == b.pk
    assert SegmentMembership.objects.get(profile__external_id="v").clip_id == b.pk


def test_better_click_through_wins_more_new_viewers(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    good = approved_clip(campaign, segment, impressions=1000, clicks=300)
    approved_clip(campaign, segment, impressions=1000, clicks=10)
    for i in range(30):
        member(campaign, segment, f"new-{i}")
    chosen = [get_clip(serve_client, campaign.pk, f"new-{i}").json()["clip"]["id"] for i in range(30)]
    assert chosen.count(good.pk) >= 28


def test_thompson_sampling_explores_untried_variants():
    a, b = Clip(pk=1, impressions=0, clicks=0), Clip(pk=2, impressions=0, clicks=0)
    rng = random.Random(7)
    picks = [thompson_choice([a, b], rng).pk for _ in range(200)]
    assert 60 < picks.count(1) < 140
    worse = Clip(pk=3, impressions=200, clicks=2)
    better = Clip(pk=4, impressions=200, clicks=40)
    assert [thompson_choice([worse, better], rng).pk for _ in range(100)].count(4) >= 95


# --- the URL -------------------------------------------------------------------------------------

def _stored_clip(campaign, tiny_mp4):
    segment = segment_of(campaign, "All", 0)
    prefix = f"org-{campaign.organization_id}/campaigns/{campaign.pk}/clips"
    video = default_storage.save(f"{prefix}/real.mp4", ContentFile(tiny_mp4))
    poster = default_storage.save(f"{prefix}/real.jpg", ContentFile(b"\xff\xd8\xff\xe0poster"))
    return approved_clip(campaign, segment, video=video, poster=poster)


def test_url_fetches_the_mp4_from_s3_with_a_plain_get(serve_client, campaign, tiny_mp4):
    _stored_clip(campaign, tiny_mp4)
    body = get_clip(serve_client, campaign.pk, "viewer").json()
    assert "X-Amz-Signature" in body["clip"]["url"]
    with urllib.request.urlopen(body["clip"]["url"]) as response:  # no key, no cookies
        assert response.read() == tiny_mp4
    with urllib.request.urlopen(body["clip"]["poster_url"]) as response:
        assert response.read().startswith(b"\xff\xd8")


def test_url_fetches_the_mp4_from_local_storage(serve_client, campaign, tiny_mp4, local_storage, client):
    _stored_clip(campaign, tiny_mp4)
    body = get_clip(serve_client, campaign.pk, "viewer").json()
    assert body["clip"]["url"].startswith("http://testserver/files/")
    response = client.get(body["clip"]["url"])
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == tiny_mp4


def test_signed_urls_are_reused_while_fresh(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    approved_clip(campaign, segment)
    urls = {get_clip(serve_client, campaign.pk, f"v{i}").json()["clip"]["url"] for i in range(3)}
    assert len(urls) == 1


# --- cost of the hot path ------------------------------------------------------------------------

def test_query_count_is_pinned(serve_client, campaign, django_assert_max_num_queries, django_assert_num_queries):
    segment = segment_of(campaign, "All", 0)
    for variant in range(3):
        approved_clip(campaign, segment, variant=variant)
    member(campaign, segment, "counted")
    # A key's first request: the key (and its last_used_at, once a minute), then as below.
    with django_assert_max_num_queries(5):
        get_clip(serve_client, campaign.pk, "warm-up")
    # First visit: one join (campaign, viewer, membership, remembered clip), the variants, the choice.
    with django_assert_max_num_queries(3):
        assert get_clip(serve_client, campaign.pk, "counted").status_code == 200
    # Every later visit: the same join, over primary keys and unique indexes, and nothing else.
    with django_assert_num_queries(1):
        assert get_clip(serve_client, campaign.pk, "counted").status_code == 200
    # An unknown viewer: the join (campaign only), then the fallback's variants.
    with django_assert_max_num_queries(2):
        assert get_clip(serve_client, campaign.pk, "stranger").status_code == 200


def test_a_revoked_key_stops_serving_within_seconds(org, campaign, monkeypatch):
    from campaigns.api.serve_views import RememberingApiKeyAuthentication
    from campaigns.models import ApiKey

    approved_clip(campaign, segment_of(campaign, "All", 0))
    client = api_client_for(org, ["serve"])
    assert get_clip(client, campaign.pk).status_code == 200
    ApiKey.objects.filter(organization=org).update(revoked_at=timezone.now())
    assert get_clip(client, campaign.pk).status_code == 200  # remembered for up to TTL_S seconds
    monkeypatch.setattr(RememberingApiKeyAuthentication, "TTL_S", 0.0)
    RememberingApiKeyAuthentication.forget_all()
    assert_error(get_clip(client, campaign.pk), 401)


# --- status codes and isolation ------------------------------------------------------------------

def test_missing_or_bad_profile_is_400(serve_client, campaign):
    error = assert_error(get_clip(serve_client, campaign.pk, None), 400, "invalid")
    assert "profile" in error["details"] and "required" in error["message"]
    error = assert_error(get_clip(serve_client, campaign.pk, "bad%20id"), 400, "invalid")
    assert "profile" in error["details"]


@pytest.mark.parametrize("state, word", [(Campaign.Status.PAUSED, "paused"), (Campaign.Status.ARCHIVED, "archived")])
def test_paused_or_archived_campaign_serves_no_clip(serve_client, campaign, state, word):
    segment = segment_of(campaign, "All", 0)
    approved_clip(campaign, segment)
    member(campaign, segment, "v")
    Campaign.objects.filter(pk=campaign.pk).update(status=state)
    for viewer in ("v", "stranger"):
        error = assert_error(get_clip(serve_client, campaign.pk, viewer), 404, "no_clip")
        assert word in error["message"] and error["details"]["campaign_status"] == state


def test_in_review_and_generating_campaigns_serve_their_approved_clips(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    approved_clip(campaign, segment)
    for state in (Campaign.Status.IN_REVIEW, Campaign.Status.GENERATING):
        Campaign.objects.filter(pk=campaign.pk).update(status=state)
        assert get_clip(serve_client, campaign.pk, "v").status_code == 200


def test_unknown_campaign_is_404(serve_client):
    assert_error(get_clip(serve_client, 987654321, "v"), 404, "not_found")


def test_another_organizations_campaign_is_404(serve_client, other_org):
    theirs = factories.CampaignFactory(brand__organization=other_org, status=Campaign.Status.LIVE)
    segment = segment_of(theirs, "All", 0)
    approved_clip(theirs, segment)
    member(theirs, segment, "v")
    assert_error(get_clip(serve_client, theirs.pk, "v"), 404, "not_found")


def test_another_organizations_viewer_is_a_stranger_here(serve_client, campaign, other_org):
    segment = segment_of(campaign, "Ours", 0)
    approved_clip(campaign, segment)
    theirs = factories.CampaignFactory(brand__organization=other_org)
    their_segment = segment_of(theirs, "Theirs", 0)
    profile = factories.ProfileFactory(organization=other_org, external_id="shared-id")
    SegmentMembership.objects.create(organization=other_org, profile=profile, campaign=theirs, segment=their_segment)
    assert get_clip(serve_client, campaign.pk, "shared-id").json()["segment"] is None


def test_clip_endpoint_needs_a_serve_key(client, manage_client, campaign):
    assert_error(get_clip(client, campaign.pk), 401)
    assert_error(get_clip(manage_client, campaign.pk), 403, "permission_denied")


def test_serve_path_is_rate_limited_with_retry_after(org, campaign):
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    from campaigns.api.throttles import ApiKeyRateThrottle

    segment = segment_of(campaign, "All", 0)
    approved_clip(campaign, segment)
    client = api_client_for(org, ["serve"])
    cache.clear()
    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "3/min"}
    try:
        assert [get_clip(client, campaign.pk).status_code for _ in range(3)] == [200] * 3
        response = get_clip(client, campaign.pk)
        assert_error(response, 429, "rate_limited")
        assert 1 <= int(response["Retry-After"]) <= 60
        assert_error(client.post("/api/v1/events", {}, format="json"), 429)
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original
        cache.clear()


# --- events --------------------------------------------------------------------------------------

def post_event(client, clip_id, profile="viewer", kind="impression"):
    return client.post("/api/v1/events", {"clip_id": clip_id, "profile": profile, "type": kind}, format="json")


def test_events_are_accepted_and_counted(serve_client, campaign):
    segment = segment_of(campaign, "All", 0)
    clip = approved_clip(campaign, segment)
    membership = member(campaign, segment, "fan")
    for kind in ("impression", "impression", "click", "complete"):
        response = post_event(serve_client, clip.pk, "fan", kind)
        assert response.status_code == 202, response.content
    assert response.json()["type"] == "complete" and response.json()["clip_id"] == clip.pk
    clip.refresh_from_db()
    assert (clip.impressions, clip.clicks, clip.completes) == (2, 1, 1)
    events = Event.objects.filter(clip=clip)
    assert events.count() == 4
    assert set(events.values_list("profile_id", "segment_id")) == {(membership.profile_id, segment.pk)}


def test_an_unknown_viewers_event_counts_without_a_profile(serve_client, campaign):
    clip = approved_clip(campaign, None)
    assert post_event(serve_client, clip.pk, "not-upserted").status_code == 202
    event = Event.objects.get(clip=clip)
    assert event.profile_id is None and event.segment_id is None


@pytest.mark.parametrize("body, field, needle", [
    ({"profile": "v", "type": "impression"}, "clip_id", "required"),
    ({"clip_id": "seven", "profile": "v", "type": "impression"}, "clip_id", "integer"),
    ({"clip_id": 1, "type": "impression"}, "profile", "required"),
    ({"clip_id": 1, "profile": "bad id", "type": "impression"}, "profile", "128"),
    ({"clip_id": 1, "profile": "v"}, "type", "required"),
    ({"clip_id": 1, "profile": "v", "type": "view"}, "type", "impression, click, complete"),
])
def test_bad_events_are_400_naming_the_field(serve_client, campaign, body, field, needle):
    clip = approved_clip(campaign, None)
    if body.get("clip_id") == 1:
        body = {**body, "clip_id": clip.pk}
    error = assert_error(serve_client.post("/api/v1/events", body, format="json"), 400, "invalid")
    assert field in error["details"] and needle in error["message"], error
    assert not Event.objects.exists()


def test_an_unknown_or_foreign_clip_is_400_naming_clip_id(serve_client, other_org):
    theirs = factories.ClipFactory(campaign__brand__organization=other_org, status=APPROVED)
    for clip_id in (987654321, theirs.pk):
        error = assert_error(post_event(serve_client, clip_id), 400, "invalid")
        assert "clip_id" in error["details"] and "no clip" in error["message"]
    theirs.refresh_from_db()
    assert theirs.impressions == 0 and not Event.objects.exists()


def test_events_need_a_serve_key(client, manage_client):
    assert_error(client.post("/api/v1/events", {}, format="json"), 401)
    assert_error(manage_client.post("/api/v1/events", {}, format="json"), 403)


# --- the dashboard's figures ---------------------------------------------------------------------

def test_campaign_stats(campaign, django_assert_max_num_queries):
    hikers, gamers = segment_of(campaign, "Hikers", 0), segment_of(campaign, "Gamers", 1)
    a = approved_clip(campaign, hikers, variant=0, impressions=100, clicks=10, completes=50, starts=90,
                      first_quartiles=80, midpoints=70, third_quartiles=60)
    b = approved_clip(campaign, hikers, variant=1, impressions=100, clicks=30, completes=60, starts=95)
    approved_clip(campaign, None, impressions=4, clicks=1)
    member(campaign, hikers, "h1", clip=a)
    member(campaign, hikers, "h2", clip=b)
    member(campaign, hikers, "h3", clip=b)
    member(campaign, gamers, "g1")

    with django_assert_max_num_queries(4):
        stats = campaign_stats(campaign=campaign)
    assert stats["campaign_id"] == campaign.pk
    assert stats["totals"] == {"viewers": 4, "impressions": 204, "starts": 185, "first_quartiles": 80,
                               "midpoints": 70, "third_quartiles": 60, "clicks": 41, "completes": 110,
                               "ctr": round(41 / 204, 4), "completion_rate": round(110 / 204, 4)}
    assert [c["first_quartiles"] for c in stats["segments"][0]["clips"]] == [80, 0]
    first, second = stats["segments"]
    assert (first["name"], first["viewers"], first["impressions"], first["clicks"], first["ctr"]) == \
        ("Hikers", 3, 200, 40, 0.2)
    assert [(c["id"], c["viewers"], c["ctr"]) for c in first["clips"]] == [(a.pk, 1, 0.1), (b.pk, 2, 0.3)]
    assert (second["name"], second["viewers"], second["clips"], second["ctr"]) == ("Gamers", 1, [], 0.0)
    assert [c["clicks"] for c in stats["unsegmented_clips"]] == [1]


def test_the_rate_limit_keeps_a_counter_not_a_log(org, campaign):
    """DRF's default throttle caches a list of every request's time, (un)pickled on each request:
    the cost grows with the rate. Ours keeps one integer per key and window."""
    import time

    from django.core.cache import cache

    from campaigns.models import ApiKey

    approved_clip(campaign, segment_of(campaign, "All", 0))
    client = api_client_for(org, ["serve"])
    cache.clear()
    for _ in range(5):
        assert get_clip(client, campaign.pk).status_code == 200
    key = ApiKey.objects.get(organization=org)
    window = int(time.time() // 60)
    counts = [cache.get(f"throttle_api_key_{key.pk}:{w}") for w in (window - 1, window)]
    assert sum(c or 0 for c in counts) == 5 and all(c is None or isinstance(c, int) for c in counts)
    cache.clear()
