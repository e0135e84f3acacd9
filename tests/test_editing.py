"""Edits (API v1.1): a campaign's start image, clip edits and per-segment re-scenes.

Validation and jobs through the API; the worker side through the job runner, first with stand-in
engine functions (the platform's own work: rows, files, idempotency, cancel and failure cleanup),
then end to end on the tiny model.
"""
import io
import json
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from campaigns import services
from campaigns.models import BrandAsset, Campaign, Clip, Job
from campaigns.services.editing import campaign_rescene_run, clip_edit_run
from generation.editing import EDIT_KINDS, EXTEND_DIRECTIONS, EditOutput
from generation.limits import MAX_FRAMES, MAX_VARIANTS
from tests import factories
from tests.conftest import bucket_keys
from tests.helpers import assert_error, stored_clip, wait_for

pytestmark = pytest.mark.django_db

BOX = [0.25, 0.25, 0.75, 0.75]


# --- helpers -------------------------------------------------------------------------------------

@pytest.fixture
def campaign(org):
    campaign = factories.CampaignFactory(brand__organization=org, num_frames=9, width=32, height=32,
                                         status=Campaign.Status.IN_REVIEW)
    factories.SegmentFactory(campaign=campaign, name="Hikers", setting="mountain forest trail at dawn")
    factories.SegmentFactory(campaign=campaign, name="Commuters", setting="city street at night")
    return campaign


@pytest.fixture
def clip(campaign):
    return factories.ClipFactory(campaign=campaign, segment=campaign.segments.first(), width=32, height=32)


def post_edit(client, clip_id, **body):
    return client.post(f"/api/v1/clips/{clip_id}/edits", body, format="json")


def job_keys(s3_client, job) -> list[str]:
    return [k for k in bucket_keys(s3_client) if f"/clips/job{job.pk}-" in k]


# --- image-to-video: the campaign's start image --------------------------------------------------

def create_campaign(client, brand, **fields):
    body = {"brand": brand.pk, "name": "Summer", "brief": "Trail shoes for the weekend", **fields}
    return client.post("/api/v1/campaigns", body, format="json")


def test_a_campaign_starts_from_one_of_its_brands_images(manage_client, org):
    brand = factories.BrandFactory(organization=org)
    asset = factories.BrandAssetFactory(brand=brand)
    response = create_campaign(manage_client, brand, start_image=asset.pk)
    assert response.status_code == 201, response.content
    assert response.json()["start_image"] == asset.pk
    assert Campaign.objects.get(pk=response.json()["id"]).start_image == asset
    # Without one, clips are text-to-video as before.
    assert create_campaign(manage_client, brand, name="Plain").json()["start_image"] is None


@pytest.mark.parametrize("which", ["other_brand", "other_org", "video", "missing", "zero", "text"])
def test_a_start_image_that_is_not_an_image_of_the_brand_is_400(manage_client, org, other_org, which):
    brand = factories.BrandFactory(organization=org)
    value = {
        "other_brand": lambda: factories.BrandAssetFactory(brand=factories.BrandFactory(organization=org)).pk,
        "other_org": lambda: factories.BrandAssetFactory(brand=factories.BrandFactory(organization=other_org)).pk,
        "video": lambda: factories.BrandAssetFactory(brand=brand, kind=BrandAsset.Kind.CLIP,
                                                     content_type="video/mp4").pk,
        "missing": lambda: 987654,
        "zero": lambda: 0,
        "text": lambda: "the logo",
    }[which]()
    body = assert_error(create_campaign(manage_client, brand, start_image=value), 400, "invalid")
    assert list(body["details"]) == ["start_image"]
    assert not Campaign.objects.exists()


def test_the_start_image_is_read_with_its_transparency(org):
    from PIL import Image

    def asset_of(image: Image.Image):
        out = io.BytesIO()
        image.save(out, format="PNG")
        name = default_storage.save(f"org-{org.pk}/test-assets/a.png", ContentFile(out.getvalue()))
        return factories.BrandAssetFactory(brand__organization=org, file=name)

    from campaigns.services.editing import asset_image_array

    cutout = Image.new("RGBA", (8, 6), (255, 0, 0, 0))
    cutout.putpixel((2, 2), (255, 0, 0, 255))
    pixels = asset_image_array(asset_of(cutout))
    assert pixels.shape == (6, 8, 4) and pixels[2, 2, 3] == 255 and pixels[0, 0, 3] == 0
    opaque = asset_image_array(asset_of(Image.new("RGBA", (8, 6), (0, 0, 255, 255))))
    assert opaque.shape == (6, 8, 3)  # an alpha channel without transparency is dropped
    assert asset_image_array(asset_of(Image.new("RGB", (8, 6), (0, 255, 0)))).shape == (6, 8, 3)


# --- POST /clips/{id}/edits: refusals ------------------------------------------------------------

@pytest.mark.parametrize("kind", [None, "recolour", 3, ""])
def test_an_unknown_kind_is_400(manage_client, clip, kind):
    body = assert_error(post_edit(manage_client, clip.pk, **({} if kind is None else {"kind": kind})), 400)
    assert "kind" in body["details"]
    assert all(k in body["message"] for k in EDIT_KINDS)
    assert not Job.objects.exists()


@pytest.mark.parametrize("box", [
    None, [0, 0, 1], [0, 0, 1, 1, 1], "0,0,1,1", [0.5, 0, 0.4, 1], [0, 0.5, 1, 0.5], [-0.1, 0, 1, 1],
    [0, 0, 1.2, 1], ["a", 0, 1, 1],
])
def test_a_bad_keep_box_is_400(manage_client, clip, box):
    fields = {"kind": "rescene", "prompt": "a beach"} | ({} if box is None else {"keep_box": box})
    body = assert_error(post_edit(manage_client, clip.pk, **fields), 400)
    assert list(body["details"]) == ["keep_box"]
    assert not Job.objects.exists()


def test_rescene_needs_a_prompt_or_a_segment(manage_client, clip):
    body = assert_error(post_edit(manage_client, clip.pk, kind="rescene", keep_box=BOX), 400)
    assert {"prompt", "segment"} <= set(body["details"])


def test_rescene_into_a_segment_of_another_campaign_is_400(manage_client, org, clip):
    elsewhere = factories.SegmentFactory(campaign=factories.CampaignFactory(brand__organization=org))
    body = assert_error(post_edit(manage_client, clip.pk, kind="rescene", keep_box=BOX, segment=elsewhere.pk), 400)
    assert list(body["details"]) == ["segment"]


@pytest.mark.parametrize("frames", [None, 0, -3, MAX_FRAMES + 1, "many", 2.5])
def test_extend_frames_out_of_range_is_400(manage_client, clip, frames):
    fields = {"kind": "extend"} | ({} if frames is None else {"frames": frames})
    body = assert_error(post_edit(manage_client, clip.pk, **fields), 400)
    assert list(body["details"]) == ["frames"]


def test_extend_direction_is_forward_or_backward(manage_client, clip):
    body = assert_error(post_edit(manage_client, clip.pk, kind="extend", frames=4, direction="sideways"), 400)
    assert list(body["details"]) == ["direction"]


def test_connect_to_a_clip_of_another_size_or_organization_is_400(manage_client, org, other_org, clip):
    wide = factories.ClipFactory(campaign=clip.campaign, width=64, height=32)
    foreign = factories.ClipFactory(campaign__brand__organization=other_org, width=32, height=32)
    for other in (wide.pk, foreign.pk, 987654, None):
        fields = {"kind": "connect"} | ({} if other is None else {"other_clip": other})
        body = assert_error(post_edit(manage_client, clip.pk, **fields), 400)
        assert list(body["details"]) == ["other_clip"], other
    assert "64x32" in assert_error(post_edit(manage_client, clip.pk, kind="connect", other_clip=wide.pk),
                                   400)["message"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("variants", [0, MAX_VARIANTS + 1, "two"])
def test_variants_out_of_range_is_400(manage_client, clip, variants):
    body = assert_error(post_edit(manage_client, clip.pk, kind="loop", variants=variants), 400)
    assert list(body["details"]) == ["variants"]


def test_another_organizations_clip_is_404(manage_client, other_org):
    foreign = factories.ClipFactory(campaign__brand__organization=other_org)
    assert_error(post_edit(manage_client, foreign.pk, kind="loop"), 404, "not_found")
    assert_error(post_edit(manage_client, 987654, kind="loop"), 404, "not_found")
    assert not Job.objects.exists()


def test_a_rejected_clip_is_409(manage_client, clip):
    services.clip_review(clip=clip, decision="reject", note="off brand")
    body = assert_error(post_edit(manage_client, clip.pk, kind="loop"), 409, "clip_rejected")
    assert body["details"] == {"status": "rejected"}
    assert not Job.objects.exists()


def test_clips_of_an_archived_campaign_are_not_edited(manage_client, campaign, clip):
    services.clip_review(clip=clip, decision="approve")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ARCHIVED)
    assert_error(post_edit(manage_client, clip.pk, kind="loop"), 409, "campaign_archived")
    assert_error(post_rescene(manage_client, campaign.pk, clip=clip.pk, keep_box=BOX), 409, "campaign_archived")
    assert not Job.objects.exists()


def test_edits_need_the_manage_scope(serve_client, clip):
    assert_error(post_edit(serve_client, clip.pk, kind="loop"), 403)


# --- POST /clips/{id}/edits: accepted ------------------------------------------------------------

@pytest.mark.parametrize("fields,edit", [
    ({"kind": "rescene", "keep_box": BOX, "prompt": "a sunny beach"},
     {"kind": "rescene", "keep_box": BOX, "prompt": "a sunny beach"}),
    ({"kind": "extend", "frames": 8}, {"kind": "extend", "frames": 8, "direction": "forward"}),
    ({"kind": "extend", "frames": 4, "direction": "backward", "variants": 3},
     {"kind": "extend", "frames": 4, "direction": "backward"}),
    ({"kind": "loop"}, {"kind": "loop"}),
])
def test_an_edit_is_a_queued_job_enqueued_after_commit(manage_client, clip, fields, edit,
                                                       django_capture_on_commit_callbacks):
    with mock.patch("adplatform.celery.app.send_task") as send, \
            django_capture_on_commit_callbacks(execute=True):
        response = post_edit(manage_client, clip.pk, **fields)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert (job.kind, job.status, job.campaign_id) == (Job.Kind.EDIT_CLIP, Job.Status.QUEUED, clip.campaign_id)
    assert job.params["clip"] == clip.pk and job.params["edit"] == edit
    assert job.params["variants"] == fields.get("variants", 1)
    send.assert_called_once_with("gpu.clip_edit", args=[job.pk], priority=0)  # the organization's first gpu job


def test_rescene_into_a_segment_and_connect_are_accepted(manage_client, clip, django_capture_on_commit_callbacks):
    segment = clip.campaign.segments.last()
    other = factories.ClipFactory(campaign=clip.campaign, width=32, height=32)
    with mock.patch("adplatform.celery.app.send_task") as send, django_capture_on_commit_callbacks(execute=True):
        first = post_edit(manage_client, clip.pk, kind="rescene", keep_box=BOX, segment=segment.pk)
        second = post_edit(manage_client, clip.pk, kind="connect", other_clip=other.pk, prompt="a fade")
    assert first.status_code == second.status_code == 202
    edits = [Job.objects.get(pk=r.json()["job"]["id"]).params["edit"] for r in (first, second)]
    assert edits == [{"kind": "rescene", "keep_box": BOX, "segment": segment.pk},
                     {"kind": "connect", "other_clip": other.pk, "prompt": "a fade"}]
    assert [c.args[0] for c in send.call_args_list] == ["gpu.clip_edit", "gpu.clip_edit"]


# --- POST /campaigns/{id}/rescene ----------------------------------------------------------------

def post_rescene(client, campaign_id, **body):
    return client.post(f"/api/v1/campaigns/{campaign_id}/rescene", body, format="json")


def test_campaign_rescene_of_an_approved_clip(manage_client, campaign, clip, django_capture_on_commit_callbacks):
    services.clip_review(clip=clip, decision="approve")
    with mock.patch("adplatform.celery.app.send_task") as send, django_capture_on_commit_callbacks(execute=True):
        response = post_rescene(manage_client, campaign.pk, clip=clip.pk, keep_box=BOX, variants_per_segment=2)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.kind == Job.Kind.RESCENE_CAMPAIGN and job.campaign == campaign
    assert (job.params["clip"], job.params["keep_box"], job.params["variants_per_segment"]) == (clip.pk, BOX, 2)
    send.assert_called_once_with("gpu.campaign_rescene", args=[job.pk], priority=0)


@pytest.mark.parametrize("status", [Clip.Status.PENDING_REVIEW, Clip.Status.REJECTED])
def test_campaign_rescene_of_a_clip_not_approved_is_409(manage_client, campaign, clip, status):
    Clip.objects.filter(pk=clip.pk).update(status=status)
    assert_error(post_rescene(manage_client, campaign.pk, clip=clip.pk, keep_box=BOX), 409, "clip_not_approved")
    assert not Job.objects.exists()


def test_campaign_rescene_of_a_clip_of_another_campaign_is_400(manage_client, org, other_org, campaign):
    elsewhere = factories.ClipFactory(campaign__brand__organization=org, status=Clip.Status.APPROVED)
    foreign = factories.ClipFactory(campaign__brand__organization=other_org, status=Clip.Status.APPROVED)
    for clip_id in (elsewhere.pk, foreign.pk, 987654, 0, None):
        fields = {"keep_box": BOX} | ({} if clip_id is None else {"clip": clip_id})
        body = assert_error(post_rescene(manage_client, campaign.pk, **fields), 400)
        assert list(body["details"]) == ["clip"], clip_id
    assert not Job.objects.exists()


def test_campaign_rescene_validates_box_and_variants(manage_client, campaign, clip):
    services.clip_review(clip=clip, decision="approve")
    body = assert_error(post_rescene(manage_client, campaign.pk, clip=clip.pk, keep_box=[0.6, 0, 0.5, 1]), 400)
    assert list(body["details"]) == ["keep_box"]
    body = assert_error(post_rescene(manage_client, campaign.pk, clip=clip.pk, keep_box=BOX,
                                     variants_per_segment=MAX_VARIANTS + 1), 400)
    assert list(body["details"]) == ["variants_per_segment"]


def test_campaign_rescene_of_another_organizations_campaign_is_404(manage_client, other_org):
    foreign = factories.ClipFactory(campaign__brand__organization=other_org, status=Clip.Status.APPROVED)
    assert_error(post_rescene(manage_client, foreign.campaign_id, clip=foreign.pk, keep_box=BOX), 404)


# --- answers and schema --------------------------------------------------------------------------

def test_clips_answer_parent_edit_and_conditioning(manage_client, campaign, clip):
    mask = default_storage.save(f"org-{campaign.organization_id}/test-masks/m.png", ContentFile(b"png"))
    child = factories.ClipFactory(campaign=campaign, parent=clip, edit={"kind": "loop"}, conditioning="latent_blend",
                                  mask=mask)
    rows = {c["id"]: c for c in manage_client.get(f"/api/v1/campaigns/{campaign.pk}/clips").json()}
    assert (rows[clip.pk]["parent"], rows[clip.pk]["edit"], rows[clip.pk]["conditioning"]) == (None, {}, "text")
    assert rows[clip.pk]["mask_url"] is None
    assert (rows[child.pk]["parent"], rows[child.pk]["edit"]) == (clip.pk, {"kind": "loop"})
    assert rows[child.pk]["conditioning"] == "latent_blend" and rows[child.pk]["mask_url"]


@pytest.fixture
def schema(client):
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def component(schema, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def resolve(schema, prop: dict) -> dict:
    """A property with its allOf/$ref enum folded in."""
    merged = dict(prop)
    for part in prop.get("allOf", []) + ([prop] if "$ref" in prop else []):
        merged.update(component(schema, part["$ref"]))
    return merged


def test_the_schema_states_every_edit_constraint(schema):
    post = schema["paths"]["/api/v1/clips/{clip_id}/edits"]["post"]
    assert {"202", "400", "404", "409"} <= set(post["responses"])
    body = component(schema, post["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert body["discriminator"]["propertyName"] == "kind"
    assert set(body["discriminator"]["mapping"]) == set(EDIT_KINDS)
    kinds = {kind: component(schema, ref) for kind, ref in body["discriminator"]["mapping"].items()}
    for kind, shape in kinds.items():
        props = shape["properties"]
        assert resolve(schema, props["kind"])["enum"] == [kind]
        assert (props["variants"]["minimum"], props["variants"]["maximum"]) == (1, MAX_VARIANTS)
        assert "kind" in shape["required"] and "prompt" in props
    box = kinds["rescene"]["properties"]["keep_box"]
    assert (box["minItems"], box["maxItems"]) == (4, 4)
    assert (box["items"]["minimum"], box["items"]["maximum"]) == (0, 1)
    assert "x0 < x1" in box["description"] and "keep_box" in kinds["rescene"]["required"]
    frames = kinds["extend"]["properties"]["frames"]
    assert (frames["minimum"], frames["maximum"]) == (1, MAX_FRAMES) and "frames" in kinds["extend"]["required"]
    direction = resolve(schema, kinds["extend"]["properties"]["direction"])
    assert direction["enum"] == list(EXTEND_DIRECTIONS) and direction["default"] == "forward"
    assert "other_clip" in kinds["connect"]["required"]
    assert set(kinds["loop"]["properties"]) == {"kind", "variants", "prompt", "steps"}

    rescene = schema["paths"]["/api/v1/campaigns/{campaign_id}/rescene"]["post"]
    assert {"202", "400", "404", "409"} <= set(rescene["responses"])
    shape = component(schema, rescene["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert set(shape["required"]) == {"clip", "keep_box"}
    assert (shape["properties"]["keep_box"]["minItems"], shape["properties"]["keep_box"]["maxItems"]) == (4, 4)
    variants = shape["properties"]["variants_per_segment"]
    assert (variants["minimum"], variants["maximum"]) == (1, MAX_VARIANTS)


def test_the_schema_shows_edit_fields_on_clips_and_the_start_image(schema):
    clip = schema["components"]["schemas"]["Clip"]["properties"]
    assert {"parent", "edit", "conditioning", "mask_url"} <= set(clip)
    campaign_in = schema["components"]["schemas"]["CampaignInRequest"]["properties"]
    assert campaign_in["start_image"]["minimum"] == 1
    assert "start_image" in schema["components"]["schemas"]["Campaign"]["properties"]


# --- the worker side, with stand-in engine functions ---------------------------------------------

def stand_in(kind: str, calls: list, *, before=None):
    """An engine function for `kind` that does what the contract says without a model: frames of the
    right count, a mask of what was kept, progress through on_step (False -> cancelled)."""
    from generation.engine import GenerationCancelled

    def run(engine, *, clip, seeds, on_step=None, **arguments):
        calls.append({"seeds": list(seeds), **arguments})
        if before:
            before(len(calls))
        if on_step and not on_step(1, 2):
            raise GenerationCancelled("cancelled")
        outputs = []
        for i, _seed in enumerate(seeds):
            added = arguments.get("frames", 0)
            frames = np.concatenate([clip, np.repeat(clip[-1:], added, axis=0)]) if added else clip.copy()
            mask = np.zeros(frames.shape[:3], np.uint8)
            mask[:len(clip)] = 255
            outputs.append(EditOutput(frames=frames, mask=mask, conditioning="stand_in"))
        return outputs

    return run


@pytest.fixture
def no_model(monkeypatch):
    monkeypatch.setattr("generation.engine.get_engine", lambda *args, **kwargs: object())


@pytest.mark.slow
def test_an_edit_job_records_reviewable_clips_with_parent_edit_and_mask(org, campaign, no_model, monkeypatch,
                                                                        s3_client):
    from PIL import Image

    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    calls: list = []
    monkeypatch.setattr("generation.editing.extend", stand_in("extend", calls))
    job = services.clip_edit(clip=source, kind="extend", frames=4, direction="backward", variants=2, steps=2,
                             enqueue=False)
    services.job_run(job_id=job.pk, work=clip_edit_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["clips"] == 2 and job.progress == 1.0
    assert calls[0]["frames"] == 4 and calls[0]["direction"] == "backward" and len(calls[0]["seeds"]) == 2
    assert calls[0]["prompt"] == source.prompt  # no prompt given: the source's scene continues

    clips = list(Clip.objects.filter(job=job).order_by("variant"))
    assert [c.variant for c in clips] == [0, 1] and len({c.seed for c in clips}) == 2
    for clip in clips:
        assert (clip.parent, clip.segment, clip.status) == (source, source.segment, Clip.Status.PENDING_REVIEW)
        assert clip.edit == {"kind": "extend", "frames": 4, "direction": "backward"}
        assert (clip.num_frames, clip.width, clip.height, clip.fps) == (9 + 4, 32, 32, 8)
        assert (clip.conditioning, clip.steps, clip.model) == ("stand_in", 2, "tiny")
        assert clip.mask.name.endswith("-mask.png")
        with default_storage.open(clip.mask.name, "rb") as fh:
            strip = np.asarray(Image.open(io.BytesIO(fh.read())))
        assert strip.shape == (32, 13 * 32)  # the frames side by side
        assert strip[:, :9 * 32].min() == 255 and strip[:, 9 * 32:].max() == 0
    assert len(job_keys(s3_client, job)) == 6  # MP4, poster and mask of each

    # The same job delivered again makes nothing twice.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    job.refresh_from_db()
    assert clip_edit_run(services.JobHandle(job))["made_this_attempt"] == 0
    assert len(calls) == 1 and Clip.objects.filter(job=job).count() == 2


@pytest.mark.slow
def test_campaign_rescene_makes_a_clip_per_segment_in_its_setting(campaign, no_model, monkeypatch):
    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    calls: list = []
    monkeypatch.setattr("generation.editing.rescene", stand_in("rescene", calls))
    job = services.campaign_rescene(campaign=campaign, clip=source.pk, keep_box=BOX, steps=2, enqueue=False)
    services.job_run(job_id=job.pk, work=campaign_rescene_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    clips = {c.segment.name: c for c in Clip.objects.filter(job=job)}
    assert set(clips) == {"Hikers", "Commuters"}
    assert "mountain forest trail at dawn" in clips["Hikers"].prompt
    assert "city street at night" in clips["Commuters"].prompt
    assert [tuple(c["keep_box"]) for c in calls] == [tuple(BOX)] * 2
    for segment_name, clip in clips.items():
        assert clip.parent == source and clip.status == Clip.Status.PENDING_REVIEW
        assert clip.edit == {"kind": "rescene", "keep_box": BOX, "segment": clip.segment_id}


@pytest.mark.slow
def test_a_cancelled_edit_job_leaves_no_clip_and_no_file(campaign, no_model, monkeypatch, s3_client):
    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    job = services.campaign_rescene(campaign=campaign, clip=source.pk, keep_box=BOX, steps=2, enqueue=False)

    def cancel_in_second_segment(call: int) -> None:
        if call == 2:  # the first segment's clip is stored by now
            assert job_keys(s3_client, job)
            services.job_cancel(job=job)

    monkeypatch.setattr("generation.editing.rescene", stand_in("rescene", [], before=cancel_in_second_segment))
    services.job_run(job_id=job.pk, work=campaign_rescene_run)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert not Clip.objects.filter(job=job).exists()
    assert job_keys(s3_client, job) == []


def test_a_failed_slot_removes_the_files_it_stored(campaign, no_model, monkeypatch, s3_client):
    from campaigns.services import generation

    source = stored_clip(campaign, segment=campaign.segments.first())
    monkeypatch.setattr("generation.editing.loop", stand_in("loop", []))
    real_store = generation._store

    def store_then_fail_on_the_mask(local, name):
        if name.endswith("-mask.png"):
            raise OSError("disk full")
        return real_store(local, name)

    monkeypatch.setattr(generation, "_store", store_then_fail_on_the_mask)
    job = services.clip_edit(clip=source, kind="loop", steps=2, enqueue=False)
    services.job_run(job_id=job.pk, work=clip_edit_run)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "disk full" in job.error
    assert not Clip.objects.filter(job=job).exists()
    assert job_keys(s3_client, job) == []  # the MP4 and poster stored before the failure are gone


# --- end to end on the tiny model ----------------------------------------------------------------
# These run the engine's own edit functions (generation/editing.py) on the committed tiny checkpoint.

def run_job(job, work) -> Job:
    services.job_run(job_id=job.pk, work=work)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


def check_edited(job, source, *, kind: str, num_frames: int, count: int = 1) -> list[Clip]:
    from PIL import Image

    clips = list(Clip.objects.filter(job=job))
    assert len(clips) == count
    for clip in clips:
        assert clip.parent == source and clip.status == Clip.Status.PENDING_REVIEW and clip.edit["kind"] == kind
        assert clip.num_frames == num_frames and (clip.width, clip.height) == (source.width, source.height)
        assert clip.conditioning not in ("", "text")
        for name in (clip.video.name, clip.poster.name, clip.mask.name):
            assert name and default_storage.exists(name)
        with default_storage.open(clip.mask.name, "rb") as fh:
            assert Image.open(io.BytesIO(fh.read())).size == (num_frames * clip.width, clip.height)
        assert decoded_frames(clip) == num_frames
    return clips


def decoded_frames(clip: Clip) -> int:
    from generation.media import probe_video

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "c.mp4"
        with default_storage.open(clip.video.name, "rb") as fh:
            local.write_bytes(fh.read())
        return probe_video(local)["num_frames"]


@pytest.mark.slow
def test_real_rescene_into_a_segment(campaign):
    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    segment = campaign.segments.last()
    job = services.clip_edit(clip=source, kind="rescene", keep_box=BOX, segment=segment.pk, steps=2, enqueue=False)
    [clip] = check_edited(run_job(job, clip_edit_run), source, kind="rescene", num_frames=source.num_frames)
    assert clip.segment == segment and "city street at night" in clip.prompt


@pytest.mark.slow
def test_real_rescene_on_a_vace_checkpoint_goes_through_its_pipeline(campaign, settings, tmp_path_factory):
    settings.GENERATION_MODEL = "tiny-random-vace"
    settings.MODEL_CACHE_DIR = tmp_path_factory.getbasetemp() / "vace-models"
    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    job = services.clip_edit(clip=source, kind="rescene", keep_box=BOX, segment=campaign.segments.last().pk,
                             steps=2, enqueue=False)
    [clip] = check_edited(run_job(job, clip_edit_run), source, kind="rescene", num_frames=source.num_frames)
    assert clip.conditioning == "WanVACEPipeline"


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_real_extend_adds_the_frames(campaign, direction):
    source = stored_clip(campaign, segment=campaign.segments.first())
    job = services.clip_edit(clip=source, kind="extend", frames=8, direction=direction, variants=2, steps=2,
                             enqueue=False)
    check_edited(run_job(job, clip_edit_run), source, kind="extend", num_frames=source.num_frames + 8, count=2)


@pytest.mark.slow
def test_real_loop(campaign):
    source = stored_clip(campaign, segment=campaign.segments.first())
    job = services.clip_edit(clip=source, kind="loop", steps=2, enqueue=False)
    job = run_job(job, clip_edit_run)
    [clip] = Clip.objects.filter(job=job)
    check_edited(job, source, kind="loop", num_frames=clip.num_frames)
    assert clip.num_frames > source.num_frames  # the clip, then its way back to the first frame


@pytest.mark.slow
def test_real_connect(campaign):
    source = stored_clip(campaign, segment=campaign.segments.first())
    other = stored_clip(campaign, segment=campaign.segments.last())
    job = services.clip_edit(clip=source, kind="connect", other_clip=other.pk, prompt="the square turns blue",
                             steps=2, enqueue=False)
    job = run_job(job, clip_edit_run)
    [clip] = Clip.objects.filter(job=job)
    check_edited(job, source, kind="connect", num_frames=clip.num_frames)
    assert clip.num_frames >= 1 and clip.prompt == "the square turns blue"


@pytest.mark.slow
def test_real_campaign_rescene(campaign):
    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    job = services.campaign_rescene(campaign=campaign, clip=source.pk, keep_box=BOX, variants_per_segment=2,
                                    steps=2, enqueue=False)
    clips = check_edited(run_job(job, campaign_rescene_run), source, kind="rescene", num_frames=source.num_frames,
                         count=4)
    assert {c.segment.name for c in clips} == {"Hikers", "Commuters"}


@pytest.mark.slow
def test_real_image_to_video_starts_from_the_image(org):
    from PIL import Image

    from campaigns.services.generation import campaign_generate_run

    image = Image.new("RGB", (32, 32), (41, 51, 92))
    out = io.BytesIO()
    image.save(out, format="PNG")
    brand = factories.BrandFactory(organization=org)
    name = default_storage.save(f"org-{org.pk}/brands/{brand.pk}/assets/start.png", ContentFile(out.getvalue()))
    asset = factories.BrandAssetFactory(brand=brand, file=name, width=32, height=32)
    campaign = services.campaign_create(organization=org, brand=brand, name="From an image", brief="a still",
                                        num_frames=9, width=32, height=32, start_image=asset.pk,
                                        segments=[{"name": "All", "attributes": {}, "setting": "a plain studio"}])
    job = services.campaign_generate(campaign=campaign, variants_per_segment=1, steps=2, enqueue=False)
    run_job(job, campaign_generate_run)
    [clip] = Clip.objects.filter(job=job)
    assert clip.conditioning not in ("", "text") and clip.parent is None
    with tempfile.TemporaryDirectory() as tmp:
        from generation.media import read_video

        local = Path(tmp) / "c.mp4"
        with default_storage.open(clip.video.name, "rb") as fh:
            local.write_bytes(fh.read())
        first = read_video(local)[0].astype(int)
    assert np.abs(first - np.array([41, 51, 92])).mean() < 12  # the first frame is the image (through H.264)


@pytest.mark.slow
def test_real_cancelled_rescene_leaves_no_files(campaign, monkeypatch, s3_client):
    from generation import editing

    source = stored_clip(campaign, segment=campaign.segments.first(), status=Clip.Status.APPROVED)
    job = services.campaign_rescene(campaign=campaign, clip=source.pk, keep_box=BOX, steps=4, enqueue=False)
    real = editing.rescene
    calls = []

    def cancel_during_the_second_segment(engine, **arguments):
        calls.append(1)
        if len(calls) == 2:
            assert job_keys(s3_client, job)  # the first segment's clip was stored
            services.job_cancel(job=job)  # the engine's next on_step answers False
        return real(engine, **arguments)

    monkeypatch.setattr(editing, "rescene", cancel_during_the_second_segment)
    services.job_run(job_id=job.pk, work=campaign_rescene_run)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and len(calls) == 2
    assert not Clip.objects.filter(job=job).exists() and job_keys(s3_client, job) == []


@pytest.mark.worker
def test_an_edit_through_the_api_and_a_real_worker(worker, manage_client, org):
    campaign = factories.CampaignFactory(brand__organization=org, num_frames=9, width=32, height=32)
    source = stored_clip(campaign, segment=factories.SegmentFactory(campaign=campaign))
    response = post_edit(manage_client, source.pk, kind="extend", frames=4, steps=2)
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).is_finished, timeout=240)
    job = manage_client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    rows = manage_client.get(f"/api/v1/campaigns/{campaign.pk}/clips?status=pending_review").json()
    [edited] = [r for r in rows if r["parent"] == source.pk]
    assert edited["edit"] == {"kind": "extend", "frames": 4, "direction": "forward"}
    assert edited["num_frames"] == 13 and edited["mask_url"] and edited["conditioning"] != "text"
