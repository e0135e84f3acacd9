"""Generation engine: one loaded diffusers text-to-video pipeline per worker process.

The torch side of `generation/`: plain parameters in, uint8 frame arrays out, no Django. A GPU
worker loads its base model once (`get_engine`) and keeps it; brand LoRAs are loaded next to it as
named adapters and switched per request, so changing brands never reloads the base model.

One `generate` call encodes the prompt once and denoises all requested seeds as one batch. Each
seed has its own `torch.Generator`, so a clip in the batch equals the clip that seed gives alone:
a clip is reproducible from (model, LoRA, prompt, seed, frames, size, steps, guidance).
Progress and cancellation use the pipeline's own hooks (`callback_on_step_end`, `_interrupt`).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from generation.families import ModelFamily, family_for_model_path, text_window
from generation.editing import Condition
from generation.media import to_uint8_frames
from generation.pixels import encode_frames

logger = logging.getLogger(__name__)

DEFAULT_MAX_ADAPTERS = 4
# Seeds go to torch.Generator.manual_seed; keep them in the range every store handles (a
# PostgreSQL bigint, a JSON number without precision loss is 2**53, which we do not need).
MAX_SEED = 2**63 - 1
# Names of what `pipe.encode_prompt` returns, per family, in order; each becomes a __call__
# keyword. LTX also returns attention masks, the others only embeddings.
_ENCODE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "wan": ("prompt_embeds", "negative_prompt_embeds"),
    "cogvideox": ("prompt_embeds", "negative_prompt_embeds"),
    "ltx": ("prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds", "negative_prompt_attention_mask"),
}

OnStep = Callable[[int, int], "bool | None"]


class GenerationCancelled(Exception):
    """Raised by `Engine.generate` when `on_step` returned False: the caller asked to stop."""


def pick_device() -> tuple[torch.device, torch.dtype]:
    """CUDA with bfloat16 when a GPU is present, else CPU with float32 (CPUs are slow at bf16)."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


class Engine:
    """One loaded pipeline, its LoRA adapters, and counters for tests and benchmarks."""

    # Every base pipeline load in this process: tests prove LoRA switching never reloads.
    base_loads: ClassVar[int] = 0
    # Every LoRA adapter load in this process (a brand's adapter not already loaded): the fleet's
    # adapter-affine routing exists to keep this low.
    adapter_loads: ClassVar[int] = 0

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        max_adapters: int = DEFAULT_MAX_ADAPTERS,
    ) -> None:
        import diffusers

        # 1. Resolve what to load and where.
        self.model_path = Path(model_path)
        self.family: ModelFamily = family_for_model_path(self.model_path)
        default_device, _ = pick_device()
        self.device = torch.device(device) if device is not None else default_device
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.dtype = dtype
        if max_adapters < 1:
            raise ValueError(f"max_adapters must be at least 1; got {max_adapters}.")
        self.max_adapters = max_adapters

        # 2. Load the base pipeline (the only expensive step; done once per process).
        pipeline_class = getattr(diffusers, self.family.pipeline_class)
        # diffusers 0.42 takes `dtype=` (`torch_dtype=` is deprecated there and in transformers 5);
        # a dict gives one component its own dtype at load time (casting after load warns).
        load_dtype = self.dtype
        if self.family.vae_in_float32 and self.dtype != torch.float32:
            load_dtype = {"default": self.dtype, "vae": torch.float32}
        self.pipe = pipeline_class.from_pretrained(self.model_path, dtype=load_dtype)
        Engine.base_loads += 1
        self.pipe.set_progress_bar_config(disable=True)

        # 3. Place it: offload streams one model at a time to the GPU (for cards smaller than
        #    the checkpoint); it is meaningless without a GPU.
        if cpu_offload and self.device.type == "cuda":
            self.pipe.enable_model_cpu_offload(device=self.device)
        else:
            if cpu_offload:
                logger.warning("cpu_offload ignored: it needs a CUDA device, and this engine runs on %s.", self.device)
            self.pipe.to(self.device)
        if vae_tiling:
            # Decodes the video in overlapping tiles: less peak memory for large frames.
            self.pipe.vae.enable_tiling()

        # 4. Counters and LoRA bookkeeping.
        self._adapters: OrderedDict[str, str] = OrderedDict()  # name -> source, oldest first
        self._lora_enabled = True
        self._forward_calls = 0
        self.pipe.transformer.register_forward_hook(self._count_forward)
        self.last_forward_calls = 0
        self.last_seconds = 0.0
        self.last_camera_guide: dict | None = None  # the last call's camera guide: {"motion", "step"}, or None
        self._lock = threading.Lock()

    @property
    def loaded_adapters(self) -> list[str]:
        """Adapter names currently loaded, least recently used first."""
        return list(self._adapters)

    def generate(
        self,
        *,
        prompt: str,
        negative_prompt: str,
        seeds: list[int],
        num_frames: int,
        width: int,
        height: int,
        steps: int,
        guidance: float,
        fps: int | None = None,
        lora: tuple[str, str] | None = None,
        on_step: OnStep | None = None,
        condition: Condition | None = None,
        camera_motion: tuple[float, float] | None = None,
        camera_guide: float = 0.0,
    ) -> list[np.ndarray]:
        """Generate one clip per seed; returns one uint8 array (F,H,W,3) per seed, in seed order.

        `on_step(done, total)` is called after every denoising step; returning False cancels
        the run and raises `GenerationCancelled`. `lora=(adapter_name, path)` applies that brand
        LoRA; None runs the base model. `fps` matters only to families that condition on it (LTX).
        `condition` (`generation.editing.Condition`) keeps known pixels: see `_Blend`.
        `camera_motion` with `camera_guide` > 0 steers every clip onto that screen motion after that
        share of the steps (`generation.plan.CameraGuide`; a Wan-layout pipeline, no condition).
        """
        # 1. Check inputs: loud errors, never silent rounding.
        errors = self.family.validate(num_frames=num_frames, width=width, height=height)
        if errors:
            raise ValueError("; ".join(errors[k] for k in sorted(errors)))
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string.")
        if not isinstance(negative_prompt, str):
            raise ValueError("negative_prompt must be a string (may be empty).")
        if not seeds:
            raise ValueError("seeds must list at least one seed.")
        for seed in seeds:
            if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seeds must be integers in 0..{MAX_SEED}; got {seed!r}.")
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 1000:
            raise ValueError(f"steps must be an integer in 1..1000; got {steps!r}.")
        if not isinstance(guidance, (int, float)) or isinstance(guidance, bool) or not 0 <= guidance <= 50:
            raise ValueError(f"guidance must be a number in 0..50; got {guidance!r}.")
        if condition is not None:
            condition.check(num_frames=num_frames, width=width, height=height, batch=len(seeds))
            if self.family.name != "wan":
                raise ValueError(f"keeping known pixels runs on the wan family's latents; this model is "
                                 f"{self.family.name}.")
        from generation.plan import CameraGuide, camera_guide_record, camera_step, check_camera_guide

        steered = camera_motion is not None and camera_guide > 0
        check_camera_guide(camera_guide)
        if steered and (self.family.name != "wan" or self.family.native_condition or condition is not None):
            raise ValueError(f"the camera guide runs on WanPipeline's latents without a condition; this call is a "
                             f"{self.family.pipeline_class}{' with a condition' if condition is not None else ''}.")

        with self._lock:
            started = time.perf_counter()
            self._forward_calls = 0

            # 2. Select the brand adapter (or none) on the already-loaded base model.
            self._use_lora(lora)

            # 3. Encode the prompt once, and repeat the embeddings for every seed in the batch (a
            #    pipeline that makes one video a call gets them once, for each of its calls).
            batch = len(seeds)
            native = self.family.native_condition
            call_kwargs = self._encode(
                prompt=prompt, negative_prompt=negative_prompt, guidance=float(guidance), batch=1 if native else batch
            )

            # 4. One generator per seed, on the CPU: the starting noise for a seed is then the
            #    same on every device and at every batch position.
            generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
            if fps is not None and self.family.fps_argument:
                call_kwargs[self.family.fps_argument] = fps

            # 5. Denoise all seeds in one batched call (a pipeline that makes one video a call: one
            #    call per seed); progress and cancellation through the pipeline's own step hook.
            cancelled = False
            blend = None
            if condition is not None and not native:
                blend = _Blend(self, condition, generators, num_frames=num_frames, width=width, height=height,
                               steps=steps)
                call_kwargs["latents"] = blend.noise
            camera, self.last_camera_guide = None, None
            if steered:
                noise = starting_noise(self, generators, num_frames=num_frames, width=width, height=height)
                call_kwargs["latents"] = noise
                step = camera_step(camera_guide, steps)
                camera = _CameraSteps(CameraGuide(self.pipe, [camera_motion] * batch, noise, num_frames=num_frames,
                                                  step=step), noise)
                self.last_camera_guide = camera_guide_record(camera_motion, step)
            calls = [[i] for i in range(batch)] if native else [list(range(batch))]
            done_before = 0

            def step_end(pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
                nonlocal cancelled
                total = (getattr(pipe, "num_timesteps", None) or steps) * len(calls)
                if blend is not None:
                    callback_kwargs["latents"] = blend.hold(pipe, step_index, callback_kwargs["latents"])
                if camera is not None:
                    callback_kwargs["latents"] = camera.after(pipe, step_index, callback_kwargs["latents"])
                if on_step is not None and on_step(done_before + step_index + 1, total) is False:
                    cancelled = True
                    # The pipeline skips its remaining steps when this is set.
                    pipe._interrupt = True
                return callback_kwargs

            frames = []
            for items in calls:
                kwargs = call_kwargs
                if condition is not None and native:
                    kwargs = {**kwargs, **_native_condition(condition, items[0])}
                output = self.pipe(
                    num_frames=num_frames,
                    width=width,
                    height=height,
                    num_inference_steps=steps,
                    guidance_scale=float(guidance),
                    generator=generators[items[0]] if native else generators,
                    output_type="np",
                    callback_on_step_end=step_end,
                    callback_on_step_end_tensor_inputs=["latents"],
                    **kwargs,
                )
                frames.extend(output.frames)
                done_before += steps
                if cancelled:
                    break
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.last_forward_calls = self._forward_calls
            self.last_seconds = time.perf_counter() - started
            if cancelled:
                raise GenerationCancelled(f"generation cancelled by on_step after {self._forward_calls} forward calls.")

            # 6. One uint8 clip per seed; kept pixels pasted back over what the decoder made of them.
            if len(frames) != batch:
                raise RuntimeError(f"pipeline returned {len(frames)} videos for {batch} seeds.")
            clips = [to_uint8_frames(np.asarray(video)) for video in frames]
            if condition is not None:
                clips = [condition.paste_into(clip, index) for index, clip in enumerate(clips)]
            return clips

    def _encode(self, *, prompt: str, negative_prompt: str, guidance: float, batch: int) -> dict:
        names = _ENCODE_OUTPUTS[self.family.name]
        with torch.no_grad():
            outputs = self.pipe.encode_prompt(
                prompt=prompt,
                negative_prompt=negative_prompt,
                # Every pipeline here turns guidance on above 1.0; below it the negative is unused.
                do_classifier_free_guidance=guidance > 1.0,
                num_videos_per_prompt=1,
                max_sequence_length=text_window(self.family, self.pipe.tokenizer),
                device=self.pipe._execution_device,
            )
        if len(outputs) != len(names):
            raise RuntimeError(
                f"{self.family.pipeline_class}.encode_prompt returned {len(outputs)} values, expected {names}."
            )
        kwargs = {}
        for name, value in zip(names, outputs):
            if value is not None:
                # (1, ...) -> (batch, ...): the same text conditions every seed.
                kwargs[name] = value.repeat(batch, *([1] * (value.dim() - 1)))
        return kwargs

    def _use_lora(self, lora: tuple[str, str] | None) -> None:
        if lora is None:
            if self._adapters and self._lora_enabled:
                self.pipe.disable_lora()
                self._lora_enabled = False
            return

        name, source = lora
        if not isinstance(name, str) or not name or "." in name:
            # PEFT keeps adapters in nn.ModuleDicts, whose keys may not contain dots.
            raise ValueError(f"LoRA adapter name must be a non-empty string without dots; got {name!r}.")
        source = str(source)
        path = Path(source)
        if name in self._adapters and self._adapters[name] != source:
            # Same name, new file (a retrained LoRA): the old weights must go.
            self.pipe.delete_adapters([name])
            del self._adapters[name]
        if name not in self._adapters:
            if not (path.is_file() or path.is_dir()):
                raise FileNotFoundError(f"LoRA {name!r}: {source} is neither a file nor a folder.")
            # Make room first: least recently used adapters are deleted, never the one asked for.
            while len(self._adapters) >= self.max_adapters:
                oldest, _ = self._adapters.popitem(last=False)
                self.pipe.delete_adapters([oldest])
            try:
                with warnings.catch_warnings():
                    # PEFT warns on every adapter after the first; several adapters is the design.
                    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                    if path.is_file():
                        self.pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
                    else:
                        self.pipe.load_lora_weights(str(path), adapter_name=name)
            except Exception:
                # A bad file can fail after some layers got the adapter: remove the remains so
                # the next request does not run with half a LoRA. The original error is raised.
                if name in self.pipe.get_list_adapters().get("transformer", []):
                    self.pipe.delete_adapters([name])
                raise
            self._adapters[name] = source
            Engine.adapter_loads += 1
        self._adapters.move_to_end(name)
        self.pipe.set_adapters([name])
        if not self._lora_enabled:
            self.pipe.enable_lora()
            self._lora_enabled = True

    def _count_forward(self, module, args, output) -> None:
        self._forward_calls += 1


# What a native-condition pipeline (WanVACEPipeline) is given where it is to make pixels: VACE
# marks them in its mask and expects them mid-grey (0 in its -1..1 range) in the source video.
_NATIVE_UNKNOWN = 127


def _native_condition(condition: Condition, index: int) -> dict:
    """`video=` and `mask=` for a native-condition pipeline, for the seed at `index`: the source as
    RGB frames, and a mask that is white where the pipeline makes pixels, those mid-grey in the
    video. What it keeps is what is pasted back (`paste`: a re-scene's product, not its whole box,
    whose old background the model is to replace); the rest of the source (a motion guess) is not
    given: the model needs none."""
    from PIL import Image

    source = condition.sources()[min(index, condition.sources().shape[0] - 1)]
    paste = condition.pastes()
    keep = paste[min(index, paste.shape[0] - 1)] >= 0.5
    known = np.where(keep[..., None], source, np.uint8(_NATIVE_UNKNOWN))
    return {
        "video": [Image.fromarray(frame) for frame in known],
        "mask": [Image.fromarray(np.where(k, 0, 255).astype(np.uint8)) for k in keep],
    }


def starting_noise(engine: Engine, generators, *, num_frames: int, width: int, height: int) -> torch.Tensor:
    """A Wan-layout pipeline's starting latents (B, C, T, h, w), exactly as it makes them from the generators."""
    pipe = engine.pipe
    t_factor, s_factor = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
    shape = (pipe.transformer.config.in_channels, (num_frames - 1) // t_factor + 1, height // s_factor,
             width // s_factor)
    return torch.stack([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators]).to(
        pipe._execution_device, engine.dtype)


class _CameraSteps:
    """The camera guide inside a pipeline call, whose step hook sees only the latents after each
    step: the velocity the guide needs is read back from two steps' latents (Euler: x' = x +
    (sigma' - sigma) * v; for a multistep scheduler, the step's effective velocity)."""

    def __init__(self, guide, noise: torch.Tensor) -> None:
        self.guide, self.before = guide, noise

    def after(self, pipe, step_index: int, latents: torch.Tensor) -> torch.Tensor:
        if step_index == self.guide.step:
            sigmas = pipe.scheduler.sigmas
            velocity = (latents - self.before) / float(sigmas[step_index + 1] - sigmas[step_index])
            latents = self.guide.after_step(step_index, self.before, velocity, latents, pipe.scheduler)
        self.before = latents
        return latents


class _Blend:
    """Latent blending (RePaint-style) for one conditioned call on a Wan-layout pipeline.

    The source is encoded once with the pipeline's own VAE and normalised as the pipeline
    un-normalises before decoding. The keep-mask goes to the latent grid: Wan's VAE is causal in
    time (latent frame 0 is pixel frame 0; latent frame j covers pixel frames 4j-3..4j), so a
    latent frame is held only where all its pixel frames are kept, and a latent cell where at
    least half its pixels are. After each of the first `hold_fraction` of the steps, the kept
    cells are replaced by the source noised to the scheduler's next sigma with the run's own
    starting noise: the rest of the clip is denoised around them. With `guide_fraction`, the rest
    of the source (a guess at new frames, not known pixels) is held the same way for that share of
    the steps only.
    """

    def __init__(self, engine: Engine, condition: Condition, generators, *, num_frames: int, width: int,
                 height: int, steps: int) -> None:
        pipe = engine.pipe
        vae = pipe.vae
        device = pipe._execution_device
        t_factor, s_factor = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
        latent_frames = (num_frames - 1) // t_factor + 1

        # 1. The run's starting noise, made exactly as the pipeline makes it from the generators.
        self.noise = starting_noise(engine, generators, num_frames=num_frames, width=width, height=height)

        # 2. The source's latents, normalised.
        self.x0 = encode_frames(vae, condition.sources(), device).to(engine.dtype)  # sources: (B or 1, F, H, W, 3)

        # 3. The keep-mask on the latent grid; the guide is every other cell.
        keep = torch.from_numpy(condition.keeps()).float()  # (B or 1, F, H, W)
        per_latent = [keep[:, :1]] + [keep[:, max(0, t_factor * j - t_factor + 1):t_factor * j + 1]
                                      for j in range(1, latent_frames)]
        in_time = torch.stack([chunk.amin(dim=1) for chunk in per_latent], dim=1)  # (B, T, H, W)
        pooled = torch.nn.functional.avg_pool2d(in_time, kernel_size=s_factor)
        self.keep = (pooled >= 0.5).to(device, engine.dtype).unsqueeze(1)  # (B, 1, T, h, w)
        self.hold_steps = max(1, round(condition.hold_fraction * steps))
        self.guide = 1.0 - self.keep if condition.guide_fraction > 0 else None
        self.guide_steps = round(condition.guide_fraction * steps)

    def hold(self, pipe, step_index: int, latents: torch.Tensor) -> torch.Tensor:
        mask = self.keep if step_index < self.hold_steps else None
        if self.guide is not None and step_index < self.guide_steps:
            mask = self.guide if mask is None else mask + self.guide
        if mask is None:
            return latents
        # The callback runs after the scheduler's step: the latents are at sigmas[step_index + 1].
        sigma = float(pipe.scheduler.sigmas[step_index + 1])
        known = (1.0 - sigma) * self.x0 + sigma * self.noise
        return mask * known + (1.0 - mask) * latents


_engine: Engine | None = None
_engine_key: tuple | None = None
_engine_lock = threading.Lock()


def get_engine(model_path: str | Path, **options) -> Engine:
    """The process's engine for `model_path` and `options` (Engine's keywords), loaded once.

    A worker keeps one pipeline: asking for another model or other options replaces it, so two
    base models never sit in GPU memory at once.
    """
    global _engine, _engine_key
    key = (str(Path(model_path).resolve()), tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _engine_lock:
        if _engine is not None and _engine_key == key:
            return _engine
        if _engine is not None:
            logger.info("Replacing engine for %s with %s.", _engine.model_path, model_path)
            _engine = None
            _engine_key = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        _engine = Engine(model_path, **options)
        _engine_key = key
        return _engine


def reset_engine() -> None:
    """Forget the cached engine (tests; a worker that must free its GPU)."""
    global _engine, _engine_key
    with _engine_lock:
        _engine = None
        _engine_key = None
