"""The web image, built and run here: `infra/images.sh web` builds it (from scratch on a fresh machine:
the base image too), then the container migrates a database of this machine's PostgreSQL, serves
under gunicorn with this machine's Redis as cache and broker, passes its readiness check and answers
authenticated API calls from outside the container. Its install set has no model library or test tool.

Marked `docker`; skipped, saying why, where no Docker engine runs (`.ci/run` starts one when it can).
"""
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import psycopg
import pytest
from django.conf import settings

from tests.helpers import NOT_FOR_WEB, ROOT, image_bytes, lock

pytestmark = pytest.mark.docker
IMAGE = "adplatform-web:latest"
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0 or not check, f"docker {' '.join(args[:3])}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def web_image():
    try:
        engine = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Docker client or engine here ({exc}); `.ci/run` starts dockerd where it can")
    if engine.returncode != 0:
        pytest.skip("no Docker engine runs here (`docker info` fails); `.ci/run` starts dockerd where it can")
    build = subprocess.run(["bash", "infra/images.sh", "web"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    return IMAGE


@pytest.fixture
def database():
    """A database of its own on this machine's PostgreSQL, dropped afterwards."""
    db = settings.DATABASES["default"]
    name = f"image_smoke_{uuid.uuid4().hex[:8]}"
    admin = dict(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                 dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, *, key: str = "", body: bytes | None = None, content_type: str = "") -> tuple[int, dict]:
    headers = {"Authorization": f"Api-Key {key}"} if key else {}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def multipart(field: str, filename: str, content: bytes, mime: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_web_image_has_no_model_libraries_or_test_tools(web_image):
    installed = docker("run", "--rm", web_image, "pip", "list", "--format", "json").stdout
    names = {p["name"].lower().replace("_", "-") for p in json.loads(installed)}
    assert not [n for n in names if n in NOT_FOR_WEB or n.startswith("nvidia-")]
    assert "django" in names and "gunicorn" in names
    assert names - {"pip", "setuptools"} == set(lock("web"))  # exactly the lock


def test_web_image_migrates_and_serves_against_this_machines_services(web_image, database):
    port = free_port()
    env = {
        "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0", "DATABASE_URL": database,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,  # this machine's Redis (readiness checks it)
        "CACHE_URL": settings.CELERY_BROKER_URL.replace("redis://", "rediscache://", 1),
    }
    run_env = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    # The host's loopback services, so the container shares the host's network.
    docker_run = ["run", "--rm", "--network", "host", *run_env, web_image]

    migrate = docker(*docker_run, "python", "manage.py", "migrate", "--noinput", timeout=300)
    assert "Applying campaigns.0001" in migrate.stdout
    key = docker(*docker_run, "python", "manage.py", "create_api_key", "--org", "smoke", "--scopes", "serve,manage",
                 timeout=120).stdout.strip()
    assert key

    name = f"adplatform-web-smoke-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--network", "host", *run_env, web_image,
           "gunicorn", "adplatform.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = call(f"{base}/readyz")
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, docker("logs", name, check=False).stderr[-3000:]
                time.sleep(0.5)
        assert (status, body.get("status")) == (200, "ok"), body

        assert call(f"{base}/api/v1/brands", body=b"{}", content_type="application/json")[0] == 401  # the key counts
        status, brand = call(f"{base}/api/v1/brands", key=key, content_type="application/json",
                             body=json.dumps({"name": "Smoke", "palette": ["#E4572E"]}).encode())
        assert status == 201, brand
        body, content_type = multipart("file", "logo.png", image_bytes(), "image/png")
        status, asset = call(f"{base}/api/v1/brands/{brand['id']}/assets", key=key, body=body, content_type=content_type)
        assert status == 201, asset  # the upload's checks (type sniffing, image decoding) run in the image
        with psycopg.connect(database) as conn:  # written to this machine's PostgreSQL
            assert conn.execute("SELECT name FROM campaigns_brand").fetchall() == [("Smoke",)]
    finally:
        docker("rm", "-f", name, check=False)
