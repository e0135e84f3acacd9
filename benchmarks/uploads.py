"""Benchmark of what a hostile clip upload costs the web request: `python benchmarks/uploads.py`.

The clip is issue #12's reproduction: 30 frames of 6144x6144 H.264, about 112 KB on disk, far
over the frames x pixels budget (ASSET_MAX_CLIP_PIXELS). It is measured two ways, each in a fresh
process (so that its peak resident memory is its own):

- probe: what the upload request does now, ``campaigns.services.asset_probe`` (the container's
  metadata only, refused before any frame is decoded);
- decode (the baseline): what the request did before, every frame decoded (imageio's FFmpeg
  reader, as ``_probe_clip`` used to).

Peak memory is what the work added to the process's peak (after Django and the libraries are
loaded) plus its largest child's peak (FFmpeg, for the baseline).

Prints medians of --runs runs; the last line is one JSON object for scripts:
{"clip_bytes", "probe_ms", "decode_ms", "speedup", "probe_peak_mb", "decode_peak_mb"}.
Needs no database or broker.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
import django
django.setup()
path, how = sys.argv[1], sys.argv[2]
import av, imageio.v3 as iio  # imports are not what is measured
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from campaigns.services import asset_probe
data = open(path, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if how == "probe":
    try:
        asset_probe(upload=SimpleUploadedFile("clip.mp4", data))
        outcome = "accepted"
    except ValidationError as exc:
        outcome = "refused: " + exc.messages[0][:60] + "..."
else:
    frames = sum(1 for _ in iio.imiter(path, plugin="FFMPEG"))
    outcome = f"decoded {{frames}} frames"
seconds = time.perf_counter() - start
# What the work added to the process's peak, plus its largest child's peak (imageio's FFmpeg reader).
peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
           + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak_mb, "outcome": outcome}}))
"""


def huge_clip(path: Path) -> int:
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = 6144
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "51"}
        frame = av.VideoFrame.from_ndarray(np.zeros((6144, 6144, 3), np.uint8), format="rgb24")
        for _ in range(30):
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path.stat().st_size


def measure(path: Path, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(path), how],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.mp4"
        size = huge_clip(path)
        print(f"clip: 30 frames of 6144x6144, {size / 1024:.0f} KB")
        results = {}
        for how in ("probe", "decode"):
            runs = [measure(path, how) for _ in range(args.runs)]
            results[how] = {"ms": statistics.median(r["seconds"] for r in runs) * 1000,
                            "peak_mb": statistics.median(r["peak_mb"] for r in runs)}
            print(f"{how:>7}: median {results[how]['ms']:9.1f} ms, peak memory {results[how]['peak_mb']:.0f} MB "
                  f"({runs[0]['outcome']})")
    speedup = results["decode"]["ms"] / results["probe"]["ms"]
    print(f"the request refuses it {speedup:.0f}x faster than decoding it did")
    print(json.dumps({"clip_bytes": size, "probe_ms": round(results["probe"]["ms"], 1),
                      "decode_ms": round(results["decode"]["ms"], 1), "speedup": round(speedup, 1),
                      "probe_peak_mb": round(results["probe"]["peak_mb"], 1),
                      "decode_peak_mb": round(results["decode"]["peak_mb"], 1)}))


if __name__ == "__main__":
    main()
