"""Files: S3 through boto3 over HTTP, and local files behind signed URLs that expire."""
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from campaigns.files import signed_url
from tests.conftest import BUCKET

pytestmark = pytest.mark.django_db


def test_s3_round_trip_and_signed_url_over_http(s3_client):
    name = default_storage.save("roundtrip/hello.bin", ContentFile(b"hello s3"))
    assert name in [o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    url, expires_at = signed_url(name)
    assert "X-Amz-Signature" in url and "X-Amz-Expires" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"hello s3"
    default_storage.delete(name)
    assert not default_storage.exists(name)


def test_local_signed_url_works_then_expires(local_storage, client):
    name = default_storage.save("local/hello.txt", ContentFile(b"hello local"))
    url, _ = signed_url(name)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"hello local"

    expired, _ = signed_url(name, ttl=timedelta(seconds=-1))
    assert client.get(expired).status_code == 404
    assert client.get(url[:-3] + "abc").status_code == 404  # tampered


def test_a_fetched_file_is_whole_or_absent(s3_client, tmp_path, monkeypatch):
    from campaigns.files import storage_fetch

    name = default_storage.save("fetch/lora.safetensors", ContentFile(b"weights" * 1000))
    local = tmp_path / "loras" / "lora.safetensors"
    assert storage_fetch(name, local) == local and local.read_bytes() == b"weights" * 1000

    def cut_short(source, out):  # the worker dies halfway through the copy
        out.write(source.read(10))
        raise ConnectionResetError("S3 went away")

    monkeypatch.setattr("campaigns.files.shutil.copyfileobj", cut_short)
    again = tmp_path / "other" / "lora.safetensors"
    with pytest.raises(ConnectionResetError):
        storage_fetch(name, again)
    assert list(again.parent.iterdir()) == []  # nothing that a later attempt could take for the file
    default_storage.delete(name)


@pytest.mark.parametrize("where", ["s3", "local"])
def test_checkpoints_are_found_in_storage_not_only_in_the_jobs_record(where, request):
    """A worker that died between recording a checkpoint and deleting the one before it left that
    one unrecorded: what storage lists is deleted all the same."""
    from campaigns.services.training import _delete_checkpoints

    if where == "local":
        request.getfixturevalue("local_storage")
    prefix = f"org-1/brands/1/loras/v1-job{where}"
    orphan = default_storage.save(f"{prefix}/checkpoints/step-20/optimizer.pt", ContentFile(b"old"))
    newest = [default_storage.save(f"{prefix}/checkpoints/step-40/{name}", ContentFile(b"new"))
              for name in ("optimizer.pt", "nested/state.json")]
    lora = default_storage.save(f"{prefix}/pytorch_lora_weights.safetensors", ContentFile(b"lora"))

    _delete_checkpoints(prefix, keep=newest)
    assert not default_storage.exists(orphan) and all(default_storage.exists(name) for name in newest)
    _delete_checkpoints(prefix)
    assert not any(default_storage.exists(name) for name in newest)
    assert default_storage.exists(lora)  # the LoRA itself stays
    default_storage.delete(lora)
    _delete_checkpoints(f"{prefix}-never-trained")  # nothing stored: nothing to do, no error
