"""Issue 12: clustered segments are k-anonymous (SEGMENT_MIN_SIZE, default 20) and erasure erases.

A viewer with rare attribute values must never be readable through a segment's name, attributes,
centroid or setting, a segmentation job's result, a clip's prompt, the API, the dashboard or the
logs: not while they are a viewer, and not after DELETE /profiles/{id}. Erasure recomputes what was
derived from them and merges a segment that falls under k.
"""
import json
import logging

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from campaigns import services
from campaigns.models import Campaign, Clip, Job, Profile, Segment, SegmentMembership, WebhookDelivery
from campaigns.services import webhooks
from campaigns.services.generation import segment_prompt
from campaigns.services.profiles import profile_embed
from campaigns.services.segmentation import campaign_segment_run, segments_refresh
from generation import embeddings
from generation.segmentation import Cluster, describe, merge_small, normalise, segment
from tests import factories
from tests.conftest import api_client_for, bucket_keys

# Carol's values: nobody else holds them.
RARE = {"city": "Springfield", "groups": ["HIV support group"], "religion": "Zoroastrian"}
RARE_WORDS = ("Springfield", "HIV support group", "Zoroastrian")
CAROL = {"interests": ["hiking"], **RARE}
HIKER = {"interests": ["hiking", "camping"], "style": "outdoor"}
GAMER = {"interests": ["video games", "esports"], "style": "neon"}


@pytest.mark.slow
def test_k_is_20_unless_the_environment_says_otherwise():
    import os
    import subprocess
    import sys
    from pathlib import Path

    assert django_settings.SEGMENT_MIN_SIZE == 20
    show = "import django; django.setup(); from django.conf import settings; print(settings.SEGMENT_MIN_SIZE)"
    for value, expected in (("50", "50"), ("0", "1")):  # never below 1
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "adplatform.settings", "DJANGO_DEBUG": "1",
               "SEGMENT_MIN_SIZE": value}
        shown = subprocess.run([sys.executable, "-c", show], cwd=Path(__file__).resolve().parent.parent, env=env,
                               capture_output=True, text=True, timeout=120)
        assert shown.stdout.strip() == expected, shown.stderr


# --- the engine ------------------------------------------------------------------------------------

def test_values_held_by_fewer_than_k_members_never_describe_a_cluster():
    members = [{"interests": ["hiking"], "style": "outdoor"}] * 3 + [{"interests": ["hiking"], "city": "Springfield"}]
    assert describe(members, members, min_count=4) == ("hiking", {"interests": ["hiking"]})
    # Half the members hold "outdoor", but only 3 < k of them.
    assert describe(members * 2, members * 2, min_count=4)[1] == {"interests": ["hiking"], "style": "outdoor"}
    assert describe(members[:3], members, min_count=4) == ("General", {})


def test_a_cluster_under_k_merges_into_its_nearest_neighbour():
    axes = np.eye(4, dtype=np.float32)
    rows = np.stack([axes[0]] * 5 + [axes[1]] * 5 + [normalise(axes[1] + 0.2 * axes[2])])
    clusters = [Cluster(centroid=axes[0], members=list(range(5))), Cluster(centroid=axes[1], members=list(range(5, 10))),
                Cluster(centroid=rows[10], members=[10])]
    merged = merge_small(clusters, rows, min_size=5)
    assert sorted(c.members for c in merged) == [[0, 1, 2, 3, 4], list(range(5, 11))]
    big = next(c for c in merged if 10 in c.members)
    assert np.allclose(big.centroid, normalise(rows[5:].mean(axis=0)))
    # Everyone under k together: one cluster stays, the caller's general segment.
    assert len(merge_small([Cluster(centroid=axes[0], members=[0]), Cluster(centroid=axes[1], members=[1])],
                           rows, min_size=5)) == 1


def test_a_cluster_of_one_with_rare_values_is_merged_and_says_none_of_them():
    people = [HIKER] * 20 + [GAMER] * 20 + [CAROL]
    clusters = segment(embeddings.embed_attributes(people), people, 3, seed=1, min_size=20)
    assert sorted(len(c.members) for c in clusters) == [20, 21]
    carols = next(c for c in clusters if 40 in c.members)
    text = json.dumps([(c.name, c.attributes) for c in clusters])
    assert not any(word in text for word in RARE_WORDS)
    assert carols.attributes == {"interests": ["hiking", "camping"], "style": "outdoor"}


# --- the issue's reproduction, through the API, the dashboard and the logs ---------------------------

def _segment_job(campaign: Campaign) -> Job:
    job = Job.objects.get(campaign=campaign, kind=Job.Kind.SEGMENT_PROFILES)
    services.job_run(job_id=job.pk, work=campaign_segment_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


def _clips_for_every_segment(campaign: Campaign) -> None:
    for seg in Segment.objects.filter(campaign=campaign):
        prompt, negative = segment_prompt(campaign=campaign, segment=seg)
        factories.ClipFactory(campaign=campaign, segment=seg, prompt=prompt, negative_prompt=negative,
                              status=Clip.Status.APPROVED)


def _everything_readable(campaign: Campaign, job: Job, dashboard, serve, manage, caplog) -> str:
    """Every place a value could leak to, as one text."""
    parts = [json.dumps(list(Segment.objects.filter(campaign=campaign).values("name", "attributes", "setting")),
                        ensure_ascii=False),
             json.dumps(Job.objects.get(pk=job.pk).result, ensure_ascii=False),
             json.dumps(list(Clip.objects.filter(campaign=campaign).values_list("prompt", "negative_prompt")),
                        ensure_ascii=False)]
    for url in (f"/api/v1/campaigns/{campaign.pk}", f"/api/v1/campaigns/{campaign.pk}/clips", f"/api/v1/jobs/{job.pk}"):
        response = manage.get(url)
        assert response.status_code == 200, response.content
        parts.append(response.content.decode())
    for url in ("/api/v1/profiles/alice", f"/api/v1/campaigns/{campaign.pk}/clip?profile=alice"):
        response = serve.get(url)
        assert response.status_code == 200, response.content
        parts.append(response.content.decode())
    pages = [reverse("dashboard:campaign-detail", args=[campaign.pk]), reverse("dashboard:job-list")]
    pages += [reverse("dashboard:clip-detail", args=[pk]) for pk in Clip.objects.filter(campaign=campaign)
              .values_list("pk", flat=True)]
    for page in pages:
        response = dashboard.get(page)
        assert response.status_code == 200, page
        parts.append(response.content.decode())
    parts.append(caplog.text)
    return "\n".join(parts)


@pytest.fixture
def dashboard(client, org):
    user = factories.UserFactory()
    services.membership_set(user=user, organization=org, role="admin")
    client.force_login(user)
    return client


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("crowd, k", [(0, 2), (20, 3)], ids=["three-viewers-k2", "three-and-forty-more-k3"])
def test_the_issue_reproduction_leaks_nothing_before_or_after_erasure(org, dashboard, caplog, s3_client,
                                                                      django_capture_on_commit_callbacks, crowd, k):
    """Without SEGMENT_MIN_SIZE, k-means puts carol in a cluster of her own (or of two) named by her values."""
    caplog.set_level(logging.DEBUG)
    serve, manage = api_client_for(org, ["serve"]), api_client_for(org, ["manage"])
    viewers = {"alice": HIKER, "bob": GAMER, "carol-9": CAROL}
    viewers.update({f"hiker-{i}": HIKER for i in range(crowd)})
    viewers.update({f"gamer-{i}": GAMER for i in range(crowd)})
    for external_id, attributes in viewers.items():
        assert serve.put(f"/api/v1/profiles/{external_id}", {"attributes": attributes}, format="json").status_code == 201
    brand = factories.BrandFactory(organization=org)
    created = manage.post("/api/v1/campaigns", {"brand": brand.pk, "name": "Autumn", "brief": "Trail shoes",
                                                "segments": k, "width": 64, "height": 64, "num_frames": 9},
                          format="json")
    assert created.status_code == 201, created.content
    campaign = Campaign.objects.get(pk=created.json()["id"])
    job = _segment_job(campaign)
    _clips_for_every_segment(campaign)
    carol = Profile.objects.get(organization=org, external_id="carol-9")
    carol_vector = np.asarray(carol.embedding, dtype=np.float32)
    carols_segment = SegmentMembership.objects.get(profile=carol).segment

    before = _everything_readable(campaign, job, dashboard, serve, manage, caplog)
    assert not [word for word in RARE_WORDS if word in before]
    for seg in Segment.objects.filter(campaign=campaign):
        assert SegmentMembership.objects.filter(segment=seg).count() >= 20 or seg.name == "General"
        assert float(np.asarray(seg.centroid) @ carol_vector) < 0.999  # no centroid is her embedding
    if crowd == 0:
        (general,) = Segment.objects.filter(campaign=campaign)
        assert (general.name, general.attributes) == ("General", {})
        assert np.allclose(general.centroid, embeddings.embed_texts(["General"])[0], atol=1e-5)

    with django_capture_on_commit_callbacks(execute=False):
        assert serve.delete("/api/v1/profiles/carol-9").status_code == 204
    assert not Profile.objects.filter(pk=carol.pk).exists()
    after = _everything_readable(campaign, job, dashboard, serve, manage, caplog)
    assert not [word for word in RARE_WORDS if word in after]
    assert "carol-9" not in caplog.text
    if crowd:
        # Her share of the centroid is gone: it is the mean of the members left.
        carols_segment.refresh_from_db()
        members = SegmentMembership.objects.filter(segment=carols_segment).values_list("profile__embedding", flat=True)
        assert len(members) == crowd + 1  # the hikers and alice
        expected = normalise(np.asarray(list(members), dtype=np.float32).mean(axis=0))
        assert np.allclose(carols_segment.centroid, expected, atol=1e-5)
        assert float(np.asarray(carols_segment.centroid) @ carol_vector) < 0.999


# --- erasure: recompute, merge, withdraw -------------------------------------------------------------

def _clustered(org, people: list[tuple[str, dict]], k: int = 2) -> tuple[Campaign, Job]:
    for external_id, attributes in people:
        factories.ProfileFactory(organization=org, external_id=external_id, attributes=attributes)
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=k)
    factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": k})
    job = _segment_job(campaign)
    _clips_for_every_segment(campaign)
    return campaign, job


def _segment_of(external_id: str) -> Segment:
    return SegmentMembership.objects.select_related("segment").get(profile__external_id=external_id).segment


def _erase(org, external_id: str, capture) -> list:
    """Erase a viewer, its after-commit work done (files deleted); the tasks it sent, (name, args)."""
    sent = []
    with pytest.MonkeyPatch.context() as patch, capture(execute=True):
        patch.setattr("adplatform.celery.app.send_task", lambda name, args, **kw: sent.append((name, args)))
        services.profile_delete(profile=Profile.objects.get(organization=org, external_id=external_id))
    return sent


@pytest.mark.slow
@pytest.mark.django_db
def test_a_segment_that_falls_under_k_merges_into_its_nearest_and_its_clips_go(
        org, s3_client, django_capture_on_commit_callbacks):
    springfield = {**HIKER, "city": "Springfield"}  # held by exactly 20 viewers: k-anonymous, just
    campaign, job = _clustered(org, [(f"h{i}", springfield) for i in range(20)] + [(f"g{i}", GAMER) for i in range(21)])
    hikers, gamers = _segment_of("h0"), _segment_of("g0")
    assert hikers.attributes["city"] == "Springfield" and "Springfield" in hikers.clips.get().prompt
    hiker_files = [hikers.clips.get().video.name, hikers.clips.get().poster.name]
    gamers_clip = gamers.clips.get()
    gamers_words = (gamers.name, gamers.attributes)
    assert {s["name"] for s in job.result["segments"]} == {hikers.name, gamers.name}
    # An edit of the hikers' clip (its pixels came from their words) and the webhook bodies that told
    # a receiver about the clip, the campaign and the segmentation job.
    extended = factories.ClipFactory(campaign=campaign, parent=hikers.clips.get(), prompt=hikers.clips.get().prompt,
                                     edit={"kind": "extend"})
    factories.WebhookEndpointFactory(organization=org, events=["clip.approved", "campaign.status_changed",
                                                               "job.succeeded"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("adplatform.celery.app.send_task", lambda *a, **kw: None)
        webhooks.webhook_clip_event(clip=hikers.clips.get(), type="clip.approved")
        webhooks.webhook_clip_event(clip=gamers_clip, type="clip.approved")
        webhooks.webhook_campaign_status_changed(campaign=campaign, previous="draft")
        webhooks.webhook_job_finished(job)
    assert WebhookDelivery.objects.filter(payload__contains="Springfield").count() == 3

    sent = _erase(org, "h3", django_capture_on_commit_callbacks)

    assert not Segment.objects.filter(pk=hikers.pk).exists()
    (merged,) = Segment.objects.filter(campaign=campaign)
    assert merged.pk == gamers.pk and merged.position == 0
    assert SegmentMembership.objects.filter(campaign=campaign, segment=merged).count() == 40
    assert (merged.name, merged.attributes) == gamers_words  # the hikers' 19 are under k: no words of theirs
    vectors = np.asarray(list(SegmentMembership.objects.filter(segment=merged)
                              .values_list("profile__embedding", flat=True)), dtype=np.float32)
    assert np.allclose(merged.centroid, normalise(vectors.mean(axis=0)), atol=1e-5)
    # The merged-away segment's clips, their edits and files are withdrawn; the merged-into segment's stay.
    assert list(Clip.objects.filter(campaign=campaign)) == [gamers_clip]
    assert not Clip.objects.filter(pk=extended.pk).exists()
    # Webhook bodies: the withdrawn clip's delivery is gone, the others show the segments as they are now.
    assert not WebhookDelivery.objects.filter(payload__contains="Springfield").exists()
    assert sorted(WebhookDelivery.objects.values_list("type", flat=True)) == [
        "campaign.status_changed", "clip.approved", "job.succeeded"]
    status_body = json.loads(WebhookDelivery.objects.get(type="campaign.status_changed").payload)
    assert [s["name"] for s in status_body["data"]["segments"]] == [gamers.name]
    assert status_body["data"]["previous_status"] == "draft"
    keys = bucket_keys(s3_client)
    assert not set(hiker_files) & set(keys) and gamers_clip.video.name in keys
    assert not SegmentMembership.objects.filter(campaign=campaign, profile__external_id="h0", clip__isnull=False).exists()
    job.refresh_from_db()
    assert job.result["segments"] == [{"id": merged.pk, "name": merged.name, "setting": merged.setting, "size": 40}]
    text = json.dumps([list(Segment.objects.values()), job.result, list(Clip.objects.values_list("prompt"))], default=str)
    assert "Springfield" not in text
    assert sent == []  # the merged-into segment kept its words and its setting: nothing to suggest again


@pytest.mark.slow
@pytest.mark.django_db
def test_a_value_that_falls_under_k_leaves_the_words_and_the_clips_that_said_it(
        org, s3_client, django_capture_on_commit_callbacks):
    springfield = {**HIKER, "city": "Springfield"}
    people = [(f"h{i}", springfield) for i in range(20)] + [("h-other", HIKER)] + [(f"g{i}", GAMER) for i in range(21)]
    campaign, job = _clustered(org, people)
    hikers = _segment_of("h0")
    old_centroid = np.asarray(hikers.centroid)
    assert "Springfield" in hikers.name + json.dumps(hikers.attributes) + hikers.clips.get().prompt
    gamers_clip = _segment_of("g0").clips.get()

    assert _erase(org, "h5", django_capture_on_commit_callbacks) == [("cpu.segments_refresh", [campaign.pk])]
    hikers.refresh_from_db()
    assert SegmentMembership.objects.filter(segment=hikers).count() == 20
    assert hikers.attributes == {"interests": ["camping", "hiking"], "style": "outdoor"}  # ties: alphabetical
    assert "Springfield" not in hikers.name
    assert not hikers.clips.exists() and Clip.objects.filter(pk=gamers_clip.pk).exists()
    assert not np.allclose(hikers.centroid, old_centroid)
    # Its suggested setting was made from the old words: suggested again, from the new ones, on a worker.
    assert (hikers.setting, hikers.setting_source) == ("", "")
    segments_refresh(campaign_id=campaign.pk)
    hikers.refresh_from_db()
    assert hikers.setting and hikers.setting_source == "suggested"
    job.refresh_from_db()
    assert "Springfield" not in json.dumps(job.result)


@pytest.mark.slow
@pytest.mark.django_db
def test_the_last_segment_under_k_becomes_general_and_a_worker_embeds_it(org, django_capture_on_commit_callbacks):
    campaign, _ = _clustered(org, [(f"h{i}", HIKER) for i in range(20)])
    (only,) = Segment.objects.filter(campaign=campaign)
    assert only.attributes == {"interests": ["camping", "hiking"], "style": "outdoor"}

    assert _erase(org, "h0", django_capture_on_commit_callbacks) == [("cpu.segments_refresh", [campaign.pk])]
    only.refresh_from_db()
    assert (only.name, only.attributes, only.centroid) == ("General", {}, None)
    assert not only.clips.exists()
    assert SegmentMembership.objects.filter(segment=only).count() == 19

    assert segments_refresh(campaign_id=campaign.pk) == 1
    only.refresh_from_db()
    assert np.allclose(only.centroid, embeddings.embed_texts(["General"])[0], atol=1e-5)
    assert only.setting_source == "suggested"
    newcomer = factories.ProfileFactory(organization=org, attributes=GAMER)
    assert profile_embed(profile_id=newcomer.pk)
    assert SegmentMembership.objects.get(profile=newcomer).segment == only


@pytest.mark.django_db
def test_marketer_segments_are_left_as_the_marketer_wrote_them(org, django_capture_on_commit_callbacks):
    campaign = factories.CampaignFactory(brand__organization=org)
    seg = factories.SegmentFactory(campaign=campaign, name="Springfield fans", attributes={"city": "Springfield"},
                                   centroid=[1.0, 0.0])
    profile = factories.ProfileFactory(organization=org, external_id="only-one")
    SegmentMembership.objects.create(organization=org, profile=profile, campaign=campaign, segment=seg)
    _erase(org, "only-one", django_capture_on_commit_callbacks)
    seg.refresh_from_db()
    assert (seg.name, seg.attributes, seg.centroid) == ("Springfield fans", {"city": "Springfield"}, [1.0, 0.0])


@pytest.mark.worker
def test_after_an_erasure_a_worker_embeds_the_general_segment_and_suggests_its_setting(worker, org):
    from tests.helpers import wait_for

    campaign, _ = _clustered(org, [(f"h{i}", HIKER) for i in range(20)])
    (only,) = Segment.objects.filter(campaign=campaign)
    serve = api_client_for(org, ["serve"])
    assert serve.delete("/api/v1/profiles/h0").status_code == 204  # sends cpu.segments_refresh after commit
    only.refresh_from_db()
    assert (only.name, only.attributes) == ("General", {})
    wait_for(lambda: Segment.objects.filter(pk=only.pk, centroid__isnull=False).exclude(setting="").exists())
    only.refresh_from_db()
    assert np.allclose(only.centroid, embeddings.embed_texts(["General"])[0], atol=1e-5)
    assert only.setting_source == "suggested"


@pytest.mark.django_db
def test_a_viewer_erased_while_the_segmentation_job_runs_is_taken_out_too(org, monkeypatch):
    from campaigns.services import segmentation

    springfield = {**HIKER, "city": "Springfield"}
    for i in range(20):
        factories.ProfileFactory(organization=org, external_id=f"h{i}", attributes=springfield)
    for i in range(21):
        factories.ProfileFactory(organization=org, external_id=f"g{i}", attributes=GAMER)
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=2)
    factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": 2})
    place = segmentation._assign_all

    def erase_first(**kwargs):
        # The job has read h0 and described the segments with them; h0 is erased before being placed.
        monkeypatch.setattr("adplatform.celery.app.send_task", lambda *a, **kw: None)
        services.profile_delete(profile=Profile.objects.get(organization=org, external_id="h0"))
        place(**kwargs)

    monkeypatch.setattr(segmentation, "_assign_all", erase_first)
    job = _segment_job(campaign)
    (only,) = Segment.objects.filter(campaign=campaign)  # the 19 hikers left are under k: merged
    assert SegmentMembership.objects.filter(segment=only).count() == 40
    assert job.result["segments"] == [{"id": only.pk, "name": only.name, "setting": only.setting, "size": 40}]
    assert "Springfield" not in json.dumps([only.name, only.attributes, job.result])
