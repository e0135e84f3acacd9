"""Benchmark of the GPU fleet: `python benchmarks/fleet.py` (PostgreSQL and Redis on loopback).

Real `celery worker` processes on the real Redis broker, with the production settings (the
broker's visibility timeout of hours, heartbeats every 10 s, a job silent for 60 s requeued by a
watchdog that looks every 15 s), on the tiny model, in a database of its own
(``adplatform_fleet_bench``, dropped at the end) and a temporary media folder:

1. Recovery: a worker runs a LoRA training and is SIGKILLed (its whole process group) once a
   checkpoint is stored; a second worker is started at once. `recovery_s` is the time from the
   kill to the job running again on the live worker (bar: 120 s); the job must then finish,
   resumed from its checkpoint.
2. Fairness: one warm gpu worker; organization A sends 8 generation jobs, then organization B one.
   `fair_wait_ratio` is B's wait (sent to started) over the median length of A's jobs (bar: 1.0).
   For the baseline, the same run with every job at the same priority (FIFO) is measured too.
3. Adapter affinity: two workers whose engines keep 2 adapters each (GENERATION_MAX_ADAPTERS=2,
   a GPU with room for two), a stream of 24 generation jobs over 4 brands in a mixed order, each
   sent when the one before has started. Adapter loads summed over both workers, with affinity
   against without (the baseline, same stream, fresh workers): `adapter_loads_ratio` (bar: 0.5).

The last line is one JSON object: {"recovery_s", "resumed_from_step", "fair_wait_ratio",
"fifo_wait_ratio", "adapter_loads_with_affinity", "adapter_loads_without", "adapter_loads_ratio"}.

`--broker amqp://guest:guest@127.0.0.1:5672// --only recovery` measures the recovery on RabbitMQ
instead (it hands a dead consumer's task back at once), for the comparison in the README.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from adplatform.processes import stop_process_group  # noqa: E402
from benchmarks.environment import bench_environment  # noqa: E402

DB_NAME = "adplatform_fleet_bench"
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/13")
SIZE = {"num_frames": 9, "width": 32, "height": 32}


def main() -> None:
    global BROKER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=BROKER, help="the broker's URL (default: Redis on loopback)")
    parser.add_argument("--only", choices=("recovery", "fairness", "affinity"), help="run one scenario")
    args = parser.parse_args()
    BROKER = args.broker
    media = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    env = _environment(media)
    os.environ.update(env)
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DB_NAME}")
    workers: list[subprocess.Popen] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        from adplatform.celery import app

        app.control.purge()
        figures = {}
        for name, scenario in (("recovery", _recovery), ("fairness", _fairness), ("affinity", _affinity)):
            if args.only in (None, name):
                figures.update(scenario(media, workers))
        print(json.dumps(figures))
    finally:
        for worker in workers:
            stop_process_group(worker)
        from django.db import connections

        connections.close_all()
        _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(media, ignore_errors=True)


# --- 1. recovery ---------------------------------------------------------------------------------

def _recovery(media: Path, workers: list) -> dict:
    from campaigns import services
    from campaigns.models import Job

    org, brand = _brand("Recovery")
    _assets(brand)
    job = services.brand_train(brand=brand, steps=300, rank=4)
    first = _start(media, "r1", workers)
    _wait(lambda: ((Job.objects.get(pk=job.pk).result or {}).get("checkpoint") or {}).get("step", 0) >= 20, 600)
    stop_process_group(first, signal.SIGKILL)
    killed = time.monotonic()
    _start(media, "r2", workers)
    _wait(lambda: Job.objects.get(pk=job.pk).attempts == 2 and Job.objects.get(pk=job.pk).status == "running", 300)
    recovery = time.monotonic() - killed
    _wait(lambda: Job.objects.get(pk=job.pk).is_finished, 900)
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"the recovered training did not succeed: {job.error}")
    print(f"recovery: job running again {recovery:.1f} s after the kill (bar 120 s); finished, resumed from "
          f"step {job.result['resumed_from_step']} (attempts {job.attempts}, worker losses {job.worker_losses})")
    _stop_all(workers)
    return {"recovery_s": round(recovery, 1), "resumed_from_step": job.result["resumed_from_step"]}


# --- 2. fairness ---------------------------------------------------------------------------------

def _fairness(media: Path, workers: list) -> dict:
    from unittest import mock

    from campaigns.services import fleet

    ratios = {}
    from campaigns.models import FleetWorker

    for label, fair in (("fifo_wait_ratio", False), ("fair_wait_ratio", True)):
        FleetWorker.objects.all().delete()
        _start(media, f"f-{label}", workers, queues="gpu")
        _wait(lambda: FleetWorker.objects.exists(), 180)
        # The FIFO baseline: every gpu job at the same priority, as without fair dispatch.
        patch = mock.patch.object(fleet, "gpu_job_priority", lambda job: 0) if not fair else mock.patch.object(
            fleet, "gpu_job_priority", fleet.gpu_job_priority)
        with patch:
            ratios[label] = _one_fairness_run()
        _stop_all(workers)
    print(f"fairness: B's wait / A's median job length = {ratios['fair_wait_ratio']:.2f} (bar 1.0); "
          f"without fair dispatch (FIFO): {ratios['fifo_wait_ratio']:.2f}")
    return {key: round(value, 2) for key, value in ratios.items()}


def _one_fairness_run() -> float:
    from campaigns import services
    from campaigns.models import Job

    a_org, a_brand = _brand("A")
    b_org, b_brand = _brand("B")
    # A warm worker (model loaded), as a fleet's are: its start-up is no part of anyone's wait.
    warm = services.campaign_generate(campaign=_campaign(a_org, a_brand), steps=20)
    _wait(lambda: Job.objects.get(pk=warm.pk).is_finished, 600)
    # The campaigns first; then A's 8 jobs and B's one, sent back to back.
    a_campaigns = [_campaign(a_org, a_brand) for _ in range(8)]
    b_campaign = _campaign(b_org, b_brand)
    # Jobs of 100 denoising steps (about 2 s here): long enough that the dispatch's own latency
    # (a broker round trip and the job's start-up, some 0.2 s) does not pass for queueing.
    a_jobs = [services.campaign_generate(campaign=campaign, steps=100) for campaign in a_campaigns]
    b_job = services.campaign_generate(campaign=b_campaign, steps=100)
    ids = [j.pk for j in [*a_jobs, b_job]]
    _wait(lambda: all(Job.objects.get(pk=i).is_finished for i in ids), 1200)
    a = [Job.objects.get(pk=j.pk) for j in a_jobs]
    b = Job.objects.get(pk=b_job.pk)
    length = statistics.median((j.finished_at - j.started_at).total_seconds() for j in a)
    ahead = sum(j.started_at < b.started_at for j in a)
    print(f"  B waited {(b.started_at - b.created_at).total_seconds():.2f} s behind {ahead} of A's jobs; "
          f"A's median job {length:.2f} s")
    return (b.started_at - b.created_at).total_seconds() / length


# --- 3. adapter affinity --------------------------------------------------------------------------

def _affinity(media: Path, workers: list) -> dict:
    from django.test import override_settings

    from campaigns.models import FleetWorker

    loads = {}
    for label, affinity in (("adapter_loads_without", False), ("adapter_loads_with_affinity", True)):
        FleetWorker.objects.all().delete()
        for name in ("a1", "a2"):
            _start(media, f"{name}-{int(affinity)}", workers, queues="gpu", GENERATION_MAX_ADAPTERS="2")
        _wait(lambda: FleetWorker.objects.count() == 2, 120)
        with override_settings(GPU_ADAPTER_AFFINITY=affinity):
            _stream()
        loads[label] = sum(FleetWorker.objects.values_list("adapter_loads", flat=True))
        _stop_all(workers)
    ratio = loads["adapter_loads_with_affinity"] / max(1, loads["adapter_loads_without"])
    print(f"adapter loads over 24 jobs of 4 brands on 2 workers holding 2 adapters each: "
          f"{loads['adapter_loads_with_affinity']} with affinity, {loads['adapter_loads_without']} without "
          f"(ratio {ratio:.2f}, bar 0.5)")
    return {**loads, "adapter_loads_ratio": round(ratio, 2)}


def _stream() -> None:
    """24 generation jobs over 4 brands with a LoRA each, mixed, each sent once the one before started."""
    from campaigns import services
    from campaigns.models import Job

    brands = [_brand(f"Stream {i}", lora=True) for i in range(4)]
    order = [i for i in range(4) for _ in range(6)]
    random.Random(3).shuffle(order)
    jobs = []
    for i in order:
        org, brand = brands[i]
        job = services.campaign_generate(campaign=_campaign(org, brand), steps=4)
        jobs.append(job.pk)
        _wait(lambda: Job.objects.get(pk=job.pk).started_at is not None, 600)
    _wait(lambda: all(Job.objects.get(pk=j).is_finished for j in jobs), 600)
    failed = Job.objects.filter(pk__in=jobs).exclude(status="succeeded").values_list("error", flat=True)
    if failed:
        raise SystemExit(f"stream jobs failed: {list(failed)[:3]}")


# --- helpers -------------------------------------------------------------------------------------

_LORA_FILE: list[Path] = []
_ORGS = itertools.count()


def _brand(name: str, *, lora: bool = False):
    from django.utils.text import slugify

    from campaigns import services

    org = services.organization_get_or_create(slug=f"{slugify(name)}-{next(_ORGS)}", name=f"{name} org")
    brand = services.brand_create(organization=org, name=name, style_notes="clean")
    if lora:
        _give_lora(brand)
    return org, brand


def _assets(brand) -> None:
    """Three orange product shots, uploaded as a marketer would."""
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from campaigns import services

    for i, colour in enumerate(((245, 135, 25), (235, 145, 45), (255, 150, 35))):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
        services.asset_upload(brand=brand, upload=SimpleUploadedFile(f"{i}.png", buffer.getvalue()),
                              caption="an orange square")


def _give_lora(brand) -> None:
    """A ready LoRA for the brand: one tiny adapter trained once, stored under each brand's row
    (an adapter is loaded per row, so four rows are four adapters to the engines)."""
    from django.core.files import File
    from django.core.files.storage import default_storage

    from campaigns.models import LoraAdapter

    if not _LORA_FILE:
        from django.conf import settings

        from generation.tiny_model import resolve_model_path
        from generation.training import train_lora
        from generation.training.schema import TrainingSample

        work = Path(tempfile.mkdtemp(prefix="bench-fleet-lora-"))
        image = work / "a.png"
        from PIL import Image

        Image.new("RGB", (32, 32), (245, 135, 25)).save(image)
        result = train_lora(model_path=resolve_model_path("tiny", Path(settings.MODEL_CACHE_DIR)),
                            samples=[TrainingSample(path=image, kind="image", caption="acme, a square")],
                            output_dir=work / "lora", steps=5, rank=4, learning_rate=1e-3, seed=0,
                            checkpoint_every=0, **SIZE)
        _LORA_FILE.append(Path(result.lora_path))
    with open(_LORA_FILE[0], "rb") as fh:
        name = default_storage.save(f"bench/lora-{brand.pk}.safetensors", File(fh))
    LoraAdapter.objects.create(organization=brand.organization, brand=brand, version=1, base_model="tiny",
                               status=LoraAdapter.Status.SUCCEEDED, file=name)


def _campaign(org, brand):
    from campaigns import services

    return services.campaign_create(organization=org, brand=brand, name="C", brief="Trail shoes",
                                    segments=[{"name": "All", "attributes": {}, "setting": "a white studio"}], **SIZE)


def _environment(media: Path) -> dict:
    return bench_environment(media / "media", f"{SERVER}/{DB_NAME}", CELERY_BROKER_URL=BROKER,
                             CACHE_URL="locmemcache://bench-fleet", WORK_DIR=str(media / "work"),
                             LORA_CHECKPOINT_EVERY="20")


def _start(media: Path, name: str, workers: list, queues: str = "gpu,cpu", **extra: str) -> subprocess.Popen:
    """A worker process; fairness and affinity use gpu-only workers, as a fleet's GPU nodes are."""
    env = {**os.environ, **_environment(media), **extra}
    log = open(media / f"worker-{name}.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "adplatform", "worker", "-Q", queues, "-P", "solo", "-n",
         f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    workers.append(process)
    return process


def _stop_all(workers: list) -> None:
    for worker in workers:
        stop_process_group(worker)
    workers.clear()


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"benchmark: condition not met within {timeout:.0f} s")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


if __name__ == "__main__":
    main()
