"""Benchmark of a recipients CSV import: `python benchmarks/recipients.py` (PostgreSQL on 127.0.0.1:5432).

Creates its own database (``adplatform_bench_recipients``), migrates it, makes one campaign with 8
marketer-defined segments (embedded first, as on a worker that has run ``cpu.segments_embed``, so
the model is loaded, as it is on a running cpu worker), and writes a CSV of 10,000 recipients
(``external_id,interests,style,locale,city``: 2-3 of 24 interests, so most rows are distinct
preference texts, each embedded) with a few bad rows among them. It then times the whole import as
the platform runs it: ``recipients_upload`` (what the API's request does: check, store, create the
job) and the job's work (``recipients_import_run`` through ``job_run``, what the ``cpu`` worker
runs: judge every row, embed, upsert, place in the segments, one landing page each), and checks
that the export lists every good row with a page URL. Then the export itself is timed.

Prints the figures; the last line is one JSON object for scripts:
{"rows", "bad_rows", "seconds", "rows_per_s", "distinct_texts", "export_seconds", "cpu_seconds", "cpus",
"load_average"}: cpu_seconds (the process's CPU time over all its threads) tells what the import costs
when the machine is shared and wall time does not.
The database and the media folder are dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from benchmarks.environment import bench_environment  # noqa: E402
from benchmarks.serve import SERVER, _admin, _run  # noqa: E402

DB_NAME = "adplatform_bench_recipients"
ROWS = 10_000
BAD_ROWS = 12
SEGMENTS = [
    ("Trail hikers", {"interests": ["hiking", "camping"], "style": "rugged"}),
    ("City runners", {"interests": ["running", "coffee"], "style": "urban"}),
    ("Gamers", {"interests": ["video games", "esports"], "style": "neon"}),
    ("Home cooks", {"interests": ["cooking", "baking"], "style": "cosy"}),
    ("Surfers", {"interests": ["surfing", "beach"], "style": "sunny"}),
    ("Readers", {"interests": ["books", "poetry"], "style": "quiet"}),
    ("Cyclists", {"interests": ["cycling", "mountains"], "style": "sporty"}),
    ("Gardeners", {"interests": ["gardening", "plants"], "style": "natural"}),
]
INTERESTS = sorted({i for _, a in SEGMENTS for i in a["interests"]} | {
    "yoga", "travel", "photography", "jazz", "skiing", "climbing", "fashion", "tea"})
STYLES = sorted({a["style"] for _, a in SEGMENTS})
LOCALES = ["en", "zh-TW", "en-GB", "zh-HK"]
CITIES = ["Taipei", "Kaohsiung", "London", "Leeds", "Hong Kong", "Tainan", "Bristol", "Taichung"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        measure(args.rows)
        return

    media = Path(tempfile.mkdtemp(prefix="bench-recipients-"))
    env = _environment(media)
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DB_NAME}")
    try:
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        # Its own process, so that the settings (database, media folder) are this benchmark's.
        result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", "--rows", str(args.rows)],
                                cwd=ROOT, env=env, timeout=900)
        if result.returncode:
            raise SystemExit(result.returncode)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(media, ignore_errors=True)


def _environment(media: Path) -> dict:
    # The job is run here, in-process, as the worker would (the broker is in memory).
    return bench_environment(media, f"{SERVER}/{DB_NAME}", DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver")


def recipients_csv(rows: int, rng: random.Random) -> tuple[str, int]:
    """A CSV of `rows` good recipients and BAD_ROWS bad ones spread among them; (text, bad count)."""
    lines = ["external_id,interests,style,locale,city"]
    bad_at = set(rng.sample(range(rows), BAD_ROWS))
    bad = 0
    for index in range(rows):
        interests = ";".join(rng.sample(INTERESTS, rng.choice((2, 3))))
        lines.append(f"viewer-{index:06d},{interests},{rng.choice(STYLES)},{rng.choice(LOCALES)},{rng.choice(CITIES)}")
        if index in bad_at:
            bad += 1
            lines.append(rng.choice([
                f"bad id {index},hiking,rugged,en,Taipei",       # a space in the id
                f"short-{index},hiking",                        # too few fields
                f"viewer-{index:06d},cooking,cosy,en,Leeds",   # the same recipient twice
            ]))
    return "\n".join(lines) + "\n", bad


def measure(rows: int) -> None:
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import RequestFactory

    from campaigns import services
    from campaigns.models import Campaign, Job
    from campaigns.recipient_pages import recipients_csv_response
    from campaigns.services.recipients import recipients_import_run
    from campaigns.services.segmentation import segments_embed
    from generation.embeddings import profile_text

    organization = services.organization_get_or_create(slug="bench", name="Bench")
    brand = services.brand_create(organization=organization, name="Trailhead", palette=["#0B6E4F", "#FFF8E7"],
                                  style_notes="")
    campaign = services.campaign_create(organization=organization, brand=brand, name="Autumn", brief="Trail shoes",
                                        segments=[{"name": n, "attributes": a} for n, a in SEGMENTS])
    started = time.perf_counter()
    segments_embed(campaign_id=campaign.pk)  # as a worker does after creation; loads the model
    model_s = time.perf_counter() - started

    text, bad = recipients_csv(rows, random.Random(7))
    distinct = len({profile_text({"interests": sorted(line.split(",")[1].split(";")), "style": line.split(",")[2],
                                  "locale": line.split(",")[3], "city": line.split(",")[4]})
                    for line in text.splitlines()[1:] if line.count(",") == 4})
    print(f"CSV: {rows} recipients + {bad} bad rows, {len(text) / 1e6:.2f} MB, ~{distinct} distinct preference "
          f"texts; 8 segments; model warm (segments embedded in {model_s:.1f} s); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")

    started, cpu_started = time.perf_counter(), time.process_time()
    job = services.recipients_upload(campaign=campaign, upload=SimpleUploadedFile("r.csv", text.encode()))
    upload_s = time.perf_counter() - started
    services.job_run(job_id=job.pk, work=recipients_import_run)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"the import job {job.status}: {job.error}")
    result = job.result
    print(f"import: {seconds:.1f} s ({upload_s:.2f} s of it the request; {cpu_seconds:.0f} CPU-seconds over all "
          f"threads, load average now {os.getloadavg()[0]:.1f}), {rows / seconds:.0f} rows/s; "
          f"{result['imported']} placed, {result['bad_rows']} bad rows reported, "
          f"{result['embedded_texts']} texts embedded")

    request = RequestFactory().get("/", HTTP_HOST="testserver")
    started = time.perf_counter()
    response = recipients_csv_response(campaign=Campaign.objects.get(pk=campaign.pk), request=request)
    export_s = time.perf_counter() - started
    lines = response.content.decode().splitlines()[1:]
    with_page = sum(1 for line in lines if "/p/" in line.rsplit(",", 1)[-1])
    print(f"export: {len(lines)} rows, {with_page} with a page URL, in {export_s:.2f} s")
    if result["imported"] != rows or result["bad_rows"] != bad or with_page != rows:
        raise SystemExit("WARNING: the import did not place every good row or report every bad one")
    print(json.dumps({"rows": rows, "bad_rows": bad, "seconds": round(seconds, 2),
                      "rows_per_s": round(rows / seconds, 1), "distinct_texts": result["embedded_texts"],
                      "export_seconds": round(export_s, 2), "cpu_seconds": round(cpu_seconds, 1),
                      "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
