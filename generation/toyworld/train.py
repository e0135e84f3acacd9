"""Train the `tiny` Wan checkpoint on the toy world, from scratch, on CPU: `make tiny-model`.

The result is a plain diffusers `WanPipeline` folder (`generation/checkpoints/tiny/`) of the very
classes the engine loads for a real checkpoint. Two stages, each a list of named steps.

Stage `toy` (the toy world's own captions, centred paths):
1. Text side: the shipped byte-level BPE tokenizer and the random UMT5 text encoder of
   `generation.tiny_model` (seed 0), kept frozen: a random encoder still gives every word its own
   embedding, and the transformer learns to read them.
2. VAE: `AutoencoderKLWan` (Wan 2.2's residual blocks, 4x in space and time) trained as a small
   VAE (MSE with the shape's pixels weighted up, plus a light KL term) on toy clips in random
   colours as well as the palette, so that it is a general codec of flat shapes (brand colours
   included) rather than a codec of the training captions. On a CPU it trains in two data-parallel
   processes of one thread each (`generation.training.data_parallel`), about a fifth faster than
   one process of two threads; the transformer gains nothing that way and trains in one.
3. Dataset: every training scene (`world.train_scenes`) drawn at several positions, encoded once;
   the latents are normalised by their own per-channel mean and std, written into the VAE config
   (`latents_mean`/`latents_std`), exactly as the pipeline undoes it before decoding.
4. Transformer: `WanTransformer3DModel` trained with the objective of the LoRA trainer and the
   pipeline's scheduler (flow matching, `FlowMatchEulerDiscreteScheduler(shift=3)` sigmas,
   timestep = sigma * 1000, target noise - x0), captions dropped 10% of the time (replaced by the
   empty prompt) so classifier-free guidance works, and a quarter of the steps on still images
   (the clips' first frames), as Wan trains on images and videos together.
5. Save: `WanPipeline(...).save_pretrained` into a staging folder, renamed into place.

Stage `platform` continues the toy stage's transformer (text side, VAE and latent statistics
unchanged) on what the platform really asks of the model:
- captions: half the clips are captioned with a platform prompt (`toyworld.platform`: the real
  prompt builder around a random brand, brief, palette and segment, whose setting names the
  background and whose camera preset names the motion), half with their toy caption;
- motion that can continue: a quarter of the clips show the stretch of the path before or after
  the centred one (the shape enters or leaves the frame), so that a clip can be extended;
- the camera worded as `tiny` words it (`CameraPreset.wording["tiny"]`): the motion on screen in
  the toy captions' own words ("moving right" for a pan to the left);
- a text window of 96 tokens (the tokenizer's `model_max_length`, which the engine honours):
  a platform prompt is about 230 tokens of this small BPE, and everything that carries meaning
  (trigger, brief, setting and camera) comes in its first 93; what follows only dilutes it.

`--text-lr RATE` (a recipe trial, in no stage) trains the text encoder beside the transformer at
its own peak rate in the same one-cycle schedule (`TrainedText` encodes each step's captions)
instead of keeping it frozen; measured in the README ("A text encoder that trains").
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from generation.atomic import staged_folder
from generation.families import WAN
from generation.pixels import frames_to_pixels, pixels_to_frames
from generation.toyworld.platform import random_platform_caption
from generation.training.data_parallel import Shard, run_sharded
from generation.training.flow import flow_loss, noisy_and_target, sample_sigmas
from generation.toyworld.world import (
    COLOURS, DIRECTIONS, SHAPES, Scene, heldout_scenes, render_clip, train_scenes,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "checkpoints" / "tiny"
MARKER_NAME = "toyworld.json"
# Every clip trains at this size; generation at other sizes runs on the same convolutional VAE
# and rotary transformer, untested for quality.
WIDTH = HEIGHT = 32
NUM_FRAMES = 9
FLOW_SHIFT = 3.0
NUM_TRAIN_TIMESTEPS = 1000


def clip_window(k: int, share: float) -> int:
    """Which stretch of its path a scene's k-th clip shows (`render_clip(window=)`): centred, or for
    `share` of the clips the stretch after (1) or before (-1) it, alternately. Of every 8 clips, the
    k-th becomes a continuation in the order of `_CONTINUATION_ORDER`."""
    position = _CONTINUATION_ORDER.index(k % 8)
    if position >= round(share * 8):
        return 0
    return 1 if position % 2 == 0 else -1


_CONTINUATION_ORDER = (3, 7, 1, 5, 0, 4, 2, 6)


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    z_dim: int = 8
    vae_base_dim: int = 16
    vae_steps: int = 4000
    vae_batch: int = 6
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-4
    vae_shape_weight: float = 8.0
    clips_per_scene: int = 8
    dit_dim_heads: int = 4
    dit_head_dim: int = 32
    dit_layers: int = 4
    dit_ffn: int = 256
    dit_steps: int = 14000
    dit_batch: int = 32
    dit_lr: float = 8e-4
    caption_dropout: float = 0.1
    image_share: float = 0.25
    # Stage `platform` only (see STAGES): platform prompts, paths that continue, a shorter text window.
    platform_share: float = 0.0
    continuation_share: float = 0.0  # clips on the stretch before or after the centred path
    text_window: int = WAN.max_sequence_length
    text_lr: float = 0.0  # > 0: the text encoder trains beside the transformer at this peak rate; 0: frozen


STAGES = {
    "toy": Recipe(),
    "platform": Recipe(dit_steps=6000, dit_lr=4e-4, platform_share=0.5, continuation_share=0.25, text_window=96),
}


def train(*, output: Path, recipe: Recipe, device: str = "cpu", vae_from: Path | None = None,
          start_from: Path | None = None, processes: int = 1) -> Path:
    """Run one stage of the recipe and write the pipeline folder to `output`; returns `output`.

    `start_from`: the toy stage's pipeline folder, which the platform stage continues (its text
    side, VAE, latent statistics and transformer). `vae_from`: a pipeline folder whose VAE to
    reuse instead of training one (step 2), for trying transformer recipes quickly; the rebuild
    from scratch leaves it out. `processes`: how many data-parallel processes train the VAE (CPU
    only; `default_processes`).
    """
    started = time.perf_counter()
    dev = torch.device(device)
    check_processes(processes, device, recipe)
    # Tiny weights drift into denormal floats late in training, which x86 CPUs handle ~100x slower.
    torch.set_flush_denormal(True)
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline

    # 1. Text side: the shipped tokenizer and random text encoder (or the earlier stage's); frozen
    #    unless the recipe trains it (`text_lr`).
    start = WanPipeline.from_pretrained(start_from) if start_from else None
    pipe = start or _text_side(recipe)
    pipe.tokenizer.model_max_length = recipe.text_window
    text_encoder = pipe.text_encoder.to(dev).requires_grad_(False).eval()

    # 2. VAE.
    if start is not None:
        vae = start.vae.to(dev).eval().requires_grad_(False)
    elif vae_from is None:
        vae = _train_vae(recipe, dev, processes=processes)
    else:
        vae = AutoencoderKLWan.from_pretrained(Path(vae_from) / "vae").to(dev).eval().requires_grad_(False)

    # The transformer cannot draw better than the VAE decodes: report the VAE's own adherence.
    print(f"VAE round trip of held-out clips: {_vae_adherence(vae, dev)}")

    # 3. Dataset: latents of every training scene, and the caption embeddings. A continued stage
    #    keeps the latent statistics its transformer learned with.
    scenes = train_scenes()
    latents_mu, latents_sd, scene_index = _encode_dataset(vae, scenes, recipe, dev)
    if start is None:
        channel_mean = latents_mu.mean(dim=(0, 2, 3, 4))
        channel_std = latents_mu.std(dim=(0, 2, 3, 4))
        vae.register_to_config(latents_mean=channel_mean.tolist(), latents_std=channel_std.tolist())
    else:
        channel_mean = torch.tensor(vae.config.latents_mean)
        channel_std = torch.tensor(vae.config.latents_std)
    view = (1, recipe.z_dim, 1, 1, 1)
    mu = (latents_mu - channel_mean.view(view)) / channel_std.view(view)
    sd = latents_sd / channel_std.view(view)
    pipe.vae, pipe.text_encoder = vae.to(dev), text_encoder
    # Toy captions come first (one per scene), then one platform prompt per clip, then the empty one.
    captions = [s.caption() for s in scenes]
    if recipe.platform_share > 0:
        captions += _platform_captions(scenes, scene_index, recipe)
    if recipe.text_lr > 0:
        text = TrainedText(text_encoder, *_tokenize(pipe, captions + [""], recipe))
    else:
        text = FrozenText(_encode_captions(pipe, captions + [""], recipe, dev))

    # 4. Transformer (and, when the recipe says so, the text encoder with it).
    transformer = _train_transformer(recipe, mu, sd, scene_index, text, dev, toy_count=len(scenes),
                                     init=start.transformer if start is not None else None)

    # 5. Save.
    result = WanPipeline(tokenizer=pipe.tokenizer, text_encoder=text_encoder.cpu().eval(), vae=vae.cpu().eval(),
                         transformer=transformer.cpu().eval(),
                         scheduler=FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT))
    info = {"recipe": asdict(recipe), "device": device, "seconds": round(time.perf_counter() - started, 1),
            "torch_threads": torch.get_num_threads(), "processes": processes, "train_size": [NUM_FRAMES, HEIGHT, WIDTH],
            "vae_from": str(vae_from) if vae_from else None, "start_from": str(start_from) if start_from else None}
    if start_from and (Path(start_from) / MARKER_NAME).is_file():
        info["start_from_info"] = json.loads((Path(start_from) / MARKER_NAME).read_text(encoding="utf-8"))
    _save(result, output, info)
    return output


def default_processes(device: str) -> int:
    """How many processes train the VAE: two on a CPU of two threads or more (they share them), one on a GPU."""
    return 2 if torch.device(device).type == "cpu" and torch.get_num_threads() >= 2 else 1


def check_processes(processes: int, device: str, recipe: Recipe) -> None:
    """Refuse a process count the VAE's training cannot use, before anything runs."""
    if processes < 1 or (processes > 1 and torch.device(device).type != "cpu"):
        raise ValueError(f"--processes {processes}: give 1 or more, and 1 on {device} (more train on the CPU only).")
    if recipe.vae_batch % processes:
        raise ValueError(f"--processes {processes} does not split the VAE's batch of {recipe.vae_batch}: "
                         f"give a number that divides it (or --vae-batch that {processes} divides).")


def _text_side(recipe: Recipe):
    from generation.tiny_model import _build_pipeline

    pipe = _build_pipeline(seed=recipe.seed)
    pipe.vae = pipe.transformer = None
    return pipe


# --- 2. VAE ---------------------------------------------------------------------------------


def _random_clip(rng: random.Random, *, seed: int) -> np.ndarray:
    """A toy clip for the VAE: palette colours (orange too) mostly, any two distinct colours otherwise."""
    scene = Scene(rng.choice(SHAPES), "red", rng.choice(DIRECTIONS), "white")
    if rng.random() < 0.6:
        fg, bg = rng.sample([COLOURS[c] for c in COLOURS], 2)
    else:
        while True:
            fg, bg = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
            if sum(abs(a - b) for a, b in zip(fg, bg)) > 120:
                break
    return render_clip(scene, seed=seed, num_frames=NUM_FRAMES, width=WIDTH, height=HEIGHT,
                       colour_rgb=fg, background_rgb=bg)


def _train_vae(recipe: Recipe, dev: torch.device, *, processes: int = 1):
    """A VAE trained for `vae_steps` (in `processes` data-parallel processes on the CPU)."""
    vae = _new_vae(recipe)
    vae.load_state_dict(run_sharded(_vae_steps, processes, recipe, vae, dev))
    return vae.to(dev).eval().requires_grad_(False)


def _new_vae(recipe: Recipe):
    """The recipe's VAE before training (seeded)."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(recipe.seed + 1)
    # is_residual (Wan 2.2's blocks): space-to-channel averaging shortcuts around every down and
    # up block give an almost-identity path from the start, so it learns in minutes, not hours.
    # Two downsampling levels, both also in time: 4x in space and time. At 8x in space a 32 px
    # clip is 4x4 latents and the shape's colour got lost; the pipeline reads the spatial factor
    # from `scale_factor_spatial` and still demands sides divisible by 16.
    vae = AutoencoderKLWan(base_dim=recipe.vae_base_dim, z_dim=recipe.z_dim, dim_mult=[1, 1, 1],
                           num_res_blocks=1, temperal_downsample=[True, True], is_residual=True,
                           scale_factor_spatial=4, scale_factor_temporal=4,
                           latents_mean=[0.0] * recipe.z_dim, latents_std=[1.0] * recipe.z_dim)
    with torch.no_grad():
        # Start with a small posterior std (log-variance -6): a sample is then mostly the mean and
        # the decoder gets a useful signal from the first step; the light KL term keeps it a VAE.
        vae.quant_conv.bias[recipe.z_dim:] = -6.0
        vae.quant_conv.weight[recipe.z_dim:] *= 0.1
    return vae


def _vae_steps(shard: Shard, recipe: Recipe, vae, dev: torch.device) -> dict:
    """Train `vae` in place on this shard's part of every batch; returns its weights."""
    torch.manual_seed(recipe.seed + 4 + shard.rank)  # the posterior samples: each process its own
    vae = vae.to(dev).train()
    part = shard.part(recipe.vae_batch)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=recipe.vae_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.vae_lr, total_steps=recipe.vae_steps,
                                                   pct_start=0.05)
    rng = random.Random(f"vae:{recipe.seed}")
    bar = tqdm(range(recipe.vae_steps), desc="VAE", unit="step", mininterval=2.0, disable=not shard.leader)
    for step in bar:
        # Every process draws the whole batch (the same one) and trains on its part of it.
        clips = np.stack([_random_clip(rng, seed=step * recipe.vae_batch + i) for i in range(recipe.vae_batch)])
        pixels = frames_to_pixels(clips[part]).to(dev)
        posterior = vae.encode(pixels).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        # The shape covers about a tenth of the frame: weigh its pixels up, or the codec learns
        # backgrounds and blurs shapes into them.
        corner = pixels[:, :, :, :1, :1]
        weight = 1 + recipe.vae_shape_weight * ((pixels - corner).abs().amax(1, keepdim=True) > 0.05).float()
        mse = (weight * (reconstruction - pixels).pow(2)).mean()
        kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()
        loss = mse + recipe.vae_kl_weight * kl
        loss.backward()
        shard.average_gradients(vae.parameters())
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 20 == 0 and shard.leader:
            bar.set_postfix(mse=f"{mse.item():.4f}", kl=f"{kl.item():.2f}")
    return vae.state_dict()


@torch.no_grad()
def _vae_adherence(vae, dev: torch.device) -> dict[str, float]:
    """Share of held-out clips whose VAE reconstruction the adherence checker reads right, per attribute."""
    from generation.eval.adherence import score_clip

    scenes = heldout_scenes()
    right = dict.fromkeys(("foreground", "background", "direction"), 0)
    for i, scene in enumerate(scenes):
        pixels = frames_to_pixels(render_clip(scene, seed=i, num_frames=NUM_FRAMES, width=WIDTH, height=HEIGHT)[None]).to(dev)
        frames = pixels_to_frames(vae.decode(vae.encode(pixels).latent_dist.mean).sample[0])
        for key, ok in score_clip(frames, scene).items():
            right[key] += ok
    return {key: round(value / len(scenes), 3) for key, value in right.items()}


# --- 3. Dataset -----------------------------------------------------------------------------


@torch.no_grad()
def _encode_dataset(vae, scenes: list[Scene], recipe: Recipe, dev: torch.device):
    jobs = [(i, k) for i in range(len(scenes)) for k in range(recipe.clips_per_scene)]
    mus, sds = [], []
    for start in tqdm(range(0, len(jobs), 32), desc="encode", unit="batch", mininterval=2.0):
        batch = jobs[start:start + 32]
        clips = np.stack([render_clip(scenes[i], seed=1000 * k + i, num_frames=NUM_FRAMES, width=WIDTH, height=HEIGHT,
                                      window=clip_window(k, recipe.continuation_share)) for i, k in batch])
        pixels = frames_to_pixels(clips).to(dev)
        posterior = vae.encode(pixels).latent_dist
        mus.append(posterior.mean.float().cpu())
        sds.append(posterior.std.float().cpu())
    return torch.cat(mus), torch.cat(sds), torch.tensor([i for i, _ in jobs])


def _platform_captions(scenes: list[Scene], scene_index: torch.Tensor, recipe: Recipe) -> list[str]:
    """One platform prompt per clip, whose setting and camera mean the clip's background and motion."""
    rng = random.Random(f"platform:{recipe.seed}")
    return [random_platform_caption(rng, background=scenes[i].background, direction=scenes[i].direction)
            for i in scene_index.tolist()]


def _tokenize(pipe, captions: list[str], recipe: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention masks of the captions, exactly as the pipeline's `encode_prompt` makes them."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    tokens = pipe.tokenizer([prompt_clean(c) for c in captions], padding="max_length", max_length=recipe.text_window,
                            truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    return tokens.input_ids, tokens.attention_mask


@torch.no_grad()
def _encode_captions(pipe, captions: list[str], recipe: Recipe, dev: torch.device) -> torch.Tensor:
    # The pipeline's own encoding at the engine's max_sequence_length: the transformer must see
    # at training exactly the (zero-padded) embeddings it is given at generation.
    out = []
    for start in range(0, len(captions), 64):
        embeds, _ = pipe.encode_prompt(prompt=captions[start:start + 64], do_classifier_free_guidance=False,
                                       max_sequence_length=recipe.text_window, device=dev)
        out.append(embeds.float().cpu())
    return torch.cat(out)


# --- 4. Transformer -------------------------------------------------------------------------


def _train_transformer(recipe: Recipe, mu, sd, scene_index, text, dev: torch.device, *, toy_count: int, init=None):
    """A transformer (`init`, or a new one) trained for `dit_steps` of one one-cycle schedule peaking at `dit_lr`.

    `text` (`FrozenText` or `TrainedText`) gives the captions' embeddings by index: the toy
    captions (the first `toy_count`, by scene), then, when the recipe has them, one platform
    prompt per clip, then the empty caption."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(recipe.seed + 2)
    transformer = init if init is not None else WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=recipe.dit_dim_heads, attention_head_dim=recipe.dit_head_dim,
        in_channels=recipe.z_dim, out_channels=recipe.z_dim, text_dim=text.dim, freq_dim=64,
        ffn_dim=recipe.dit_ffn, num_layers=recipe.dit_layers, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )
    transformer = transformer.to(dev).train().requires_grad_(True)
    steps = recipe.dit_steps
    groups = [{"params": list(transformer.parameters()), "lr": recipe.dit_lr}]
    if text.parameters():
        groups.append({"params": text.parameters(), "lr": recipe.text_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups], total_steps=steps,
                                                   pct_start=0.05)
    generator = torch.Generator().manual_seed(recipe.seed + 3)
    restore = text.collapse_padding(transformer, dev)
    mu, sd = mu.to(dev), sd.to(dev)
    scene_index = scene_index.to(dev)
    trained = [p for g in groups for p in g["params"]]
    bar = tqdm(range(steps), desc="transformer", unit="step", mininterval=2.0)
    ema = None
    for step in bar:
        # Some steps train on still images, the clips' first frames (Wan's VAE encodes the first
        # frame alone, so its latent is the image's): as Wan itself trains on images and videos,
        # so that a LoRA trained on brand images carries over to clips. They cost a third of a
        # clip step, so they come in batches twice as large.
        image = float(torch.rand((), generator=generator)) < recipe.image_share
        b = recipe.dit_batch * (2 if image else 1)
        pick = torch.randint(len(mu), (b,), generator=generator).to(dev)
        frames = 1 if image else mu.shape[2]
        eps = torch.randn(mu[pick][:, :, :frames].shape, generator=generator).to(dev)
        x0 = mu[pick][:, :, :frames] + sd[pick][:, :, :frames] * eps
        noise = torch.randn(x0.shape, generator=generator).to(dev)
        sigma = sample_sigmas(b, shift=FLOW_SHIFT, generator=generator).to(dev)
        noisy, target = noisy_and_target(x0, noise, sigma)
        text_index = scene_index[pick]
        if recipe.platform_share > 0:
            platform = (torch.rand((b,), generator=generator) < recipe.platform_share).to(dev)
            text_index = torch.where(platform, toy_count + pick, text_index)
        drop = (torch.rand((b,), generator=generator) < recipe.caption_dropout).to(dev)
        text_index = torch.where(drop, text.empty_index, text_index)
        prediction = transformer(hidden_states=noisy, timestep=sigma * NUM_TRAIN_TIMESTEPS,
                                 encoder_hidden_states=text(text_index), return_dict=False)[0]
        loss = flow_loss(prediction, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{ema:.4f}")
    restore()
    return transformer.eval().requires_grad_(False)


class FrozenText:
    """Caption embeddings computed once by the frozen encoder, (N, window, dim) with the empty caption last."""

    def __init__(self, embeds: torch.Tensor):
        self.embeds, self.empty_index, self.dim = embeds, len(embeds) - 1, embeds.shape[-1]

    def parameters(self) -> list:
        return []

    def collapse_padding(self, transformer, dev: torch.device):
        full = self.embeds.shape[1]
        used = int((self.embeds.abs().sum(dim=(0, 2)) > 0).nonzero().max()) + 1
        if used >= full:
            # Some caption fills the whole text window: there is no shared padding to collapse.
            self.embeds = self.embeds.to(dev)
            return lambda: None
        self.embeds = self.embeds[:, :used + 1].contiguous().to(dev)
        return _collapse_padding(transformer, used=used, full=full)

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        return self.embeds[index]


class TrainedText:
    """Caption embeddings encoded at every step by a text encoder that trains beside the transformer,
    zeroed past each caption's tokens as the pipeline's `encode_prompt` does."""

    def __init__(self, encoder, ids: torch.Tensor, mask: torch.Tensor):
        self.encoder, self.ids, self.mask = encoder, ids, mask
        self.empty_index, self.dim = len(ids) - 1, encoder.config.d_model
        self.pad = False

    def parameters(self) -> list:
        self.encoder.requires_grad_(True)
        return list(self.encoder.parameters())

    def collapse_padding(self, transformer, dev: torch.device):
        full = self.ids.shape[1]
        used = int(self.mask.sum(dim=1).max())
        self.ids, self.mask = self.ids[:, :used].to(dev), self.mask[:, :used].to(dev)
        if used >= full:
            return lambda: self.encoder.requires_grad_(False)
        self.pad = True
        restore = _collapse_padding(transformer, used=used, full=full)

        def done() -> None:
            restore()
            self.encoder.requires_grad_(False)
        return done

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        mask = self.mask[index]
        embeds = self.encoder(self.ids[index], mask).last_hidden_state * mask.unsqueeze(-1)
        if self.pad:
            embeds = torch.nn.functional.pad(embeds, (0, 0, 0, 1))
        return embeds


def _collapse_padding(transformer, *, used: int, full: int):
    """Train on the `used` real token positions plus one padding token that stands for all the
    others, exactly.

    The pipeline pads every caption with zero vectors to the text window; identical keys and
    values attend like one of them whose attention logit is raised by log(count). Cross-attention
    over every padded position costs most of a training step, so attend over `used + 1` positions
    instead, with that bias: the same function, a fraction of the work. Returns a function that
    puts the stock attention back.
    """
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    bias = torch.zeros(1, 1, 1, used + 1)
    bias[..., used] = float(np.log(full - used))

    class Collapsed(WanAttnProcessor):
        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
            return super().__call__(attn, hidden_states, encoder_hidden_states,
                                    bias.to(hidden_states.device, hidden_states.dtype), rotary_emb)

    for block in transformer.blocks:
        block.attn2.set_processor(Collapsed())

    def restore() -> None:
        for block in transformer.blocks:
            block.attn2.set_processor(WanAttnProcessor())

    return restore


# --- 5. Save --------------------------------------------------------------------------------


def _save(pipe, output: Path, info: dict) -> None:
    with staged_folder(output) as staging:
        pipe.save_pretrained(staging)
        # A continued stage's components remember the folder they were loaded from: not the checkpoint's business.
        for config in staging.glob("*/config.json"):
            values = json.loads(config.read_text(encoding="utf-8"))
            if values.pop("_name_or_path", None) is not None:
                config.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (staging / MARKER_NAME).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=sorted(STAGES), default="toy", help="which stage's recipe (default: toy)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="pipeline folder to (re)write")
    parser.add_argument("--start-from", type=Path, default=None,
                        help="the toy stage's pipeline folder, which the platform stage continues")
    parser.add_argument("--device", default="cpu", help="cpu (the recipe's target) or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--processes", type=int, default=None,
                        help="data-parallel processes that train the VAE, sharing the threads "
                             "(default: 2 on a CPU of 2 threads or more, 1 on a GPU)")
    parser.add_argument("--vae-from", type=Path, default=None,
                        help="reuse this pipeline folder's VAE instead of training one (for recipe trials)")
    fields = asdict(Recipe())
    for name, value in fields.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value),
                            default=None, help=f"default: the stage's ({value} in the toy stage)")
    args = parser.parse_args()
    if args.stage != "toy" and args.start_from is None:
        parser.error(f"--stage {args.stage} continues the stage before it: give --start-from FOLDER.")
    if args.threads:
        torch.set_num_threads(args.threads)
    processes = default_processes(args.device) if args.processes is None else args.processes
    stage = asdict(STAGES[args.stage])
    recipe = Recipe(**{name: stage[name] if getattr(args, name) is None else getattr(args, name) for name in fields})
    try:
        check_processes(processes, args.device, recipe)
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    train(output=args.output, recipe=recipe, device=args.device, vae_from=args.vae_from, start_from=args.start_from,
          processes=processes)
    size = sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file())
    print(f"wrote {args.output} ({size / 1e6:.1f} MB) in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
