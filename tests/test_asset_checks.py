"""A brand clip's check on the cpu queue: a real worker decodes what the upload only probed,
and the asset ends ready with a poster, or failed with a reason; a check a dead worker left is
queued again, and a clip that keeps killing its check fails instead of killing worker after worker."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image

from campaigns import services
from campaigns.models import BrandAsset
from campaigns.services.asset_checks import asset_check, asset_checks_due
from tests.conftest import bucket_keys

pytestmark = pytest.mark.django_db
from tests.helpers import assert_error, mp4_bytes, wait_for, zeroed_mdat
from tests.helpers import asset_upload_request as upload


@pytest.fixture
def brand(org):
    return services.brand_create(organization=org, name="Trailhead", style_notes="sunlit")


def finished(asset_id: int) -> BrandAsset | None:
    asset = BrandAsset.objects.get(pk=asset_id)
    return asset if asset.status != BrandAsset.Status.PROCESSING else None


@pytest.mark.worker
def test_a_clip_that_decodes_becomes_ready_with_a_poster(worker, manage_client, brand, s3_client):
    body = upload(manage_client, brand, mp4_bytes(12, size=(64, 48)), "clip.mp4").json()
    assert body["status"] == "processing"
    asset = wait_for(lambda: finished(body["id"]), timeout=60)
    assert (asset.status, asset.error, asset.num_frames, asset.check_attempts) == ("ready", "", 12, 1)
    assert asset.poster.name in bucket_keys(s3_client)
    with asset.poster.open("rb") as fh, Image.open(fh) as poster:
        assert (poster.format, poster.size) == ("JPEG", (64, 48))

    listed = manage_client.get(f"/api/v1/brands/{brand.pk}/assets").json()
    assert listed[0]["status"] == "ready" and listed[0]["poster_url"]
    # Training now has something to learn from (not queued: this test is not about training).
    assert services.brand_train(brand=brand, enqueue=False).params["asset_ids"] == [asset.pk]


@pytest.mark.worker
def test_a_clip_whose_frames_do_not_decode_fails_with_a_reason(worker, manage_client, brand, s3_client):
    body = upload(manage_client, brand, zeroed_mdat(mp4_bytes()), "clip.mp4").json()
    asset = wait_for(lambda: finished(body["id"]), timeout=60)
    assert asset.status == "failed" and not asset.poster
    assert "does not decode" in asset.error and "upload an intact MP4" in asset.error
    assert manage_client.get(f"/api/v1/brands/{brand.pk}/assets").json()[0]["error"] == asset.error
    assert_error(manage_client.post(f"/api/v1/brands/{brand.pk}/train", {}, format="json"), 409, "no_assets")


@pytest.mark.worker
def test_a_check_left_by_a_dead_worker_is_queued_again(worker, brand, s3_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.MonkeyPatch.context() as patch:  # as if the message was lost with its worker
        patch.setattr("campaigns.services.asset_checks.asset_check_enqueue", lambda asset: None)
        asset, _ = services.asset_upload(brand=brand, upload=SimpleUploadedFile("c.mp4", mp4_bytes()))
    long_ago = timezone.now() - timedelta(seconds=settings.ASSET_CHECK_RETRY_S + 1)
    BrandAsset.objects.filter(pk=asset.pk).update(check_attempts=1, check_started_at=long_ago)

    assert asset_checks_due() == [asset.pk]
    assert asset_checks_due() == []  # pushed forward: the next look does not queue it twice
    asset = wait_for(lambda: finished(asset.pk), timeout=60)
    assert (asset.status, asset.check_attempts) == ("ready", 2)


@pytest.mark.slow
def test_a_clip_that_keeps_killing_its_check_fails(brand):
    from django.core.files.uploadedfile import SimpleUploadedFile

    asset, _ = services.asset_upload(brand=brand, upload=SimpleUploadedFile("c.mp4", mp4_bytes()))
    BrandAsset.objects.filter(pk=asset.pk).update(check_attempts=settings.ASSET_CHECK_MAX_ATTEMPTS)
    assert asset_check(asset_id=asset.pk) is None
    asset.refresh_from_db()
    assert asset.status == "failed" and f"stopped {settings.ASSET_CHECK_MAX_ATTEMPTS} times" in asset.error


def test_a_deleted_asset_takes_its_poster(brand, s3_client, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    asset, _ = services.asset_upload(brand=brand, upload=SimpleUploadedFile("c.mp4", mp4_bytes()))
    assert asset_check(asset_id=asset.pk) == "ready"
    asset.refresh_from_db()
    names = [asset.file.name, asset.poster.name]
    assert set(names) <= set(bucket_keys(s3_client))
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_delete(asset=asset)
    assert not set(names) & set(bucket_keys(s3_client))


def test_storage_away_does_not_count_against_the_clip(brand, s3_client):
    from botocore.exceptions import EndpointConnectionError
    from django.core.files.uploadedfile import SimpleUploadedFile

    asset, _ = services.asset_upload(brand=brand, upload=SimpleUploadedFile("c.mp4", mp4_bytes()))
    for _ in range(settings.ASSET_CHECK_MAX_ATTEMPTS + 1):  # more blips than the clip has tries
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("campaigns.services.asset_checks.storage_fetch",
                          lambda *args: (_ for _ in ()).throw(EndpointConnectionError(endpoint_url="s3")))
            with pytest.raises(EndpointConnectionError):  # the task retries it with backoff
                asset_check(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.check_attempts) == ("processing", 0)
    assert asset_check(asset_id=asset.pk) == "ready"
