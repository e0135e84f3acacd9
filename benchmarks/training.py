"""Benchmark of LoRA training and brand switching on the tiny Wan model: `python benchmarks/training.py`.

Prints seconds per training step (median after warm-up), peak memory during training, and how
long switching between two trained LoRAs on a loaded pipeline takes next to reloading the whole
pipeline with the other LoRA: the number that says why a GPU worker keeps its base model and
swaps adapters. The last line is one JSON object for scripts:
{"seconds_per_step": ..., "peak_mb": ..., "switch_s": ..., "reload_s": ...}
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.memory import peak_memory_mb  # noqa: E402

from generation.tiny_model import build_tiny_model  # noqa: E402
from generation.training import TrainingSample, train_lora  # noqa: E402

# diffusers warns on every second adapter of a model; two brands loaded at once is the point here.
warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")

TRAIN_STEPS = 60
WARMUP_STEPS = 10  # first steps pay for allocator growth and kernel selection
SWITCHES = 20
RELOADS = 3


def main() -> None:
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        root = Path(tmp)
        model_path = build_tiny_model(root / "tiny")
        samples = _make_samples(root / "assets")

        # 1. Training speed and memory, on the default training size (64x64, 9 frames).
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        stamps: list[float] = []
        first = train_lora(model_path=model_path, samples=samples, output_dir=root / "lora-a", steps=TRAIN_STEPS,
                           checkpoint_every=0, seed=1,
                           on_step=lambda step, total, loss: stamps.append(time.perf_counter()))
        # float(loss) inside the trainer waits for the GPU, so stamps are real step ends.
        seconds_per_step = statistics.median(np.diff(stamps[WARMUP_STEPS:]).tolist())
        peak_mb, peak_what = peak_memory_mb(cuda)
        print(f"training: {seconds_per_step * 1000:.2f} ms/step (median of steps {WARMUP_STEPS + 1}-{TRAIN_STEPS}), "
              f"loss {np.mean(first.losses[:10]):.3f} -> {np.mean(first.losses[-10:]):.3f}")
        print(f"peak memory: {peak_mb:.1f} MB ({peak_what})")

        # 2. A second brand LoRA to switch to.
        second = train_lora(model_path=model_path, samples=samples[:2], output_dir=root / "lora-b", steps=20,
                            checkpoint_every=0, seed=2)
        loras = {"brand_a": first.lora_path, "brand_b": second.lora_path}

        # 3. Switch between the two on one loaded pipeline vs reload the pipeline with the other.
        switch_s, reload_s, how = _switch_and_reload(model_path=model_path, loras=loras, device=device)
        print(f"adapter switch ({how}): {switch_s * 1000:.3f} ms (median of {SWITCHES})")
        print(f"full reload (from_pretrained + load_lora_weights): {reload_s * 1000:.1f} ms (median of {RELOADS})")
        print(f"reload / switch: {reload_s / switch_s:.0f}x")

    print(json.dumps({"seconds_per_step": round(seconds_per_step, 6), "peak_mb": round(peak_mb, 1),
                      "switch_s": round(switch_s, 6), "reload_s": round(reload_s, 6)}))


def _make_samples(folder: Path) -> list[TrainingSample]:
    import imageio.v3 as iio
    from PIL import Image

    folder.mkdir(parents=True)
    samples = []
    for index, colour in enumerate([(220, 30, 30), (30, 200, 40), (20, 40, 220), (240, 220, 20)]):
        path = folder / f"colour{index}.png"
        Image.new("RGB", (64, 64), colour).save(path)
        samples.append(TrainingSample(path=path, kind="image", caption=f"sks brand, colour {index}"))
    frames = np.zeros((24, 64, 64, 3), dtype=np.uint8)
    frames[..., 0] = np.linspace(0, 255, 24, dtype=np.uint8)[:, None, None]
    clip = folder / "fade.mp4"
    iio.imwrite(clip, frames, fps=16, codec="libx264")
    samples.append(TrainingSample(path=clip, kind="clip", caption="sks brand, red fade"))
    return samples


def _load_pipeline(model_path: Path, device: torch.device):
    """The pipeline as a GPU worker holds it: through generation.engine."""
    from generation.engine import Engine

    return Engine(model_path, device=device).pipe, "set_adapters on generation.engine's pipeline"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _switch_and_reload(*, model_path: Path, loras: dict[str, Path], device: torch.device) -> tuple[float, float, str]:
    pipe, how = _load_pipeline(model_path, device)
    for name, path in loras.items():
        pipe.load_lora_weights(path, adapter_name=name)
    names = list(loras)
    switches = []
    for index in range(SWITCHES + 2):
        started = time.perf_counter()
        pipe.set_adapters([names[index % 2]])
        _sync(device)
        switches.append(time.perf_counter() - started)
    del pipe

    reloads = []
    for _ in range(RELOADS):
        started = time.perf_counter()
        fresh, _ = _load_pipeline(model_path, device)
        fresh.load_lora_weights(loras["brand_b"], adapter_name="brand_b")
        fresh.set_adapters(["brand_b"])
        _sync(device)
        reloads.append(time.perf_counter() - started)
        del fresh
    return statistics.median(switches[2:]), statistics.median(reloads), how


if __name__ == "__main__":
    main()
