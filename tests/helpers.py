"""Helpers shared by test modules: real Celery worker processes that a test can kill, and HTTP
servers on loopback that play a receiver or an upstream service."""
import os
import signal
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from django.conf import settings

from tests.conftest import BUCKET

ROOT = Path(__file__).resolve().parent.parent


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
    # Production timing: Redis's visibility timeout (hours) and the job heartbeat's settings are
    # the defaults; the live worker's watchdog, not the broker, hands the dead worker's job over.
    for name in ("CELERY_VISIBILITY_TIMEOUT", "JOB_HEARTBEAT_INTERVAL_S", "JOB_HEARTBEAT_TIMEOUT_S",
                 "JOB_WATCHDOG_INTERVAL_S", "JOB_MAX_ATTEMPTS"):
        env.pop(name, None)
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
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return process.log_path.read_text(errors="replace")


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
