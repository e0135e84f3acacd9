"""Brand-style LoRA training: PEFT adapters on a diffusers video transformer, flow-matching loss.

`train_lora` reads like finetrainers' `trainer.run()`, as named steps: check inputs, prepare
models, trainable parameters, dataset (encoded once), checkpointing (resume), train, save. The
LoRA it writes is plain diffusers format, so stock `pipe.load_lora_weights(path)` loads it.

Resuming is exact: every random draw of step N (which sample, sigma, noise, VAE posterior noise)
comes from a generator seeded by (seed, N), so a run killed after step N and resumed from its
step-N checkpoint takes the same steps as one that never stopped.

Checkpoint folder `output_dir/checkpoints/step-N/` (written to a temporary folder, then renamed):

| file | holds |
|---|---|
| `pytorch_lora_weights.safetensors` | LoRA weights in diffusers format (a usable LoRA on its own) |
| `optimizer.pt` | AdamW state dict |
| `rng_state.pt` | torch global CPU (and CUDA) generator states |
| `trainer_state.json` | step, total steps, losses so far, the run's parameters, format version |
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.atomic import staged_file, staged_folder
from generation.families import ModelFamily, family_for_model_path, text_window
from generation.training.dataset import IMAGE_MOVES, EncodedSample, dataset_fingerprint, encode_samples
from generation.training.flow import flow_loss, noisy_and_target, sample_sigmas
from generation.training.schema import TrainingCancelled, TrainingResult, TrainingSample

CHECKPOINTS_DIR = "checkpoints"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' default: loads from the folder too
OPTIMIZER_NAME = "optimizer.pt"
RNG_NAME = "rng_state.pt"
STATE_NAME = "trainer_state.json"
CHECKPOINT_FORMAT = 1

# Small by default: the tiny development model trains in milliseconds per step at this size; real
# runs pass width/height/num_frames near the size they will generate at.
DEFAULT_WIDTH = 64
DEFAULT_HEIGHT = 64
DEFAULT_NUM_FRAMES = 9
WEIGHT_DECAY = 1e-4
MAX_GRAD_NORM = 1.0  # one bad sample must not blow the adapter away
# Masked loss (generation.training.dataset): the weight of the latents off the product, against 1
# on it; 1.0 trains every latent alike. Measured on `tiny` (README, "Brand LoRA"): 0.1 took the toy
# brand colour from 66% to 86% of clips but let the demo brand's LoRA turn every setting dark; 0.5
# is the measured middle.
DEFAULT_BACKGROUND_WEIGHT = 0.5

# The objective below (latent normalisation, sigma shift, timestep = sigma * 1000) is Wan's;
# another family needs its own encode/forward before it can be listed here.
TRAINABLE_FAMILIES = ("wan",)

# Parameters that must be equal to resume a checkpoint: any other value would not continue the
# same run. `steps` may differ (training longer), the device may differ (not bit-exact then).
_RESUME_MUST_MATCH = (
    "family", "rank", "alpha", "learning_rate", "seed", "num_frames", "width", "height", "fps",
    "target_modules", "weight_decay", "max_grad_norm", "flow_shift", "dataset_fingerprint", "background_weight",
    "camera_wording",
)


@dataclass
class _Models:
    pipeline_cls: type
    pipe: Any  # the loaded pipeline; dropped after the dataset is encoded
    transformer: torch.nn.Module
    device: torch.device
    base_dtype: torch.dtype
    flow_shift: float
    num_train_timesteps: int


def train_lora(
    *,
    model_path: Path,
    samples: list[TrainingSample],
    output_dir: Path,
    steps: int = 200,
    rank: int = 8,
    alpha: int | None = None,
    learning_rate: float = 1e-3,
    seed: int = 0,
    checkpoint_every: int = 50,
    resume_from: Path | None = None,
    on_step: Callable[[int, int, float], bool] | None = None,
    on_checkpoint: Callable[[Path, int], None] | None = None,
    num_frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    background_weight: float = DEFAULT_BACKGROUND_WEIGHT,
    camera_wording: str | None = None,
) -> TrainingResult:
    """Train a LoRA on `samples` and write it to `output_dir/pytorch_lora_weights.safetensors`.

    `on_step(step, total, loss)` runs after every step (1-based); returning False stops the run
    with `TrainingCancelled` (None or True continue). `on_checkpoint(folder, step)` runs after
    each checkpoint (every `checkpoint_every` steps; 0 = never) is complete on disk.
    `resume_from` is such a checkpoint folder: the run continues after its step.
    `background_weight`: the loss weight off each asset's product (masked loss; 1.0: none).
    `camera_wording`: whose camera words (`CameraPreset.wording`: a family's name, or "tiny") caption
    the camera moves every image also trains as (`dataset.IMAGE_MOVES`); None: images train as
    still clips only.
    """
    # 1. Check inputs and fix the run's parameters.
    model_path, output_dir = Path(model_path), Path(output_dir)
    family = family_for_model_path(model_path)
    _check_inputs(family=family, samples=samples, steps=steps, rank=rank, alpha=alpha,
                  learning_rate=learning_rate, seed=seed, checkpoint_every=checkpoint_every,
                  background_weight=background_weight)
    num_frames = DEFAULT_NUM_FRAMES if num_frames is None else num_frames
    width = DEFAULT_WIDTH if width is None else width
    height = DEFAULT_HEIGHT if height is None else height
    errors = family.validate(num_frames=num_frames, width=width, height=height)
    if errors:
        raise ValueError("; ".join(errors.values()))
    cuda = torch.cuda.is_available()
    parameters: dict[str, Any] = {
        "base_model": str(model_path),
        "family": family.name,
        "rank": rank,
        "alpha": alpha or rank,
        "learning_rate": learning_rate,
        "seed": seed,
        "steps": steps,
        "num_frames": num_frames,
        "width": width,
        "height": height,
        "fps": family.default_fps,
        "target_modules": list(family.lora_target_modules),
        "optimizer": "AdamW",
        "weight_decay": WEIGHT_DECAY,
        "max_grad_norm": MAX_GRAD_NORM,
        "background_weight": float(background_weight),
        "camera_wording": camera_wording,
        "samples": len(samples),
        "dataset_fingerprint": dataset_fingerprint(samples),
        "device": "cuda" if cuda else "cpu",
        "base_dtype": "bfloat16" if cuda else "float32",
    }
    # Read the checkpoint before loading any model: a wrong folder should fail in milliseconds.
    resume = _read_checkpoint(Path(resume_from)) if resume_from is not None else None

    # 2. Prepare models.
    models = _prepare_models(model_path=model_path, family=family, cuda=cuda)
    parameters["flow_shift"] = models.flow_shift
    if resume is not None:
        _check_resumable(resume=resume, parameters=parameters, steps=steps)

    # 3. Trainable parameters.
    trainable = _prepare_trainable_parameters(models=models, family=family, rank=rank,
                                              alpha=parameters["alpha"], seed=seed)

    # 4. Dataset: latents and caption embeddings once, then the encoders leave memory.
    dataset = _prepare_dataset(models=models, family=family, samples=samples,
                               num_frames=num_frames, width=width, height=height,
                               background_weight=background_weight, image_moves=camera_move_words(camera_wording))
    parameters["masked_samples"] = sum(sample.loss_weight is not None for sample in dataset)
    models.transformer.to(models.device)

    # 5. Checkpointing: the optimizer, and where to start from.
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=WEIGHT_DECAY)
    start_step, losses = 0, []
    if resume is not None:
        start_step, losses = _load_checkpoint(resume=resume, models=models, optimizer=optimizer)
        parameters["resumed_from_step"] = start_step

    # 6. Train.
    models.transformer.train()
    for step in range(start_step + 1, steps + 1):
        loss = _train_step(models=models, dataset=dataset, trainable=trainable,
                           optimizer=optimizer, seed=seed, step=step)
        losses.append(loss)
        if checkpoint_every and step % checkpoint_every == 0:
            folder = _write_checkpoint(output_dir=output_dir, step=step, models=models, optimizer=optimizer,
                                       state={"format": CHECKPOINT_FORMAT, "step": step, "total_steps": steps,
                                              "losses": losses, "parameters": parameters})
            if on_checkpoint is not None:
                on_checkpoint(folder, step)
        if on_step is not None and on_step(step, steps, loss) is False:
            raise TrainingCancelled(step, steps)

    # 7. Save the LoRA where the caller expects it.
    lora_path = _save_lora_atomically(directory=output_dir, models=models)
    return TrainingResult(lora_path=lora_path, losses=list(losses), steps=steps, parameters=parameters)


# --- 1. Check inputs ------------------------------------------------------------------------


def _check_inputs(
    *, family: ModelFamily, samples: Sequence[TrainingSample], steps: int, rank: int, alpha: int | None,
    learning_rate: float, seed: int, checkpoint_every: int, background_weight: float,
) -> None:
    if family.name not in TRAINABLE_FAMILIES:
        raise ValueError(f"LoRA training supports the {', '.join(TRAINABLE_FAMILIES)} family; got {family.name}.")
    if not samples or not all(isinstance(s, TrainingSample) for s in samples):
        raise ValueError("samples must be a non-empty list of TrainingSample.")
    for name, value, low in (("steps", steps, 1), ("rank", rank, 1), ("seed", seed, 0),
                             ("checkpoint_every", checkpoint_every, 0)):
        if not _is_int(value) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
    if alpha is not None and (not _is_int(alpha) or alpha < 1):
        raise ValueError(f"alpha must be None (= rank) or an integer >= 1; got {alpha!r}.")
    if (not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool)
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise ValueError(f"learning_rate must be a finite number > 0; got {learning_rate!r}.")
    if (not isinstance(background_weight, (int, float)) or isinstance(background_weight, bool)
            or not 0.0 <= background_weight <= 1.0):
        raise ValueError(f"background_weight must be a number from 0 to 1; got {background_weight!r}.")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- 2. Prepare models ----------------------------------------------------------------------


def _prepare_models(*, model_path: Path, family: ModelFamily, cuda: bool) -> _Models:
    import diffusers

    device = torch.device("cuda" if cuda else "cpu")
    # bf16 halves the frozen base on GPU; the VAE stays float32 because its encoder is
    # numerically touchy and it runs once per sample only. CPU has no fast bf16 matmul.
    base_dtype = torch.bfloat16 if cuda else torch.float32
    pipeline_cls = getattr(diffusers, family.pipeline_class)
    pipe = pipeline_cls.from_pretrained(model_path, dtype={"default": base_dtype, "vae": torch.float32})
    for module in (pipe.transformer, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
        module.eval()
    scheduler = pipe.scheduler.config
    if scheduler.get("use_dynamic_shifting"):
        raise ValueError(f"{model_path}: a scheduler with use_dynamic_shifting is not supported; "
                         "training needs the fixed `shift` the pipeline samples with.")
    return _Models(pipeline_cls=pipeline_cls, pipe=pipe, transformer=pipe.transformer, device=device,
                   base_dtype=base_dtype, flow_shift=float(scheduler.get("shift", 1.0)),
                   num_train_timesteps=int(scheduler.get("num_train_timesteps", 1000)))


# --- 3. Trainable parameters ----------------------------------------------------------------


def _prepare_trainable_parameters(
    *, models: _Models, family: ModelFamily, rank: int, alpha: int, seed: int
) -> list[torch.nn.Parameter]:
    from peft import LoraConfig

    # lora_A starts from the global generator (lora_B starts at zero): seed it so the same seed
    # gives the same adapter. Done on CPU, before the move, so CPU and GPU runs start equal.
    torch.manual_seed(seed)
    models.transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True,
                   target_modules=list(family.lora_target_modules))
    )
    trainable = [p for p in models.transformer.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"No module of the transformer matches the LoRA targets {family.lora_target_modules}.")
    # Adam updates on a bf16 parameter round away most of a small step: keep the adapter float32.
    for p in trainable:
        p.data = p.data.float()
    return trainable


# --- 4. Dataset -----------------------------------------------------------------------------


def camera_move_words(camera_wording: str | None) -> dict[str, str] | None:
    """Preset key -> the words `camera_wording`'s prompts carry for it, for every move an image trains as."""
    if camera_wording is None:
        return None
    from generation.personalization import CAMERA_PRESETS

    words = {preset.key: preset.words_for(camera_wording) for preset in CAMERA_PRESETS}
    return {key: words[key] for key in IMAGE_MOVES}


def _prepare_dataset(
    *, models: _Models, family: ModelFamily, samples: Sequence[TrainingSample], num_frames: int, width: int,
    height: int, background_weight: float, image_moves: dict[str, str] | None,
) -> list[EncodedSample]:
    pipe, device = models.pipe, models.device
    vae = pipe.vae.to(device)
    pipe.text_encoder.to(device)
    z_dim = vae.config.z_dim
    # The pipeline decodes with z * std + mean, so the transformer works on (z - mean) / std.
    latents_mean = torch.tensor(vae.config.latents_mean, device=device).view(1, z_dim, 1, 1, 1)
    latents_std = torch.tensor(vae.config.latents_std, device=device).view(1, z_dim, 1, 1, 1)

    def encode_video(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = vae.encode(pixels.unsqueeze(0).to(device, vae.dtype)).latent_dist
        return (posterior.mean.float() - latents_mean) / latents_std, posterior.std.float() / latents_std

    def encode_text(caption: str) -> torch.Tensor:
        # The pipeline's own encoder at the checkpoint's text window: the adapter must see the
        # same padded embeddings at training and at generation.
        embeds, _ = pipe.encode_prompt(prompt=caption, do_classifier_free_guidance=False,
                                       max_sequence_length=text_window(family, pipe.tokenizer),
                                       device=device, dtype=models.base_dtype)
        return embeds

    with torch.no_grad():
        dataset = encode_samples(samples=samples, num_frames=num_frames, width=width, height=height,
                                 fps=family.default_fps, encode_video=encode_video, encode_text=encode_text,
                                 background_weight=background_weight, image_moves=image_moves)
    # The text encoder is the largest frozen part (UMT5-XXL: about 11 GB in bf16): free it now.
    models.pipe = None
    del pipe, vae
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return dataset


# --- 5. Checkpointing -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Checkpoint:
    folder: Path
    state: dict[str, Any]


def _read_checkpoint(folder: Path) -> _Checkpoint:
    needed = (LORA_WEIGHT_NAME, OPTIMIZER_NAME, RNG_NAME, STATE_NAME)
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"resume_from={folder} is not a training checkpoint: it lacks {', '.join(missing)} "
                         f"(a checkpoint folder holds {', '.join(needed)}).")
    state = json.loads((folder / STATE_NAME).read_text(encoding="utf-8"))
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{folder} has checkpoint format {state.get('format')!r}; this trainer reads "
                         f"format {CHECKPOINT_FORMAT}.")
    return _Checkpoint(folder=folder, state=state)


def _check_resumable(*, resume: _Checkpoint, parameters: dict[str, Any], steps: int) -> None:
    saved = resume.state["parameters"]
    different = [f"{key}: checkpoint {saved.get(key)!r}, now {parameters[key]!r}"
                 for key in _RESUME_MUST_MATCH if saved.get(key) != parameters[key]]
    if different:
        raise ValueError(f"Cannot resume from {resume.folder}: the run differs ({'; '.join(different)}).")
    if resume.state["step"] > steps:
        raise ValueError(f"Cannot resume from {resume.folder}: it is at step {resume.state['step']}, "
                         f"beyond steps={steps}.")


def _load_checkpoint(
    *, resume: _Checkpoint, models: _Models, optimizer: torch.optim.Optimizer
) -> tuple[int, list[float]]:
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    prefix = "transformer."
    weights = {key[len(prefix):]: value for key, value in load_file(resume.folder / LORA_WEIGHT_NAME).items()
               if key.startswith(prefix)}
    result = set_peft_model_state_dict(models.transformer, weights, adapter_name="default")
    missing = [key for key in result.missing_keys if "lora_" in key]
    if result.unexpected_keys or missing:
        raise ValueError(f"{resume.folder}: LoRA weights do not fit this transformer "
                         f"(unexpected {result.unexpected_keys[:3]}, missing {missing[:3]}).")
    # load_state_dict casts moments to each parameter's device and dtype.
    optimizer.load_state_dict(torch.load(resume.folder / OPTIMIZER_NAME, map_location="cpu", weights_only=True))
    rng = torch.load(resume.folder / RNG_NAME, map_location="cpu", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and models.device.type == "cuda":
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(resume.state["step"]), [float(x) for x in resume.state["losses"]]


def _write_checkpoint(
    *, output_dir: Path, step: int, models: _Models, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> Path:
    """Write checkpoints/step-N/ so that it is either complete or absent, even if killed midway."""
    final = output_dir / CHECKPOINTS_DIR / f"step-{step}"
    # A rerun over the same output folder replaces the step's folder whole, never mixes two runs.
    with staged_folder(final) as temporary:
        _save_lora(directory=temporary, models=models)
        torch.save(optimizer.state_dict(), temporary / OPTIMIZER_NAME)
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, temporary / RNG_NAME)
        (temporary / STATE_NAME).write_text(json.dumps(state, indent=1), encoding="utf-8")
    return final


def _save_lora(*, directory: Path, models: _Models, weight_name: str = LORA_WEIGHT_NAME) -> Path:
    from peft.utils import get_peft_model_state_dict

    weights = {key: value.detach().to("cpu", torch.float32).contiguous()
               for key, value in get_peft_model_state_dict(models.transformer).items()}
    # The PEFT config as metadata lets diffusers rebuild the exact LoraConfig (rank, alpha,
    # targets) instead of guessing it from tensor shapes.
    metadata = models.transformer.peft_config["default"].to_dict()
    models.pipeline_cls.save_lora_weights(directory, transformer_lora_layers=weights,
                                          transformer_lora_adapter_metadata=metadata,
                                          weight_name=weight_name)
    return directory / weight_name


def _save_lora_atomically(*, directory: Path, models: _Models) -> Path:
    target = directory / LORA_WEIGHT_NAME
    with staged_file(target) as staging:
        _save_lora(directory=directory, models=models, weight_name=staging.name)
    return target


# --- 6. Train -------------------------------------------------------------------------------


def _step_generator(seed: int, purpose: str, index: int) -> torch.Generator:
    """A CPU generator for one (seed, purpose, index): the same draws on any device, after any resume."""
    digest = hashlib.sha256(f"{seed}:{purpose}:{index}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _sample_index(*, seed: int, step: int, count: int) -> int:
    # Each epoch is a fresh permutation, so every sample is seen once per `count` steps.
    epoch, position = divmod(step - 1, count)
    return int(torch.randperm(count, generator=_step_generator(seed, "epoch", epoch))[position])


def _train_step(
    *, models: _Models, dataset: Sequence[EncodedSample], trainable: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer, seed: int, step: int,
) -> float:
    device = models.device
    sample = dataset[_sample_index(seed=seed, step=step, count=len(dataset))]
    generator = _step_generator(seed, "step", step)
    shape = sample.latent_mean.shape

    # Flow matching (generation.training.flow), every draw from this step's own generator.
    sigma = sample_sigmas(1, shift=models.flow_shift, generator=generator).to(device)
    noise = torch.randn(shape, generator=generator).to(device)
    posterior_noise = torch.randn(shape, generator=generator).to(device)

    x0 = sample.latent_mean + sample.latent_std * posterior_noise
    noisy, target = noisy_and_target(x0, noise, sigma)
    timestep = sigma * models.num_train_timesteps

    prediction = models.transformer(
        hidden_states=noisy.to(models.base_dtype),
        timestep=timestep,
        encoder_hidden_states=sample.prompt_embeds,
        return_dict=False,
    )[0]
    loss = flow_loss(prediction, target, sample.loss_weight)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"LoRA training diverged at step {step}: loss is {value}. "
                                 "Lower learning_rate.")
    return value
