"""Signed, expiring URLs for private files, whichever storage holds them; and a stored file's
copy on a worker's disk.

On S3 the URL is S3's own presigned URL; on the local folder it is a URL of this app carrying a
signed token (file name + expiry), served by ``signed_media_view``. Either way a plain HTTP GET
fetches the file until ``expires_at`` and not after.
"""
import mimetypes
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone

from generation.atomic import staged_file

SALT = "adplatform.files"


def _is_s3() -> bool:
    return default_storage.__class__.__module__.startswith("storages.")


def signed_url(name: str, *, ttl: timedelta | None = None, request: HttpRequest | None = None) -> tuple[str, datetime]:
    """A URL that fetches the stored file ``name`` until the returned time."""
    ttl = ttl or settings.SIGNED_URL_TTL
    expires_at = timezone.now() + ttl
    if _is_s3():
        return default_storage.url(name, expire=int(ttl.total_seconds())), expires_at
    token = signing.dumps({"n": name, "e": int(expires_at.timestamp())}, salt=SALT, compress=True)
    path = reverse("signed-file", kwargs={"token": token})
    return (request.build_absolute_uri(path) if request else path), expires_at


def signed_media_view(request: HttpRequest, token: str):
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise Http404("bad or tampered file link")
    if timezone.now().timestamp() > payload["e"]:
        raise Http404("this file link has expired; ask the API for a fresh one")
    name = payload["n"]
    if not default_storage.exists(name):
        raise Http404("file not found")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(default_storage.open(name, "rb"), content_type=content_type)


def storage_fetch(name: str, local: Path) -> Path:
    """Copy the stored file ``name`` to ``local`` whole or not at all: a copy cut short by a dying
    worker must not pass for the file on the next attempt."""
    with staged_file(local) as staging, default_storage.open(name, "rb") as source, open(staging, "wb") as out:
        shutil.copyfileobj(source, out)
    return local
