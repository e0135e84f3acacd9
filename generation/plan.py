"""Campaign generation plan: every clip of a campaign for less transformer work than one call per clip.

A campaign is segments x variants clips whose prompts share most of their words. `run_plan` takes
them all at once (one `PlanItem` per clip) on the engine's loaded Wan pipeline and spends less by
four switchable parts, each recorded on every clip (`PlanOptions.record`):

1. Micro-batches across segments: items are denoised `micro_batch` at a time, each item with its
   own prompt embeddings (one encode per distinct prompt).
2. Shared prefix: items with the same seed start from the same noise; the prefix prompt is
   denoised for the first K = round(prefix_fraction x steps) steps once per seed, then every item
   branches from that latent with its own prompt. A setting is decided early (ML-NOTES: the
   background still follows the branch at K/N = 0.25).
3. Step caching through diffusers' own hooks (`transformer.enable_cache`): FirstBlockCache,
   MagCache (ratios calibrated per checkpoint by the library's calibrate mode, kept in
   `mag_ratios.json` next to the checkpoint) or TaylorSeer.
4. Guidance where it matters: the unconditional pass runs only in the first `guidance_fraction`
   of the steps; later steps use the conditional prediction alone.

Not a saving but part of the plan's loop: the camera guide (`CameraGuide`, `camera_guide`) steers
each item that has a camera motion onto it after that share of the steps.

With every part off the plan's clip equals the clip of one plain `pipe(...)` call with the same
prompt and seed (the denoising loop below is `WanPipeline.__call__`'s, step for step).

Work is counted in evaluations: one evaluation is one full transformer pass over one batch item.
A call counts its batch items x the share of transformer blocks it really computed (counted on the
blocks' self-attention, which a skipped block never calls: a cache hook that skips a block still
fires the transformer's and the block's own forward hooks).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from generation.editing import motion_guide
from generation.media import to_uint8_frames
from generation.pixels import encode_frames

logger = logging.getLogger(__name__)

CACHE_KINDS = ("none", "first_block", "mag", "taylorseer")
# Defaults measured on `tiny` (ML-NOTES, "Measured on tiny"): adherence unchanged at these.
CACHE_DEFAULT_THRESHOLD = {"none": 0.0, "first_block": 0.2, "mag": 0.24, "taylorseer": 2.0}
MAG_RATIOS_FILE = "mag_ratios.json"
MAG_RETENTION_RATIO = 0.1
MAG_MAX_SKIP_STEPS = 5
# TaylorSeer's default identifiers match nothing on Wan (a silent no-op): cache whole blocks.
TAYLORSEER_IDENTIFIERS = [r"blocks\.\d+"]

OnStep = Callable[[int, int], "bool | None"]


@dataclass(frozen=True)
class PlanOptions:
    """Which parts of the plan run. `PlanOptions()` is the naive computation in micro-batches."""

    micro_batch: int = 0  # items per transformer batch; 0: from free memory (all of them on a CPU)
    prefix_fraction: float = 0.0  # share of the steps denoised once per seed with the prefix prompt
    cache: str = "none"  # none | first_block | mag | taylorseer
    # first_block, mag: the hook's threshold; taylorseer: its cache interval (steps); 0: the default.
    cache_threshold: float = 0.0
    guidance_fraction: float = 1.0  # share of the steps (from the first) that run the unconditional pass
    # > 0: items with a camera motion are steered onto it (`CameraGuide`) after this share of the steps.
    camera_guide: float = 0.0

    def check(self) -> None:
        if not isinstance(self.micro_batch, int) or self.micro_batch < 0:
            raise ValueError(f"micro_batch must be an integer >= 0 (0: from free memory); got {self.micro_batch!r}.")
        if not 0.0 <= self.prefix_fraction < 1.0:
            raise ValueError(f"prefix_fraction must be in [0, 1); got {self.prefix_fraction!r}.")
        if self.cache not in CACHE_KINDS:
            raise ValueError(f"cache must be one of {', '.join(CACHE_KINDS)}; got {self.cache!r}.")
        if self.cache_threshold < 0:
            raise ValueError(f"cache_threshold must be >= 0; got {self.cache_threshold!r}.")
        if not 0.0 <= self.guidance_fraction <= 1.0:
            raise ValueError(f"guidance_fraction must be in [0, 1]; got {self.guidance_fraction!r}.")
        check_camera_guide(self.camera_guide)

    @property
    def threshold(self) -> float:
        return self.cache_threshold or CACHE_DEFAULT_THRESHOLD[self.cache]

    def prefix_steps(self, steps: int) -> int:
        return round(self.prefix_fraction * steps)

    def guidance_steps(self, steps: int) -> int:
        return round(self.guidance_fraction * steps)

    def camera_step(self, steps: int, prefix_steps: int) -> int:
        return camera_step(self.camera_guide, steps, prefix_steps)


def camera_step(fraction: float, steps: int, prefix_steps: int = 0) -> int:
    """The step after which the camera guide restarts a clip: never inside a shared prefix."""
    return min(steps - 1, max(round(fraction * steps), prefix_steps))


def check_camera_guide(fraction: float) -> None:
    """The camera guide's share of the steps, for the plan and for a plain engine call alike."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"camera_guide must be in [0, 1); got {fraction!r}.")


def camera_guide_record(motion: tuple[float, float], step: int) -> dict:
    """What a guided clip records of its guide (`plan.camera_guide`), in the plan or a plain engine call."""
    return {"motion": [float(v) for v in motion], "step": step}


@dataclass(frozen=True)
class PlanItem:
    """One clip: its own prompt and seed. Items with the same seed share the prefix when it is on."""

    prompt: str
    negative_prompt: str
    seed: int
    # Where the scene travels on screen over the clip, as shares of the frame (x right, y down):
    # the campaign's camera move (`CameraPreset.screen_motion`); None: the prompt's words alone.
    camera_motion: tuple[float, float] | None = None


@dataclass
class PlanResult:
    clips: list[np.ndarray]
    records: list[dict]  # per clip: what the plan did, enough to make the clip again
    evaluations: float  # transformer work actually spent, in evaluations
    naive_evaluations: float  # what one plain pipeline call per clip spends
    seconds: float
    micro_batch: int

    @property
    def savings(self) -> dict:
        """For a job's result and the dashboard: evaluations spent against a naive run."""
        ratio = self.evaluations / self.naive_evaluations if self.naive_evaluations else 1.0
        return {"evaluations": round(self.evaluations, 2), "naive_evaluations": round(self.naive_evaluations, 2),
                "ratio": round(ratio, 4), "saved_share": round(1.0 - ratio, 4), "clips": len(self.records),
                "seconds": round(self.seconds, 3)}


class BlockCounter:
    """Counts transformer work in evaluations, on the blocks' own sub-modules.

    One evaluation = every block computed once for one batch item. Forward hooks on the
    self-attention (`attn1`) of each block fire only when the block really runs.
    """

    def __init__(self, transformer: torch.nn.Module) -> None:
        blocks = getattr(transformer, "blocks", None)
        if not isinstance(blocks, torch.nn.ModuleList) or len(blocks) == 0:
            raise ValueError(f"{type(transformer).__name__} has no `blocks` list to count work on.")
        self.num_blocks = len(blocks)
        self.evaluations = 0.0
        self._handles = []
        for block in blocks:
            inner = getattr(block, "attn1", None) or next(iter(block.children()))
            self._handles.append(inner.register_forward_hook(self._count))

    def _count(self, module, args, output) -> None:
        out = output[0] if isinstance(output, tuple) else output
        self.evaluations += out.shape[0] / self.num_blocks

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


# --- MagCache ratios ------------------------------------------------------------------------


def mag_ratios_path(model_path: str | Path) -> Path:
    return Path(model_path) / MAG_RATIOS_FILE


def load_mag_ratios(model_path: str | Path) -> list[float] | None:
    path = mag_ratios_path(model_path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    ratios = data.get("ratios") if isinstance(data, dict) else None
    if not isinstance(ratios, list) or not ratios or not all(isinstance(r, (int, float)) for r in ratios):
        raise ValueError(f"{path} has no list of ratios.")
    return [float(r) for r in ratios]


def calibrate_mag_ratios(engine, *, prompts: list[str], negative_prompt: str, num_frames: int, width: int,
                         height: int, steps: int, guidance: float, seed: int = 0, save: bool = True) -> list[float]:
    """MagCache's magnitude ratios for the engine's checkpoint, by the library's calibrate mode.

    One uncached run per prompt with `MagCacheConfig(calibrate=True)`; the hook prints each
    context's ratios at its last step (cond and uncond). The mean over contexts and prompts is
    kept, and saved to `mag_ratios.json` next to the checkpoint when `save`.
    """
    from diffusers import MagCacheConfig

    transformer = engine.pipe.transformer
    runs: list[list[float]] = []
    with engine._lock:
        transformer.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=steps))
        try:
            for i, prompt in enumerate(prompts):
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    engine.pipe(prompt=prompt, negative_prompt=negative_prompt, num_frames=num_frames, width=width,
                                height=height, num_inference_steps=steps, guidance_scale=guidance,
                                generator=torch.Generator().manual_seed(seed + i), output_type="latent")
                for line in printed.getvalue().splitlines():
                    if line.startswith("[") and line.rstrip().endswith("]"):
                        runs.append([float(x) for x in json.loads(line)])
        finally:
            transformer.disable_cache()
    runs = [r for r in runs if len(r) == steps]
    if not runs:
        raise RuntimeError("MagCache calibration printed no ratios: the pinned diffusers changed its calibrate mode.")
    ratios = [round(float(x), 5) for x in np.mean(np.array(runs), axis=0)]
    if save:
        _save_mag_ratios(engine, ratios, steps=steps, runs=len(runs),
                         request={"num_frames": num_frames, "width": width, "height": height, "guidance": guidance})
    return ratios


def mag_ratios_for(engine, *, prompt: str, negative_prompt: str, num_frames: int, width: int, height: int,
                   steps: int, guidance: float) -> list[float]:
    """The checkpoint's stored MagCache ratios; calibrated once on this request and stored when absent
    (a read-only checkpoint folder keeps them in memory for this process)."""
    ratios = load_mag_ratios(engine.model_path) or getattr(engine, "_mag_ratios", None)
    if ratios is None:
        logger.info("No %s in %s: calibrating MagCache once.", MAG_RATIOS_FILE, engine.model_path)
        ratios = calibrate_mag_ratios(engine, prompts=[prompt], negative_prompt=negative_prompt, num_frames=num_frames,
                                      width=width, height=height, steps=steps, guidance=guidance, save=False)
        try:
            _save_mag_ratios(engine, ratios, steps=steps, runs=1,
                             request={"num_frames": num_frames, "width": width, "height": height, "guidance": guidance})
        except OSError as exc:
            logger.warning("MagCache ratios not stored (%s); kept for this process.", exc)
        engine._mag_ratios = ratios
    return ratios


def _save_mag_ratios(engine, ratios: list[float], *, steps: int, runs: int, request: dict) -> None:
    import diffusers

    from generation.atomic import staged_file

    # Other workers read this file from the shared model folder: never half of it.
    with staged_file(mag_ratios_path(engine.model_path)) as staging:
        staging.write_text(json.dumps({
            "ratios": ratios, "steps": steps, "runs": runs, "diffusers": diffusers.__version__, "request": request,
        }, indent=1) + "\n", encoding="utf-8")


def _cache_config(options: PlanOptions, *, engine, steps: int, start: int, mag_ratios: list[float] | None):
    """The diffusers cache config for a run of steps start..steps-1 (hooks count steps from 0 per context)."""
    from diffusers import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig
    from diffusers.hooks.mag_cache import nearest_interp

    remaining = steps - start
    if options.cache == "first_block":
        return FirstBlockCacheConfig(threshold=options.threshold)
    if options.cache == "taylorseer":
        return TaylorSeerCacheConfig(cache_interval=max(1, int(options.threshold)),
                                     disable_cache_before_step=max(0, 3 - start), max_order=1,
                                     taylor_factors_dtype=engine.dtype, cache_identifiers=TAYLORSEER_IDENTIFIERS)
    if options.cache == "mag":
        if mag_ratios is None:
            raise ValueError(f"cache 'mag' needs magnitude ratios: none in {mag_ratios_path(engine.model_path)}.")
        full = nearest_interp(torch.tensor(mag_ratios), steps) if len(mag_ratios) != steps else torch.tensor(mag_ratios)
        retained = max(0, int(MAG_RETENTION_RATIO * steps + 0.5) - start)
        return MagCacheConfig(threshold=options.threshold, max_skip_steps=MAG_MAX_SKIP_STEPS,
                              retention_ratio=retained / remaining, num_inference_steps=remaining,
                              mag_ratios=full[start:].clone())
    return None


# --- The plan -------------------------------------------------------------------------------


def auto_micro_batch(engine, *, num_frames: int, width: int, height: int, items: int) -> int:
    """Items per transformer batch from free memory: all of them on a CPU; on a GPU what fits in
    half the free memory by a rough activation estimate (tokens x width x 24 bytes per item)."""
    if engine.device.type != "cuda":
        return items
    free, _ = torch.cuda.mem_get_info(engine.device)
    config = engine.pipe.transformer.config
    tokens = ((num_frames - 1) // 4 + 1) * (height // 16) * (width // 16)
    inner = config.num_attention_heads * config.attention_head_dim
    per_item = tokens * (inner * 6 + config.ffn_dim) * 4
    return max(1, min(items, int(free * 0.5 // max(per_item, 1))))


def run_plan(engine, *, items: list[PlanItem], num_frames: int, width: int, height: int, steps: int,
             guidance: float, options: PlanOptions, prefix_prompts: dict[int, str] | None = None,
             lora: tuple[str, str] | None = None, on_step: OnStep | None = None,
             mag_ratios: list[float] | None = None,
             on_clip: Callable[[int, np.ndarray, dict], None] | None = None) -> PlanResult:
    """Every item's clip (uint8 (F, H, W, 3)), in item order, with what it cost.

    `prefix_prompts[seed]` is the prompt the shared prefix of that seed denoises; by default the
    prompt of the seed's first item. `on_step(done, total)` is called after every denoising step
    of any batch; returning False raises `GenerationCancelled`. With `on_clip(index, clip, record)`
    each clip goes there as soon as its micro-batch is decoded and is not kept (`clips` is empty):
    a campaign's clips never sit in memory all at once.
    """
    from generation.engine import GenerationCancelled

    # 1. Check inputs.
    options.check()
    pipe = engine.pipe
    if engine.family.name != "wan" or engine.family.native_condition:
        raise ValueError(f"the campaign plan runs WanPipeline's transformer; this model is a "
                         f"{engine.family.pipeline_class}.")
    if getattr(pipe, "transformer_2", None) is not None or getattr(pipe.config, "boundary_ratio", None) is not None:
        raise ValueError("the campaign plan runs one-transformer Wan pipelines (Wan 2.1); this one has two.")
    errors = engine.family.validate(num_frames=num_frames, width=width, height=height)
    if errors:
        raise ValueError("; ".join(errors[k] for k in sorted(errors)))
    if not items:
        raise ValueError("items must list at least one clip.")
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be an integer in 1..1000; got {steps!r}.")
    cfg = guidance > 1.0
    prefix_steps = options.prefix_steps(steps)
    guidance_steps = options.guidance_steps(steps) if cfg else 0
    if options.cache == "mag" and mag_ratios is None:
        mag_ratios = load_mag_ratios(engine.model_path)
    micro = options.micro_batch or auto_micro_batch(engine, num_frames=num_frames, width=width, height=height,
                                                    items=len(items))

    # Seeds in first-seen order; each seed's prefix prompt.
    seeds = list(dict.fromkeys(item.seed for item in items))
    prefix_prompts = dict(prefix_prompts or {})
    for item in items:
        prefix_prompts.setdefault(item.seed, item.prompt)
    prefix_negative = {item.seed: item.negative_prompt for item in reversed(items)}

    # What each clip records: enough to make it again.
    record = {"options": asdict(options), "micro_batch": micro, "prefix_steps": prefix_steps,
              "guidance_steps": guidance_steps if cfg else None, "steps": steps,
              "cache_threshold": options.threshold if options.cache != "none" else None}
    if options.cache == "mag":
        record["mag_ratios"] = [float(r) for r in mag_ratios]
    records = []
    for item in items:
        clip_record = dict(record)
        if prefix_steps:
            clip_record["prefix"] = {"prompt": prefix_prompts[item.seed], "negative_prompt": prefix_negative[item.seed],
                                     "seed": item.seed, "steps": prefix_steps}
        if options.camera_guide > 0 and item.camera_motion is not None:
            step = options.camera_step(steps, prefix_steps)
            clip_record["camera_guide"] = camera_guide_record(item.camera_motion, step)
        records.append(clip_record)

    transformer = pipe.transformer
    with engine._lock:
        started = time.perf_counter()
        engine._use_lora(lora)
        counter = BlockCounter(transformer)
        embeds: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor | None]] = {}

        def encoded(prompt: str, negative: str) -> tuple[torch.Tensor, torch.Tensor | None]:
            # 2. One encode per distinct prompt; each batch item carries its own embeddings.
            if (prompt, negative) not in embeds:
                kw = engine._encode(prompt=prompt, negative_prompt=negative, guidance=float(guidance), batch=1)
                embeds[(prompt, negative)] = (kw["prompt_embeds"], kw.get("negative_prompt_embeds"))
            return embeds[(prompt, negative)]

        base_scheduler = copy.deepcopy(pipe.scheduler)
        base_scheduler.set_timesteps(steps, device=pipe._execution_device)
        total_steps = (prefix_steps * -(-len(seeds) // micro) if prefix_steps else 0) + \
            (steps - prefix_steps) * -(-len(items) // micro)
        done_steps = 0

        def denoise(latents, prompts: list[tuple[str, str]], scheduler, start: int, end: int, context: str,
                    guide=None):
            cond = torch.cat([encoded(p, n)[0] for p, n in prompts])
            uncond = torch.cat([encoded(p, n)[1] for p, n in prompts]) if cfg else None
            config = _cache_config(options, engine=engine, steps=steps, start=start, mag_ratios=mag_ratios)
            if config is not None:
                transformer.enable_cache(config)
            try:
                latents = _loop(pipe, latents, scheduler, cond, uncond, start=start, end=end, guidance=guidance,
                                guidance_steps=guidance_steps, context=context, on_step=_progress, guide=guide)
            finally:
                if config is not None:
                    transformer.disable_cache()
            return latents

        def _progress() -> None:
            nonlocal done_steps
            done_steps += 1
            if on_step is not None and on_step(done_steps, total_steps) is False:
                raise GenerationCancelled(f"plan cancelled by on_step after {done_steps} of {total_steps} steps.")

        try:
            generators = {s: torch.Generator(device="cpu").manual_seed(s) for s in seeds}
            channels = transformer.config.in_channels
            noise = {s: pipe.prepare_latents(1, channels, height, width, num_frames, torch.float32,
                                             pipe._execution_device, [generators[s]]) for s in seeds}

            # 3. The shared prefix: K steps per seed with its prefix prompt, seeds in micro-batches.
            starts: dict[int, tuple[torch.Tensor, object]] = {}
            if prefix_steps:
                for b in range(0, len(seeds), micro):
                    chunk = seeds[b:b + micro]
                    scheduler = copy.deepcopy(base_scheduler)
                    scheduler.set_begin_index(0)
                    latents = denoise(torch.cat([noise[s] for s in chunk]),
                                      [(prefix_prompts[s], prefix_negative[s]) for s in chunk], scheduler,
                                      0, prefix_steps, context=f"prefix{b}")
                    for j, s in enumerate(chunk):
                        starts[s] = (latents[j:j + 1], _scheduler_item(scheduler, j, len(chunk)))

            # 4. Every item from its seed's prefix (or its noise) to the end, in micro-batches.
            clips: list[np.ndarray] = []
            for b in range(0, len(items), micro):
                chunk = items[b:b + micro]
                if prefix_steps:
                    latents = torch.cat([starts[item.seed][0] for item in chunk])
                    scheduler = _scheduler_merge([starts[item.seed][1] for item in chunk])
                else:
                    latents = torch.cat([noise[item.seed] for item in chunk])
                    scheduler = copy.deepcopy(base_scheduler)
                    scheduler.set_begin_index(0)
                guide = None
                if options.camera_guide > 0 and any(i.camera_motion is not None for i in chunk):
                    guide = CameraGuide(pipe, [i.camera_motion for i in chunk],
                                        torch.cat([noise[i.seed] for i in chunk]), num_frames=num_frames,
                                        step=options.camera_step(steps, prefix_steps))
                latents = denoise(latents, [(i.prompt, i.negative_prompt) for i in chunk], scheduler, prefix_steps,
                                  steps, context=f"branch{b}", guide=guide)
                # 5. Decode one clip at a time: the VAE's peak memory stays one clip's.
                for j in range(len(chunk)):
                    clip = _decode(pipe, latents[j:j + 1])
                    if on_clip is None:
                        clips.append(clip)
                    else:
                        on_clip(b + j, clip, records[b + j])
            if engine.device.type == "cuda":
                torch.cuda.synchronize(engine.device)
        finally:
            counter.close()
        seconds = time.perf_counter() - started

    naive = len(items) * steps * (2 if cfg else 1)
    return PlanResult(clips=clips, records=records, evaluations=counter.evaluations, naive_evaluations=float(naive),
                      seconds=seconds, micro_batch=micro)


def _loop(pipe, latents, scheduler, cond, uncond, *, start: int, end: int, guidance: float, guidance_steps: int,
          context: str, on_step: Callable[[], None], guide=None) -> torch.Tensor:
    """`WanPipeline.__call__`'s denoising loop over steps start..end-1, one embedding row per item."""
    transformer = pipe.transformer
    dtype = transformer.dtype
    timesteps = scheduler.timesteps
    with torch.no_grad():
        for i in range(start, end):
            t = timesteps[i]
            latent_model_input = latents.to(dtype)
            if getattr(pipe.config, "expand_timesteps", False):
                # Wan 2.2 TI2V: one timestep per latent token.
                mask = torch.ones(latents.shape, dtype=torch.float32, device=latents.device)
                timestep = (mask[0][0][:, ::2, ::2] * t).flatten().unsqueeze(0).expand(latents.shape[0], -1)
            else:
                timestep = t.expand(latents.shape[0])
            with transformer.cache_context(f"{context}-cond"):
                noise_pred = transformer(hidden_states=latent_model_input, timestep=timestep,
                                         encoder_hidden_states=cond, return_dict=False)[0]
            if uncond is not None and i < guidance_steps:
                with transformer.cache_context(f"{context}-uncond"):
                    noise_uncond = transformer(hidden_states=latent_model_input, timestep=timestep,
                                               encoder_hidden_states=uncond, return_dict=False)[0]
                noise_pred = noise_uncond + guidance * (noise_pred - noise_uncond)
            before = latents
            latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
            if guide is not None:
                latents = guide.after_step(i, before, noise_pred, latents, scheduler)
            on_step()
    return latents


class CameraGuide:
    """Steers a batch's clips onto their camera moves, without training (a keyframe, then SDEdit).

    At step `step` the batch's clean estimate (x0 = latents - sigma * velocity, flow matching) gives
    each guided item's first frame: decoded, carried across the frame along the item's camera
    motion (`editing.motion_guide`), encoded again. The item's latents then restart from that
    guide clip noised to the next sigma with the item's own starting noise, and the model draws
    the rest from there: the layout, brand and setting of its own first frame, moving as the camera
    asks. Items without a camera motion are left alone.
    """

    def __init__(self, pipe, motions: list[tuple[float, float] | None], noise: torch.Tensor, *, num_frames: int,
                 step: int) -> None:
        self.pipe, self.motions, self.noise, self.num_frames, self.step = pipe, motions, noise, num_frames, step

    def after_step(self, i: int, before: torch.Tensor, prediction: torch.Tensor, latents: torch.Tensor,
                   scheduler) -> torch.Tensor:
        if i != self.step:
            return latents
        sigma, following = float(scheduler.sigmas[i]), float(scheduler.sigmas[i + 1])
        estimate = before.float() - sigma * prediction.float()
        latents = latents.clone()
        for b, motion in enumerate(self.motions):
            if motion is None:
                continue
            first = _decode(self.pipe, estimate[b:b + 1, :, :1])[0]
            height, width = first.shape[:2]
            last = max(1, self.num_frames - 1)
            per_frame = (motion[0] * width / last, motion[1] * height / last)
            frames = np.concatenate([first[None], motion_guide(first, self.num_frames - 1, per_frame, forward=True)])
            guide = encode_frames(self.pipe.vae, frames[None], latents.device).to(latents.dtype)
            latents[b:b + 1] = (1.0 - following) * guide + following * self.noise[b:b + 1].to(latents.dtype)
        _forget_history(scheduler)
        return latents


def _forget_history(scheduler) -> None:
    """A multistep scheduler (Wan's UniPC, DPM-Solver) steps from its past model outputs; after a
    restart those belong to another trajectory, so its next step is a first-order one. Euler keeps none."""
    if isinstance(getattr(scheduler, "model_outputs", None), list):
        scheduler.model_outputs = [None] * len(scheduler.model_outputs)
    if hasattr(scheduler, "lower_order_nums"):
        scheduler.lower_order_nums = 0
    if hasattr(scheduler, "last_sample"):
        scheduler.last_sample = None


def _decode(pipe, latents: torch.Tensor) -> np.ndarray:
    """`WanPipeline.__call__`'s decode, for one clip."""
    vae = pipe.vae
    with torch.no_grad():
        latents = latents.to(vae.device, dtype=vae.dtype)
        mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(latents.device, latents.dtype)
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(latents.device,
                                                                                                 latents.dtype)
        video = vae.decode(latents / std + mean, return_dict=False)[0]
        video = pipe.video_processor.postprocess_video(video, output_type="np")
    return to_uint8_frames(np.asarray(video[0]))


def _scheduler_item(scheduler, index: int, batch: int):
    """A copy of a scheduler mid-run holding only batch item `index` of its per-item state
    (multistep schedulers such as UniPC keep past model outputs; Euler keeps none)."""
    item = copy.deepcopy(scheduler)
    for name, value in vars(item).items():
        if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[0] == batch:
            setattr(item, name, value[index:index + 1].clone())
        elif isinstance(value, list) and any(isinstance(v, torch.Tensor) for v in value):
            setattr(item, name, [v[index:index + 1].clone() if isinstance(v, torch.Tensor) and v.dim() >= 2
                                 and v.shape[0] == batch else v for v in value])
    return item


def _scheduler_merge(parts: list):
    """One scheduler for a batch of branches, from one-item schedulers at the same step."""
    merged = copy.deepcopy(parts[0])
    for name, value in vars(merged).items():
        if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[0] == 1:
            setattr(merged, name, torch.cat([vars(p)[name] for p in parts]))
        elif isinstance(value, list) and any(isinstance(v, torch.Tensor) and v.dim() >= 2 for v in value):
            setattr(merged, name, [torch.cat([vars(p)[name][k] for p in parts])
                                   if isinstance(v, torch.Tensor) and v.dim() >= 2 else v
                                   for k, v in enumerate(value)])
    return merged
