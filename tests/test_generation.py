"""Campaigns and clip generation through the API and a real worker, on the tiny checkpoint."""

import numpy as np
import pytest

from campaigns import services
from campaigns.models import Campaign, Clip, Job, Review
from tests import factories
from tests.conftest import bucket_keys, worker_wait_idle
from tests.helpers import assert_error, decode, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def brand(org):
    return services.brand_create(organization=org, name="Trailhead", palette=["#E4572E", "#29335C"],
                                 style_notes="sunlit, warm film grain")


def create(client, brand, **fields):
    body = {"brand": brand.pk, "name": "Summer", "brief": "Trail shoes for the weekend", **fields}
    return client.post("/api/v1/campaigns", body, format="json")


# --- creation and validation ---------------------------------------------------------------------

def test_a_brief_longer_than_the_prompt_builder_takes_is_refused_at_creation(manage_client, brand):
    from generation.limits import MAX_BRIEF_CHARS

    response = create(manage_client, brand, brief="x" * (MAX_BRIEF_CHARS + 1))
    assert response.status_code == 400, response.content
    assert "brief" in response.json()["error"]["details"]
    assert not brand.campaigns.exists()
    assert create(manage_client, brand, brief="x" * MAX_BRIEF_CHARS).status_code == 201
    # The served schema states the same limit.
    schema = manage_client.get("/api/v1/schema/?format=json").json()
    assert schema["components"]["schemas"]["CampaignInRequest"]["properties"]["brief"]["maxLength"] == MAX_BRIEF_CHARS


def test_campaign_defaults_come_from_the_model(manage_client, brand):
    response = create(manage_client, brand)
    assert response.status_code == 201, response.content
    body = response.json()
    # `tiny`, the default model, learned 9-frame 32 px clips.
    assert (body["num_frames"], body["width"], body["height"], body["fps"]) == (9, 32, 32, 8)
    assert [s["name"] for s in body["segments"]] == ["General"]
    assert body["status"] == "draft"


@pytest.mark.parametrize("field,value,allowed", [
    ("num_frames", 10, "4k+1"),
    ("width", 100, "multiple of 16"),
    ("height", 0, "height"),
    ("num_frames", "many", "num_frames"),
    ("fps", 0, "1 to 60"),
])
def test_sizes_the_model_cannot_take_are_refused(manage_client, brand, field, value, allowed):
    body = assert_error(create(manage_client, brand, **{field: value}), 400, "invalid")
    assert field in body["details"]
    assert allowed in body["details"][field][0]
    assert not Campaign.objects.exists()


def test_marketer_defined_segments(manage_client, brand):
    segments = [{"name": "Hikers", "attributes": {"interests": ["hiking"]}},
                {"name": "城市通勤", "attributes": {"style": "極簡", "locale": "zh-TW"}}]
    body = create(manage_client, brand, segments=segments, num_frames=9, width=32, height=32).json()
    assert [s["name"] for s in body["segments"]] == ["Hikers", "城市通勤"]
    assert body["segments"][1]["attributes"] == {"style": "極簡", "locale": "zh-TW"}


@pytest.mark.parametrize("segments,message", [
    ([{"attributes": {}}], "name"),
    ([{"name": "A"}, {"name": "A"}], "unique"),
    (0, "between 1"),
    ("three", "integer k or a list"),
])
def test_bad_segments_are_refused(manage_client, brand, segments, message):
    body = assert_error(create(manage_client, brand, segments=segments), 400)
    assert message in body["details"]["segments"][0]


def test_another_organizations_brand_is_refused(manage_client, other_org):
    foreign = factories.BrandFactory(organization=other_org)
    body = assert_error(create(manage_client, foreign), 400)
    assert "brand" in body["details"]


def test_another_organizations_campaign_is_404(manage_client, other_org):
    campaign = factories.CampaignFactory(brand__organization=other_org)
    assert_error(manage_client.get(f"/api/v1/campaigns/{campaign.pk}"), 404)
    assert_error(manage_client.post(f"/api/v1/campaigns/{campaign.pk}/generate", {}, format="json"), 404)
    assert_error(manage_client.get(f"/api/v1/campaigns/{campaign.pk}/clips"), 404)


def test_bad_variant_count_is_400(manage_client, brand):
    campaign_id = create(manage_client, brand).json()["id"]
    body = assert_error(manage_client.post(f"/api/v1/campaigns/{campaign_id}/generate",
                                           {"variants_per_segment": 99}, format="json"), 400)
    assert "variants_per_segment" in body["details"]


def test_clip_status_filter_is_validated(manage_client, brand):
    campaign_id = create(manage_client, brand).json()["id"]
    body = assert_error(manage_client.get(f"/api/v1/campaigns/{campaign_id}/clips?status=maybe"), 400)
    assert "pending_review" in body["message"]


# --- generation through a real worker ------------------------------------------------------------

def run_generation(client, campaign_id: int, **body) -> Job:
    response = client.post(f"/api/v1/campaigns/{campaign_id}/generate", {"steps": 2, **body}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=240)
    job.refresh_from_db()
    return job


@pytest.mark.worker
def test_generation_makes_reviewable_clips(worker, manage_client, brand):
    segments = [{"name": "Hikers", "attributes": {"interests": ["hiking"]}},
                {"name": "通勤族", "attributes": {"style": "極簡"}}]
    campaign_id = create(manage_client, brand, segments=segments, num_frames=9, width=32, height=48).json()["id"]
    job = run_generation(manage_client, campaign_id, variants_per_segment=2)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.progress == 1.0 and job.result["clips"] == 4
    assert Campaign.objects.get(pk=campaign_id).status == Campaign.Status.IN_REVIEW

    clips = manage_client.get(f"/api/v1/campaigns/{campaign_id}/clips?status=pending_review").json()
    assert len(clips) == 4
    for clip in clips:
        assert (clip["model"], clip["steps"], clip["lora_version"]) == ("tiny", 2, None)
        assert clip["video_url"] and clip["poster_url"]
        frames = decode(Clip.objects.get(pk=clip["id"]).video.name)
        assert frames.shape == (9, 48, 32, 3)  # frames, height, width: the asked size, decoded back
    prompts = {c["segment"]["name"]: c["prompt"] for c in clips}
    assert prompts["Hikers"] != prompts["通勤族"]
    assert "極簡" in prompts["通勤族"] and brand.trigger_token in prompts["Hikers"]
    seeds = [c["seed"] for c in clips]
    assert len(set(seeds)) == 4  # distinct seeds per variant

    # The same slots again: same seeds, identical frames.
    again = run_generation(manage_client, campaign_id, variants_per_segment=2)
    assert again.status == Job.Status.SUCCEEDED
    for clip in Clip.objects.filter(job=job):
        twin = Clip.objects.get(job=again, segment=clip.segment, variant=clip.variant)
        assert twin.seed == clip.seed
        assert np.array_equal(decode(twin.video.name), decode(clip.video.name))


@pytest.mark.worker
def test_cancelled_generation_leaves_nothing_behind(worker, manage_client, brand, s3_client):
    campaign_id = create(manage_client, brand, num_frames=17, width=64, height=64,
                         segments=[{"name": "A", "attributes": {}}, {"name": "B", "attributes": {}}]).json()["id"]
    response = manage_client.post(f"/api/v1/campaigns/{campaign_id}/generate",
                                  {"steps": 200, "variants_per_segment": 2}, format="json")
    job_id = response.json()["job"]["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).progress > 0.05, timeout=120, interval=0.05)
    assert manage_client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
    # The worker stops at its next step and cleans up; then look for leftovers.
    worker_wait_idle()
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.CANCELLED and job.progress < 0.9
    assert not [k for k in bucket_keys(s3_client) if f"campaigns/{campaign_id}/" in k]
    assert Campaign.objects.get(pk=campaign_id).status == Campaign.Status.DRAFT
    # A new generation may start once it has stopped.
    assert manage_client.post(f"/api/v1/campaigns/{campaign_id}/generate", {"steps": 1}, format="json").status_code == 202


def test_generating_twice_at_once_is_409(manage_client, brand):
    campaign_id = create(manage_client, brand).json()["id"]
    assert manage_client.post(f"/api/v1/campaigns/{campaign_id}/generate", {}, format="json").status_code == 202
    body = assert_error(manage_client.post(f"/api/v1/campaigns/{campaign_id}/generate", {}, format="json"), 409)
    assert body["code"] == "already_generating"


# --- review --------------------------------------------------------------------------------------

def test_review_is_final_and_audited(manage_client, org):
    clip = factories.ClipFactory(campaign__brand__organization=org)
    response = manage_client.post(f"/api/v1/clips/{clip.pk}/review", {"decision": "approve", "note": "on brand"},
                                  format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    body = assert_error(manage_client.post(f"/api/v1/clips/{clip.pk}/review", {"decision": "reject"}, format="json"),
                        409, "already_decided")
    assert "API key" in body["message"]
    assert [(r.decision, r.note) for r in Review.objects.filter(clip=clip)] == [("approve", "on brand")]


def test_review_needs_a_known_decision(manage_client, org):
    clip = factories.ClipFactory(campaign__brand__organization=org)
    body = assert_error(manage_client.post(f"/api/v1/clips/{clip.pk}/review", {"decision": "maybe"}, format="json"), 400)
    assert "decision" in body["details"]


def test_reviewing_another_organizations_clip_is_404(manage_client, other_org):
    clip = factories.ClipFactory(campaign__brand__organization=other_org)
    assert_error(manage_client.post(f"/api/v1/clips/{clip.pk}/review", {"decision": "approve"}, format="json"), 404)


def test_only_reviewers_decide_in_person(org):
    clip = factories.ClipFactory(campaign__brand__organization=org)
    marketer = factories.MembershipFactory(organization=org, role="marketer").user
    reviewer = factories.MembershipFactory(organization=org, role="reviewer").user
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.clip_review(clip=clip, decision="approve", user=marketer)
    assert services.clip_review(clip=clip, decision="reject", note="off palette", user=reviewer).status == "rejected"


def test_going_live_needs_an_approved_clip(manage_client, org):
    clip = factories.ClipFactory(campaign__brand__organization=org, campaign__status="in_review")
    url = f"/api/v1/campaigns/{clip.campaign_id}/status"
    assert_error(manage_client.post(url, {"status": "live"}, format="json"), 409, "no_approved_clip")
    services.clip_review(clip=clip, decision="approve")
    assert manage_client.post(url, {"status": "live"}, format="json").json()["status"] == "live"
    assert manage_client.post(url, {"status": "paused"}, format="json").json()["status"] == "paused"
    assert_error(manage_client.post(url, {"status": "draft"}, format="json"), 400)


@pytest.mark.worker
def test_a_failed_generation_says_why_and_releases_the_campaign(worker, manage_client, brand, settings, tmp_path):
    campaign_id = create(manage_client, brand, num_frames=9, width=32, height=32).json()["id"]
    settings.GENERATION_MODEL = str(tmp_path / "no-such-model")
    job = run_generation(manage_client, campaign_id)
    assert job.status == Job.Status.FAILED
    assert "no-such-model" in job.error and "local folder" in job.error
    assert Campaign.objects.get(pk=campaign_id).status == Campaign.Status.DRAFT
    assert manage_client.get(f"/api/v1/jobs/{job.pk}").json()["status"] == "failed"


def test_a_worker_never_takes_another_databases_cached_lora_for_this_one():
    """The work folder outlives a database (make demo after its SQLite file was deleted): the next
    database's adapter of the same id and version is another adapter, with other weights."""
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from campaigns.services.generation import lora_local_file

    lora = factories.LoraAdapterFactory()
    name = f"org-{lora.organization_id}/brands/{lora.brand_id}/loras/v{lora.version}/weights.safetensors"
    lora.file.name = default_storage.save(name, ContentFile(b"first database's weights"))
    lora.save()
    assert lora_local_file(lora).read_bytes() == b"first database's weights"
    assert lora_local_file(lora).read_bytes() == b"first database's weights"  # cached: fetched once

    # The same id and version, stored under the same name, in a database made later.
    default_storage.delete(lora.file.name)
    lora.file.name = default_storage.save(name, ContentFile(b"second database's weights"))
    lora.created_at += timedelta(minutes=5)
    lora.save()
    assert lora_local_file(lora).read_bytes() == b"second database's weights"
