"""Benchmark of serving: `python benchmarks/serve.py` (PostgreSQL on 127.0.0.1:5432 must be running).

Creates its own database (``adplatform_bench``), migrates it, inserts 10,000 profiles with their
segment memberships, one live campaign with 8 segments and 3 approved clips per segment (real tiny
MP4s and posters in a temporary media folder), and starts the app under gunicorn on loopback. A
separate process then drives ``GET /api/v1/campaigns/{id}/clip?profile=…`` over 32 keep-alive
connections for a fixed time, viewers drawn at random, and does the same for ``GET /api/v1/health``
(no key, no database: the framework's floor). The clip endpoint is measured twice: from a cold
start, when no viewer has a remembered variant yet (first visits draw one and write it, mixed with
viewers returning during the run), then with every viewer returning (the steady state). In the same
run, ``GET /api/v1/campaigns/{id}/vast?profile=…`` (the VAST 4.2 document for video players: the
same lookup, plus XML and seven signed tracking URLs) is measured in that steady state, right after
the JSON clip endpoint, so the two compare on the same server, data and load.

Prints requests per second, p50 and p99 latency of each, and the throughput ratio to the floor; the
last line is one JSON object for scripts, the cold-start figures first: {"rps": ..., "p50_ms": ...,
"p99_ms": ..., "floor_rps": ..., "ratio": ..., "returning_rps": ..., "returning_p50_ms": ...,
"returning_p99_ms": ..., "vast_rps": ..., "vast_p50_ms": ..., "vast_p99_ms": ..., "vast_to_json": ...}
(``vast_to_json``: VAST's throughput over the JSON endpoint's, both with returning viewers).
The load generator is wrk when installed (Debian: ``apt-get install wrk``), else an asyncio client
in its own process. The database and the media folder are dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from benchmarks.environment import bench_environment  # noqa: E402

DB_NAME = "adplatform_bench"
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PROFILES = 10_000
SEGMENTS = 8
CLIPS_PER_SEGMENT = 3
WARMUP_S = 2.0  # fills each worker's connection pool, URL cache and CPU caches before measuring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--connections", type=int, default=32)
    # Sync workers, one per core: measured here, threads (gthread) add throughput on returning
    # viewers but GIL hand-offs put a long tail on latency (p99 of 250-450 ms against 25-45 ms).
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread); 1 = sync workers")
    parser.add_argument("--profiles", type=int, default=PROFILES)
    parser.add_argument("--drive", nargs=3, metavar=("URL_TEMPLATE", "HEADER", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:  # the load-generator process of the Python fallback
        url, header, seconds = args.drive
        print(json.dumps(asyncio.run(_drive(url, header, float(seconds), args.connections, args.profiles))))
        return

    media = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = _environment(media)
    _create_database()
    server = None
    try:
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        key, campaign_id, mp4 = _seed(env, media, args.profiles)
        port = _free_port()
        server = _start_gunicorn(env, port, args.workers, args.threads)
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/api/v1/health")
        clip_path = f"/api/v1/campaigns/{campaign_id}/clip?profile=viewer-"
        _check_one(base, clip_path, key, mp4)
        vast_path = f"/api/v1/campaigns/{campaign_id}/vast?profile=viewer-"
        _check_vast(base, vast_path, key, mp4)

        tool = "wrk" if shutil.which("wrk") else "python asyncio client"
        print(f"gunicorn: {args.workers} workers x {args.threads} threads; load: {tool}, "
              f"{args.connections} connections, {args.seconds:.0f} s each; {os.cpu_count()} CPUs")
        floor = _measure(base, "/api/v1/health", None, args, media)
        # From a cold start: no viewer has a remembered variant yet, so the run mixes first visits
        # (a Thompson draw and a write) with returning viewers.
        clip = _measure(base, clip_path, key, args, media)
        first_share = 1 - _remembered_count() / args.profiles
        # The steady state of a running campaign: every viewer has been served before.
        _remember_all()
        returning = _measure(base, clip_path, key, args, media)
        vast = _measure(base, vast_path, key, args, media)  # the same viewers, every one returning
        for name, result in (("health (floor)", floor), ("clip, cold start", clip), ("clip, returning", returning),
                             ("vast, returning", vast)):
            print(f"{name:>16}: {result['rps']:8.0f} req/s   p50 {result['p50_ms']:6.2f} ms   "
                  f"p99 {result['p99_ms']:6.2f} ms   non-2xx {result['non2xx']}   errors {result['errors']}")
        print(f"cold start: {first_share:.0%} of the viewers were still unseen after it")
        ratio = clip["rps"] / floor["rps"] if floor["rps"] else 0.0
        print(f"clip / floor throughput: {ratio:.2f} cold start, {returning['rps'] / floor['rps']:.2f} returning   "
              f"(goal: p99 <= 50 ms and ratio >= 0.5); load average during the run: "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        vast_to_json = vast["rps"] / returning["rps"] if returning["rps"] else 0.0
        print(f"vast / clip throughput (returning viewers): {vast_to_json:.2f}   "
              f"p50 {vast['p50_ms']:.2f} ms against {returning['p50_ms']:.2f} ms")
        if any(r["non2xx"] or r["errors"] for r in (floor, clip, returning, vast)):
            print("WARNING: some requests failed; the figures are not valid", file=sys.stderr)
        print(json.dumps({"client": tool, "rps": round(clip["rps"], 1), "p50_ms": round(clip["p50_ms"], 2),
                          "p99_ms": round(clip["p99_ms"], 2), "floor_rps": round(floor["rps"], 1),
                          "ratio": round(ratio, 3), "returning_rps": round(returning["rps"], 1),
                          "returning_p50_ms": round(returning["p50_ms"], 2),
                          "returning_p99_ms": round(returning["p99_ms"], 2),
                          "vast_rps": round(vast["rps"], 1), "vast_p50_ms": round(vast["p50_ms"], 2),
                          "vast_p99_ms": round(vast["p99_ms"], 2), "vast_to_json": round(vast_to_json, 3)}))
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        _drop_database()
        shutil.rmtree(media, ignore_errors=True)


# --- setup ---------------------------------------------------------------------------------------

def _environment(media: Path) -> dict:
    return bench_environment(
        media,
        # Persistent connections: opening a PostgreSQL connection per request would cost more than
        # the request itself. Production should set the same (see docs/personalization.md).
        f"{SERVER}/{DB_NAME}?conn_max_age=600",
        # High enough never to trip, so every request still pays for the throttle's bookkeeping.
        API_RATE_LIMIT="100000000/min",
    )


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _create_database() -> None:
    _drop_database()  # a run that was killed may have left it behind
    _admin(f"CREATE DATABASE {DB_NAME}")


def _drop_database() -> None:
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def _run(command: list[str], env: dict) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def _seed(env: dict, media: Path, profiles: int) -> tuple[str, int, bytes]:
    """Rows and files, written by a child process configured exactly like the server."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.serve import seed_rows; seed_rows({profiles})"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    if result.returncode:
        raise SystemExit(f"seeding failed:\n{result.stdout}{result.stderr}")
    seeded = json.loads(result.stdout.strip().splitlines()[-1])
    return seeded["key"], seeded["campaign"], Path(seeded["mp4"]).read_bytes()


def seed_rows(profiles: int) -> None:
    import django

    django.setup()
    import numpy as np
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from campaigns import services
    from campaigns.models import Brand, Campaign, Clip, Organization, Profile, Segment, SegmentMembership
    from generation.media import write_mp4, write_poster

    frames = np.linspace(0, 1, 9 * 64 * 64 * 3, dtype=np.float32).reshape(9, 64, 64, 3)
    sample = Path(os.environ["MEDIA_ROOT"]) / "sample"
    write_mp4(frames, sample / "clip.mp4", fps=8)
    write_poster(frames, sample / "poster.jpg")
    mp4, jpg = (sample / "clip.mp4").read_bytes(), (sample / "poster.jpg").read_bytes()

    org = Organization.objects.create(name="Bench", slug="bench")
    _, key = services.api_key_create(organization=org, scopes=["serve"])
    brand = Brand.objects.create(organization=org, name="Bench", trigger_token="benchstyle")
    campaign = Campaign.objects.create(organization=org, brand=brand, name="Bench", brief="A benchmark",
                                       num_frames=9, width=64, height=64, fps=8, status=Campaign.Status.LIVE,
                                       cta_url="https://shop.example.com/offer")
    styles = ["minimal", "bold", "cozy", "neon", "rugged", "classic", "playful", "calm"]
    segments = Segment.objects.bulk_create([
        Segment(organization=org, campaign=campaign, name=f"{style} fans", attributes={"style": style},
                position=i) for i, style in enumerate(styles[:SEGMENTS])
    ])
    clips = []
    for segment in segments:
        for variant in range(CLIPS_PER_SEGMENT):
            stem = f"org-{org.pk}/campaigns/{campaign.pk}/clips/seg{segment.pk}-v{variant}"
            clips.append(Clip(
                organization=org, campaign=campaign, segment=segment, variant=variant, prompt="bench", seed=variant,
                model="tiny", steps=4, guidance=5.0, num_frames=9, width=64, height=64, fps=8,
                video=default_storage.save(f"{stem}.mp4", ContentFile(mp4)),
                poster=default_storage.save(f"{stem}.jpg", ContentFile(jpg)),
                status=Clip.Status.APPROVED,
                # Some history, so that Thompson sampling has something to weigh.
                impressions=1000, clicks=20 + 30 * variant,
            ))
    Clip.objects.bulk_create(clips)
    rows = Profile.objects.bulk_create([
        Profile(organization=org, external_id=f"viewer-{i}", attributes={"style": styles[i % SEGMENTS]})
        for i in range(profiles)
    ], batch_size=2000)
    SegmentMembership.objects.bulk_create([
        SegmentMembership(organization=org, profile=profile, campaign=campaign, segment=segments[i % SEGMENTS],
                          distance=0.1)
        for i, profile in enumerate(rows)
    ], batch_size=2000)
    # Planner statistics, as autovacuum keeps them on a live database; right after a bulk load
    # PostgreSQL would otherwise guess row counts and may pick a scan over the unique indexes.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(json.dumps({"key": key, "campaign": campaign.pk, "mp4": str(sample / "clip.mp4")}))


def _remembered_count() -> int:
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}") as conn:
        return conn.execute("SELECT count(*) FROM campaigns_segmentmembership WHERE clip_id IS NOT NULL").fetchone()[0]


def _remember_all() -> None:
    """Give every viewer not yet served a variant of their segment, as a day of traffic would."""
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}") as conn:
        conn.execute("""
            UPDATE campaigns_segmentmembership m SET clip_id = (
                SELECT k.id FROM campaigns_clip k WHERE k.segment_id = m.segment_id AND k.status = 'approved'
                ORDER BY k.id OFFSET (m.profile_id % 3) LIMIT 1)
            WHERE m.clip_id IS NULL""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_gunicorn(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn) if gunicorn.exists() else "gunicorn", "adplatform.wsgi:application",
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
               "--backlog", "2048", "--keep-alive", "30"]
    if threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def _wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s")


def _check_one(base: str, path: str, key: str, mp4: bytes) -> None:
    """One real answer first: the JSON is right and its URL fetches the MP4's bytes."""
    request = urllib.request.Request(f"{base}{path}0", headers={"Authorization": f"Api-Key {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    with urllib.request.urlopen(body["clip"]["url"], timeout=10) as response:
        if response.read() != mp4:
            raise SystemExit("the served URL did not return the clip's bytes")


def _check_vast(base: str, path: str, key: str, mp4: bytes) -> None:
    """One real VAST answer first: an InLine ad whose MediaFile fetches the MP4's bytes."""
    from lxml import etree

    request = urllib.request.Request(f"{base}{path}0", headers={"Authorization": f"Api-Key {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        root = etree.fromstring(response.read())
    ns = {"v": "http://www.iab.com/VAST"}
    media = root.findtext("v:Ad/v:InLine/v:Creatives/v:Creative/v:Linear/v:MediaFiles/v:MediaFile", namespaces=ns)
    if not media:
        raise SystemExit("the VAST answer has no MediaFile")
    with urllib.request.urlopen(media.strip(), timeout=10) as response:
        if response.read() != mp4:
            raise SystemExit("the VAST MediaFile did not return the clip's bytes")


# --- load ----------------------------------------------------------------------------------------

WRK_SCRIPT = """
local path, header, profiles = "%(path)s", "%(header)s", %(profiles)d
if header ~= "" then wrk.headers["Authorization"] = header end
local random_viewers = path:sub(-1) == "-"
request = function()
  if random_viewers then return wrk.format("GET", path .. math.random(0, profiles - 1)) end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"non2xx": %%d, "errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def _measure(base: str, path: str, key: str | None, args, media: Path) -> dict:
    header = f"Api-Key {key}" if key else ""
    if shutil.which("wrk"):
        script = media / "load.lua"
        script.write_text(WRK_SCRIPT % {"path": path, "header": header, "profiles": args.profiles})
        _wrk(base, script, args.connections, WARMUP_S)
        raw = _wrk(base, script, args.connections, args.seconds)
        return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000, "non2xx": raw["non2xx"], "errors": raw["errors"]}
    _python_load(base + path, header, WARMUP_S, args)
    return _python_load(base + path, header, args.seconds, args)


def _wrk(base: str, script: Path, connections: int, seconds: float) -> dict:
    # One wrk thread is plenty on loopback and leaves the cores to the server.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(script),
               base]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"wrk failed:\n{result.stdout}{result.stderr}")


def _python_load(url: str, header: str, seconds: float, args) -> dict:
    command = [sys.executable, __file__, "--connections", str(args.connections), "--profiles", str(args.profiles),
               "--drive", url, header, str(seconds)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode:
        raise SystemExit(f"load generator failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def _drive(url: str, header: str, seconds: float, connections: int, profiles: int) -> dict:
    """HTTP/1.1 keep-alive GETs from ``connections`` coroutines for ``seconds``: rps and percentiles."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    random_viewers = path.endswith("-")
    latencies: list[float] = []
    failures = {"non2xx": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        extra = f"Authorization: {header}\r\n" if header else ""
        while time.monotonic() < deadline:
            target = f"{path}{random.randrange(profiles)}" if random_viewers else path
            started = time.perf_counter()
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}\r\n{extra}\r\n".encode())
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
                headers = {name.strip().lower(): value.strip().lower() for name, value in headers.items()}
                await reader.readexactly(int(headers[b"content-length"]))
            except (asyncio.IncompleteReadError, ConnectionError, KeyError, ValueError):
                failures["errors"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                continue
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                failures["non2xx"] += 1
            if headers.get(b"connection") == b"close":
                # Gunicorn's sync workers answer one request per connection: open the next one, as
                # a browser or wrk does (its time counts in the next request's latency).
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.close()

    began = time.monotonic()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed = time.monotonic() - began
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return {"rps": len(latencies) / elapsed, "p50_ms": percentile(50), "p99_ms": percentile(99), **failures}


if __name__ == "__main__":
    main()
