"""Brand assets: sniffed by content, measured, stored once, and every bad upload refused cleanly."""
import struct
import zlib

import pytest

from campaigns import services
from campaigns.models import BrandAsset, Job, LoraAdapter
from tests import factories
from tests.conftest import bucket_keys
from tests.helpers import asset_upload_request as upload
from tests.helpers import assert_error, image_bytes, mp4_bytes, zeroed_mdat

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def huge_clip() -> bytes:
    """The issue's reproduction: 30 frames of 6144x6144, 112 KB; decoding it takes seconds and
    hundreds of MB. Encoded once per run (about 3 s)."""
    return mp4_bytes(30, size=(6144, 6144), fps=30, preset="ultrafast", crf="51")


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header that claims a huge canvas: a decompression bomb's first bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def brand(org):
    return services.brand_create(organization=org, name="Trailhead", style_notes="sunlit")


@pytest.mark.parametrize("fmt,mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_images_are_measured_and_stored(manage_client, brand, fmt, mime, s3_client):
    response = upload(manage_client, brand, image_bytes(fmt), "whatever.bin", caption="orange on white")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["content_type"], body["width"], body["height"], body["num_frames"]) == ("image", mime, 40, 24, 1)
    assert len(body["checksum"]) == 64
    asset = BrandAsset.objects.get(pk=body["id"])
    assert asset.file.name in bucket_keys(s3_client)


def test_clips_are_measured_from_their_container_and_wait_to_be_checked(manage_client, brand, s3_client):
    response = upload(manage_client, brand, mp4_bytes(), "clip.mp4")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["width"], body["height"], body["num_frames"]) == ("clip", 32, 48, 9)
    assert (body["status"], body["error"], body["poster_url"]) == ("processing", "", None)
    assert BrandAsset.objects.get(pk=body["id"]).file.name in bucket_keys(s3_client)


def test_a_clip_is_not_decoded_in_the_request(manage_client, brand):
    """Frames that do not decode behind an intact container pass the upload: the request read
    only the container. The check on the cpu queue fails it (test_asset_checks.py)."""
    response = upload(manage_client, brand, zeroed_mdat(mp4_bytes()), "clip.mp4")
    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["num_frames"]) == ("processing", 9)


def test_a_clip_over_the_frames_x_pixels_budget_is_refused_before_decoding(manage_client, brand, s3_client, huge_clip,
                                                                           settings):
    before = bucket_keys(s3_client)
    body = assert_error(upload(manage_client, brand, huge_clip, "small-file-huge-clip.mp4"), 400)
    assert "30 frames of 6144x6144 (1,132,462,080 pixels)" in body["message"]
    assert f"{settings.ASSET_MAX_CLIP_PIXELS:,} pixels in all" in body["message"]
    assert "file" in body["details"]
    assert_nothing_left(s3_client, before)


def test_a_clip_over_the_frame_count_is_refused(manage_client, brand, s3_client):
    before = bucket_keys(s3_client)
    body = assert_error(upload(manage_client, brand, mp4_bytes(2001, size=(16, 16), fps=30), "long.mp4"), 400)
    assert "2001 frames of 16x16" in body["message"] and "2000 frames" in body["message"]
    assert_nothing_left(s3_client, before)


def test_the_same_file_twice_is_one_asset(manage_client, brand, s3_client):
    data = image_bytes()
    first = upload(manage_client, brand, data, "a.png")
    second = upload(manage_client, brand, data, "b.png")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert BrandAsset.objects.count() == 1
    prefix = f"org-{brand.organization_id}/brands/{brand.pk}/assets/"
    assert len([k for k in bucket_keys(s3_client) if k.startswith(prefix)]) == 1


def assert_nothing_left(s3_client, before: list[str]):
    assert BrandAsset.objects.count() == 0
    assert bucket_keys(s3_client) == before


def test_text_named_png_is_415(manage_client, brand, s3_client):
    before = bucket_keys(s3_client)
    body = assert_error(upload(manage_client, brand, b"hello, I am text" * 10, "logo.png"), 415, "unsupported_media")
    assert "PNG, JPEG or WebP" in body["message"]
    assert_nothing_left(s3_client, before)


def test_gif_is_415(manage_client, brand, s3_client):
    before = bucket_keys(s3_client)
    assert_error(upload(manage_client, brand, image_bytes("GIF"), "a.gif"), 415)
    assert_nothing_left(s3_client, before)


def test_truncated_image_is_400(manage_client, brand, s3_client):
    before = bucket_keys(s3_client)
    data = image_bytes("PNG", size=(300, 300), colour=(1, 2, 3))
    body = assert_error(upload(manage_client, brand, data[: len(data) // 2], "half.png"), 400)
    assert "file" in body["details"]
    assert_nothing_left(s3_client, before)


def test_decompression_bomb_is_400(manage_client, brand, s3_client):
    before = bucket_keys(s3_client)
    body = assert_error(upload(manage_client, brand, png_claiming(60000, 60000), "bomb.png"), 400)
    assert "pixels" in body["message"]
    assert_nothing_left(s3_client, before)


def test_broken_clip_is_400(manage_client, brand, s3_client):
    before = bucket_keys(s3_client)
    data = mp4_bytes()
    assert_error(upload(manage_client, brand, data[:200], "cut.mp4"), 400)
    assert_nothing_left(s3_client, before)


def test_too_large_is_413(manage_client, brand, settings, s3_client):
    settings.ASSET_MAX_BYTES = 1000
    before = bucket_keys(s3_client)
    body = assert_error(upload(manage_client, brand, image_bytes(size=(200, 200)) + b"\0" * 2000, "big.png"), 413)
    assert "limit" in body["message"]
    assert_nothing_left(s3_client, before)


def test_missing_file_is_400(manage_client, brand):
    body = assert_error(manage_client.post(f"/api/v1/brands/{brand.pk}/assets", {"caption": "x"}, format="multipart"), 400)
    assert "file" in body["details"]


def test_another_organizations_brand_is_404(manage_client, other_org):
    foreign = factories.BrandFactory(organization=other_org)
    assert_error(upload(manage_client, foreign, image_bytes(), "a.png"), 404)
    assert_error(manage_client.post(f"/api/v1/brands/{foreign.pk}/train", {}, format="json"), 404)


def test_training_waits_for_clips_being_checked(manage_client, brand):
    upload(manage_client, brand, mp4_bytes(), "clip.mp4")
    body = assert_error(manage_client.post(f"/api/v1/brands/{brand.pk}/train", {}, format="json"), 409,
                        "assets_processing")
    assert "being checked" in body["message"] and body["details"] == {"processing": 1}
    assert not Job.objects.exists()


def test_training_learns_from_ready_assets_only(manage_client, brand):
    image = upload(manage_client, brand, image_bytes(), "a.png").json()
    upload(manage_client, brand, mp4_bytes(), "clip.mp4")
    response = manage_client.post(f"/api/v1/brands/{brand.pk}/train", {}, format="json")
    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=response.json()["job"]["id"]).params["asset_ids"] == [image["id"]]


def test_training_without_assets_is_409(manage_client, brand):
    body = assert_error(manage_client.post(f"/api/v1/brands/{brand.pk}/train", {}, format="json"), 409)
    assert "upload" in body["message"]
    assert not Job.objects.exists() and not LoraAdapter.objects.exists()


@pytest.mark.parametrize("field,value", [("steps", 0), ("rank", 1000), ("learning_rate", "fast"), ("steps", 1.5)])
def test_bad_training_parameters_are_400(manage_client, brand, field, value):
    upload(manage_client, brand, image_bytes(), "a.png")
    body = assert_error(manage_client.post(f"/api/v1/brands/{brand.pk}/train", {field: value}, format="json"), 400)
    assert field in body["details"]
    assert not Job.objects.exists()


def test_training_queues_a_job_and_a_lora_version(manage_client, brand):
    upload(manage_client, brand, image_bytes(), "a.png")
    response = manage_client.post(f"/api/v1/brands/{brand.pk}/train", {"steps": 10, "rank": 4}, format="json")
    assert response.status_code == 202
    job = response.json()["job"]
    assert (job["kind"], job["status"]) == ("train_lora", "queued")
    lora = LoraAdapter.objects.get(job_id=job["id"])
    assert (lora.version, lora.status, lora.parameters["steps"], lora.parameters["rank"]) == (1, "training", 10, 4)
    body = assert_error(manage_client.post(f"/api/v1/brands/{brand.pk}/train", {}, format="json"), 409)
    assert body["code"] == "already_training"
