"""Brand style training: queue a LoRA run on the brand's assets, and run it on a gpu worker.

Checkpoints go to storage as training goes; the job records the last complete one only after its
files are stored, so a job redelivered after its worker died resumes from there, not step 0.
"""
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from campaigns import selectors
from campaigns.errors import Conflict
from campaigns.files import storage_fetch
from campaigns.models import Brand, BrandAsset, Job, LoraAdapter
from generation.limits import TRAINING_LIMITS
from generation.tiny_model import TINY_LORA

from .campaigns import model_spec
from .jobs import JobCancelled, JobHandle, job_create

logger = logging.getLogger(__name__)

# Real checkpoints want gentler, longer runs than the tiny models (generation.tiny_model.TINY_LORA).
REAL_TRAINING = {"steps": 1500, "rank": 32, "learning_rate": 1e-4}
# Training clips for real checkpoints: short and small enough for a brand's look, cheap enough
# for any GPU. The project's own checkpoints train at the size they generate at.
REAL_SIZE = {"num_frames": 17, "width": 480, "height": 272}


def training_size() -> dict:
    """num_frames, width and height for the configured model's LoRA runs."""
    spec = model_spec()
    if spec.is_tiny:
        return {key: spec.defaults[key] for key in ("num_frames", "width", "height")}
    return REAL_SIZE


def _check(name: str, value, kind: type):
    low, high = TRAINING_LIMITS[name]
    ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    if not ok or not low <= value <= high:
        raise ValidationError({name: f"{name} must be a {'number' if kind is float else 'whole number'} "
                                     f"from {low:g} to {high:g}; got {value!r}."})
    return kind(value)


@transaction.atomic
def brand_train(*, brand: Brand, steps: int | None = None, rank: int | None = None,
                learning_rate: float | None = None, user=None, enqueue: bool = True) -> Job:
    """Queue a LoRA training run on the brand's assets; a new LoraAdapter version records it."""
    defaults = TINY_LORA if model_spec().is_tiny else REAL_TRAINING
    params = {
        "steps": _check("steps", defaults["steps"] if steps is None else steps, int),
        "rank": _check("rank", defaults["rank"] if rank is None else rank, int),
        "learning_rate": _check("learning_rate", defaults["learning_rate"] if learning_rate is None else learning_rate, float),
        # Fixed, so that a rerun on the same assets reproduces the same weights.
        "seed": 0,
    }
    brand = Brand.objects.select_for_update().get(pk=brand.pk)
    # The run learns from the assets as they are now: a retry after a crash must see the same
    # dataset to resume from its checkpoint.
    # Only ready assets: a clip still being checked (or that failed its check) is left out.
    assets = selectors.asset_list_for_brand(brand=brand)
    params["asset_ids"] = list(assets.filter(status=BrandAsset.Status.READY).values_list("pk", flat=True))
    if not params["asset_ids"]:
        checking = assets.filter(status=BrandAsset.Status.PROCESSING).count()
        if checking:
            raise Conflict(f"this brand's {checking} clip(s) are still being checked and it has no other ready "
                           "assets; train when they are ready (seconds to a minute).", code="assets_processing",
                           details={"processing": checking})
        raise Conflict("this brand has no assets to learn from; upload images or clips first.", code="no_assets")
    running = brand.jobs.filter(kind=Job.Kind.TRAIN_LORA, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).first()
    if running:
        raise Conflict(f"training job {running.pk} for this brand is still {running.status}; wait or cancel it.",
                       code="already_training", details={"job": running.pk})
    version = (brand.loras.aggregate(v=Max("version"))["v"] or 0) + 1
    job = job_create(organization=brand.organization, kind=Job.Kind.TRAIN_LORA, brand=brand, user=user,
                     params=params, enqueue=enqueue)
    LoraAdapter.objects.create(organization=brand.organization, brand=brand, version=version, job=job,
                               base_model=settings.GENERATION_MODEL, parameters=params)
    return job


def _prefix(lora: LoraAdapter) -> str:
    return f"org-{lora.organization_id}/brands/{lora.brand_id}/loras/v{lora.version}-job{lora.job_id}"


def _upload_folder(folder: Path, prefix: str) -> list[str]:
    names = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f"{prefix}/{path.relative_to(folder).as_posix()}"
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(path, "rb") as fh:
            names.append(default_storage.save(name, File(fh, name=path.name)))
    return names


def _delete_files(names: list[str], keep: list[str] = ()) -> None:
    for name in set(names) - set(keep):
        default_storage.delete(name)


def _stored_files(folder: str) -> list[str]:
    """Every file stored below ``folder`` (none when it does not exist)."""
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    return [f"{folder}/{name}" for name in files] + [f for sub in folders for f in _stored_files(f"{folder}/{sub}")]


def _delete_checkpoints(prefix: str, keep: list[str] = ()) -> None:
    """Every stored checkpoint of this run but ``keep``, as storage lists them rather than as the
    job recorded them: a worker that died between recording a checkpoint and deleting the one
    before it leaves that one behind otherwise."""
    _delete_files(_stored_files(f"{prefix}/checkpoints"), keep=keep)


def _download(names: list[str], prefix: str, folder: Path) -> Path:
    for name in names:
        storage_fetch(name, folder / name[len(prefix) + 1:])
    return folder


def _samples(brand: Brand, folder: Path, asset_ids: list[int] | None = None) -> list:
    from generation.training import TrainingSample
    from generation.training.schema import asset_caption

    samples = []
    folder.mkdir(parents=True, exist_ok=True)
    assets = selectors.asset_list_for_brand(brand=brand)
    if asset_ids is not None:
        assets = assets.filter(pk__in=asset_ids)
    for asset in assets:
        local = folder / Path(asset.file.name).name
        if not local.exists():
            storage_fetch(asset.file.name, local)
        caption = asset_caption(trigger_token=brand.trigger_token, caption=asset.caption,
                                style_notes=brand.style_notes, brand_name=brand.name)
        samples.append(TrainingSample(path=local, kind=asset.kind, caption=caption))
    return samples


def lora_train_run(handle: JobHandle) -> dict:
    """The work of a TRAIN_LORA job: train, checkpoint to storage, store the LoRA file."""
    from generation.training import TrainingCancelled, train_lora

    from .generation import local_model_path

    job = handle.job
    lora = LoraAdapter.objects.select_related("brand").get(job=job)
    brand = lora.brand
    params = job.params
    work = Path(settings.WORK_DIR) / "training" / f"job-{job.pk}"
    prefix = _prefix(lora)

    # 1. Resume from the last checkpoint that reached storage, if an earlier attempt left one.
    resume_from = None
    checkpoint = (job.result or {}).get("checkpoint")
    if checkpoint:
        shutil.rmtree(work / "resume", ignore_errors=True)
        resume_from = _download(checkpoint["files"], checkpoint["prefix"], work / "resume" / f"step-{checkpoint['step']}")
        handle.progress(checkpoint["step"] / params["steps"], f"resuming from step {checkpoint['step']}", force=True)
    else:
        handle.progress(0.0, "preparing the dataset", force=True)

    def on_step(step: int, total: int, loss: float) -> bool:
        return handle.keep_going(step / total, f"step {step}/{total} loss {loss:.4f}",
                                 data={"step": step, "total": total, "loss": round(float(loss), 6)})

    def on_checkpoint(path: Path, step: int) -> None:
        ckpt_prefix = f"{prefix}/checkpoints/step-{step}"
        files = _upload_folder(path, ckpt_prefix)
        # Recorded only once every file is stored: a half-uploaded checkpoint is never resumed from.
        stored = Job.objects.get(pk=job.pk).result or {}
        result = {**stored, "checkpoint": {"step": step, "prefix": ckpt_prefix, "files": files}}
        Job.objects.filter(pk=job.pk).update(result=result)
        job.result = result
        # Only the newest checkpoint is ever resumed from: the ones before it go.
        _delete_checkpoints(prefix, keep=files)

    size = training_size()
    try:
        outcome = train_lora(
            model_path=local_model_path(), samples=_samples(brand, work / "assets", params.get("asset_ids")), output_dir=work / "run",
            steps=params["steps"], rank=params["rank"], learning_rate=params["learning_rate"],
            seed=params.get("seed", 0), checkpoint_every=settings.LORA_CHECKPOINT_EVERY, resume_from=resume_from,
            on_step=on_step, on_checkpoint=on_checkpoint, **size,
        )
    except TrainingCancelled:
        LoraAdapter.objects.filter(pk=lora.pk).update(status=LoraAdapter.Status.FAILED,
                                                      metrics={"error": "cancelled"})
        raise JobCancelled(f"job {job.pk} was cancelled")
    except Exception as exc:
        LoraAdapter.objects.filter(pk=lora.pk).update(status=LoraAdapter.Status.FAILED,
                                                      metrics={"error": f"{type(exc).__name__}: {exc}"})
        raise

    # 2. The LoRA in the standard diffusers format, beside its checkpoints.
    name = f"{prefix}/pytorch_lora_weights.safetensors"
    if default_storage.exists(name):
        default_storage.delete(name)
    with open(outcome.lora_path, "rb") as fh:
        stored = default_storage.save(name, File(fh, name=outcome.lora_path.name))
    losses = [round(float(x), 6) for x in outcome.losses]
    LoraAdapter.objects.filter(pk=lora.pk).update(
        status=LoraAdapter.Status.SUCCEEDED, file=stored,
        parameters={**lora.parameters, **outcome.parameters},
        metrics={"losses": losses, "final_loss": losses[-1] if losses else None,
                 "first_loss": losses[0] if losses else None},
    )
    shutil.rmtree(work, ignore_errors=True)
    # Done: the run's last checkpoint has nothing left to resume, and leaves no file behind.
    last = (job.result or {}).get("checkpoint") or {}
    _delete_checkpoints(prefix)
    return {"lora_version": lora.version, "final_loss": losses[-1] if losses else None,
            "last_checkpoint_step": last.get("step"),
            # The step an earlier attempt's checkpoint let this one start from (None: from step 0).
            "resumed_from_step": checkpoint["step"] if checkpoint else None}
