"""Edits: a campaign's start image, and clips remade from a clip (re-scene, extend, loop, connect).

The web side validates a request (``generation.editing`` imports only numpy, so its rules are
shared without torch) and creates a Job, enqueued after commit: ``EDIT_CLIP`` for one clip,
``RESCENE_CAMPAIGN`` for an approved clip re-scened into every segment of its campaign. The gpu
worker runs them through ``job_run`` like generation: idempotent per (job, segment, variant), a
redelivered job skips the clips it already made, a cancelled one removes every clip and file it
made, and a slot's files are stored before its row is written and removed again when that fails.

Each new clip is ``pending_review`` with ``parent`` = the source clip, ``edit`` = {"kind", ...the
request's fields}, ``conditioning`` = the engine path that made it, and ``mask`` = the keep-mask as
one grayscale PNG: the output's frames side by side, left to right in time, 255 where the source's
pixels were kept.
"""
import hashlib
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction

from campaigns import selectors
from campaigns.errors import Conflict
from campaigns.models import Brand, BrandAsset, Campaign, Clip, Job, Segment
from generation.editing import EDIT_KINDS, EXTEND_DIRECTIONS, validate_keep_box
from generation.limits import MAX_EDIT_PROMPT_CHARS, MAX_FRAMES, MAX_STEPS, MAX_VARIANTS

from .campaigns import model_spec
from .fleet import compute_budget_check
from .jobs import JobCancelled, JobHandle, JobLost, job_create, job_lock_mine
from .webhooks import webhook_clip_event

logger = logging.getLogger(__name__)


# --- Image-to-video: the campaign's start image ------------------------------------------------

def start_image_for_brand(*, brand: Brand, start_image) -> BrandAsset | None:
    """The image asset a campaign starts every clip from; 400 naming `start_image` otherwise."""
    if start_image is None or start_image == "":
        return None
    if isinstance(start_image, BrandAsset):
        start_image = start_image.pk
    if isinstance(start_image, bool) or not isinstance(start_image, int) or start_image < 1:
        raise ValidationError({"start_image": f"start_image must be the id of an image asset of this campaign's "
                                              f"brand; got {start_image!r}."})
    asset = BrandAsset.objects.filter(organization_id=brand.organization_id, brand=brand, pk=start_image).first()
    if asset is None:
        raise ValidationError({"start_image": f"asset {start_image} is not an asset of brand '{brand.name}'; the "
                                              "start image must be one of the campaign brand's image assets."})
    if asset.kind != BrandAsset.Kind.IMAGE:
        raise ValidationError({"start_image": f"asset {start_image} is a {asset.kind}; the start image must be an "
                                              "image asset (PNG, JPEG or WebP)."})
    return asset


def asset_image_array(asset: BrandAsset) -> np.ndarray:
    """The asset's pixels, uint8 (H, W, 3), or (H, W, 4) when the image has real transparency."""
    from PIL import Image

    with default_storage.open(asset.file.name, "rb") as fh:
        data = fh.read()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgba = np.asarray(image.convert("RGBA"))
    # Only transparency that is there counts: an opaque alpha channel would only cost the engine a matte.
    return rgba if int(rgba[..., 3].min()) < 255 else np.ascontiguousarray(rgba[..., :3])


# --- Requests ----------------------------------------------------------------------------------

def _whole(value, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError({field: f"{field} must be a whole number from {low} to {high}; got {value!r}."})
    return value


def _keep_box(value) -> list[float]:
    try:
        return list(validate_keep_box(value))
    except ValueError as exc:
        raise ValidationError({"keep_box": str(exc)}) from None


def _steps(steps) -> int:
    spec = model_spec()
    if steps is None:
        return settings.GENERATION_STEPS or spec.defaults["steps"]
    return _whole(steps, field="steps", low=1, high=MAX_STEPS)


def _clean_prompt(prompt) -> str | None:
    if prompt is None:
        return None
    if not isinstance(prompt, str):
        raise ValidationError({"prompt": "prompt must be text."})
    prompt = prompt.strip()
    if len(prompt) > MAX_EDIT_PROMPT_CHARS:
        raise ValidationError({"prompt": f"prompt must be at most {MAX_EDIT_PROMPT_CHARS} characters."})
    return prompt or None


def _refuse_archived(campaign: Campaign) -> None:
    if campaign.status == Campaign.Status.ARCHIVED:
        raise Conflict("this campaign is archived; archived campaigns cannot make clips.", code="campaign_archived")


def clip_edit_clean(*, clip: Clip, kind, keep_box=None, prompt=None, segment=None, frames=None, direction=None,
                    other_clip=None) -> dict:
    """The edit as stored on the job and the new clips: {"kind", ...the request's fields}.

    Refusals name the field: an unknown kind, a box outside 0..1 or empty, a segment of another
    campaign, frames out of range, an unknown direction, an other_clip of another organization or size.
    """
    if kind not in EDIT_KINDS:
        raise ValidationError({"kind": f"kind must be one of {', '.join(EDIT_KINDS)}; got {kind!r}."})
    edit: dict = {"kind": kind}
    prompt = _clean_prompt(prompt)
    if kind == "rescene":
        edit["keep_box"] = _keep_box(keep_box)
        if segment is not None:
            if isinstance(segment, bool) or not isinstance(segment, int) or not Segment.objects.filter(
                    organization_id=clip.organization_id, campaign_id=clip.campaign_id, pk=segment).exists():
                raise ValidationError({"segment": f"segment {segment!r} is not a segment of this clip's campaign."})
            edit["segment"] = segment
        elif prompt is None:
            message = "rescene needs a prompt for the new scene, or a segment whose setting it takes."
            raise ValidationError({"prompt": message, "segment": message})
    elif kind == "extend":
        edit["frames"] = _whole(frames, field="frames", low=1, high=MAX_FRAMES)
        direction = "forward" if direction is None else direction
        if direction not in EXTEND_DIRECTIONS:
            raise ValidationError({"direction": f"direction must be one of {', '.join(EXTEND_DIRECTIONS)}; "
                                                f"got {direction!r}."})
        edit["direction"] = direction
    elif kind == "connect":
        other = None
        if not isinstance(other_clip, bool) and isinstance(other_clip, int):
            other = Clip.objects.filter(organization_id=clip.organization_id, pk=other_clip).first()
        if other is None:
            raise ValidationError({"other_clip": f"other_clip {other_clip!r} is not a clip of this organization."})
        if (other.width, other.height) != (clip.width, clip.height):
            raise ValidationError({"other_clip": f"other_clip {other.pk} is {other.width}x{other.height}; it must "
                                                 f"have this clip's size, {clip.width}x{clip.height}."})
        edit["other_clip"] = other.pk
    if prompt is not None:
        edit["prompt"] = prompt
    return edit


@transaction.atomic
def clip_edit(*, clip: Clip, kind, keep_box=None, prompt=None, segment=None, frames=None, direction=None,
              other_clip=None, variants=1, steps=None, user=None, enqueue: bool = True) -> Job:
    """Queue an edit of one clip: `variants` new clips, each pending review, with `parent` = clip."""
    edit = clip_edit_clean(clip=clip, kind=kind, keep_box=keep_box, prompt=prompt, segment=segment, frames=frames,
                           direction=direction, other_clip=other_clip)
    variants = _whole(variants, field="variants", low=1, high=MAX_VARIANTS)
    steps = _steps(steps)
    clip = Clip.objects.select_for_update(of=("self",)).select_related("campaign__brand").get(pk=clip.pk)
    if clip.status == Clip.Status.REJECTED:
        raise Conflict(f"clip {clip.pk} was rejected; rejected clips cannot be edited.", code="clip_rejected",
                       details={"status": clip.status})
    _refuse_archived(clip.campaign)
    # An extension or a bridge makes a longer clip than its parent: budget the longest output.
    frames_out = clip.num_frames * (2 if edit["kind"] in ("connect", "loop") else 1) + int(edit.get("frames") or 0)
    compute_budget_check(width=clip.width, height=clip.height, num_frames=frames_out, clips=variants,
                         batch=variants, steps=steps)
    return job_create(
        organization=clip.campaign.organization, kind=Job.Kind.EDIT_CLIP, campaign=clip.campaign,
        brand=clip.campaign.brand, user=user, enqueue=enqueue,
        params={"clip": clip.pk, "edit": edit, "variants": variants, "steps": steps,
                "guidance": model_spec().defaults["guidance"]},
    )


@transaction.atomic
def campaign_rescene(*, campaign: Campaign, clip, keep_box, variants_per_segment=1, steps=None, user=None,
                     enqueue: bool = True) -> Job:
    """Queue, for every segment of the campaign, clips that keep the product in `keep_box` of an
    approved clip of this campaign and set the rest in the segment's setting."""
    clip_id = clip.pk if isinstance(clip, Clip) else clip
    source = None
    if not isinstance(clip_id, bool) and isinstance(clip_id, int):
        source = Clip.objects.select_for_update().filter(
            organization_id=campaign.organization_id, campaign=campaign, pk=clip_id).first()
    if source is None:
        raise ValidationError({"clip": f"clip {clip_id!r} is not a clip of this campaign."})
    box = _keep_box(keep_box)
    variants = _whole(variants_per_segment, field="variants_per_segment", low=1, high=MAX_VARIANTS)
    steps = _steps(steps)
    if source.status != Clip.Status.APPROVED:
        raise Conflict(f"clip {source.pk} is {source.status}; only an approved clip is re-scened for every segment.",
                       code="clip_not_approved", details={"status": source.status})
    _refuse_archived(campaign)
    if not campaign.segments.exists():
        raise Conflict("this campaign's segments are not ready yet; try again when its segmentation job has "
                       "finished.", code="segments_not_ready")
    compute_budget_check(width=source.width, height=source.height, num_frames=source.num_frames,
                         clips=campaign.segments.count() * variants, batch=variants, steps=steps)
    return job_create(
        organization=campaign.organization, kind=Job.Kind.RESCENE_CAMPAIGN, campaign=campaign, brand=campaign.brand,
        user=user, enqueue=enqueue,
        params={"clip": source.pk, "keep_box": box, "variants_per_segment": variants, "steps": steps,
                "guidance": model_spec().defaults["guidance"]},
    )


def clip_edit_jobs(*, clip: Clip):
    """The edit and re-scene jobs made from one clip, newest first."""
    return selectors.job_list(organization=clip.campaign.organization).filter(
        kind__in=[Job.Kind.EDIT_CLIP, Job.Kind.RESCENE_CAMPAIGN], params__clip=clip.pk)


# --- The worker side ---------------------------------------------------------------------------

@dataclass
class _Batch:
    """One engine call: every variant of one edit into one segment."""

    segment: Segment | None
    edit: dict
    prompt: Callable[[], tuple[str, str]]  # (prompt, negative prompt), built when the batch runs
    make: Callable[..., list]  # make(engine, **common) -> [EditOutput] in seed order


def edit_seed(*, clip_id: int, edit: dict, variant: int) -> int:
    """A seed fixed by the source, the edit and the variant: the same request reproduces its clips."""
    key = f"edit:{clip_id}:{json.dumps(edit, sort_keys=True)}:{variant}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _file_names(job: Job, segment: Segment | None, variant: int) -> tuple[str, str, str]:
    stem = (f"org-{job.organization_id}/campaigns/{job.campaign_id}/clips/"
            f"job{job.pk}-seg{segment.pk if segment else 0}-v{variant}")
    return f"{stem}.mp4", f"{stem}.jpg", f"{stem}-mask.png"


def stored_frames(clip: Clip) -> np.ndarray:
    """A stored clip's frames, uint8 (F, H, W, 3)."""
    from generation.media import read_video

    from .generation import _scratch

    with tempfile.TemporaryDirectory(dir=_scratch()) as tmp:
        local = Path(tmp) / "source.mp4"
        with default_storage.open(clip.video.name, "rb") as source, open(local, "wb") as out:
            out.write(source.read())
        return read_video(local)


def _delete_quietly(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # the original error matters more; a leftover is logged
            logger.exception("could not remove %s after a failed edit", name)


def _edit_run(handle: JobHandle, *, source: Clip, batches: list[_Batch], variants: int) -> dict:
    """Run each batch's missing variants, store MP4 + poster + mask, record the clips."""
    from generation.engine import GenerationCancelled
    from generation.media import write_mask_strip, write_mp4, write_poster

    from .generation import _remove_job_output, _scratch, _store, lora_local_file, worker_engine

    job = handle.job
    campaign = source.campaign
    steps, guidance = int(job.params["steps"]), float(job.params["guidance"])
    lora = selectors.lora_latest_for_brand(brand=campaign.brand)
    spec = model_spec()
    made = 0
    try:
        # 1. The model (kept by the worker process) and the source clip's frames.
        handle.progress(0.01, "loading the model", force=True)
        engine = worker_engine()
        adapter = (f"lora-{lora.pk}", str(lora_local_file(lora))) if lora else None
        frames = None

        for index, batch in enumerate(batches):
            done = set(Clip.objects.filter(job=job, segment=batch.segment).values_list("variant", flat=True))
            todo = [v for v in range(variants) if v not in done]
            if not todo:
                continue
            if frames is None:
                frames = stored_frames(source)
            prompt, negative = batch.prompt()
            seeds = [edit_seed(clip_id=source.pk, edit=batch.edit, variant=v) for v in todo]
            where = f"'{batch.segment.name}'" if batch.segment else f"clip {source.pk}"

            # 2. Every variant of this batch in one engine call.
            def on_step(step: int, of: int, index=index, where=where) -> bool:
                return handle.keep_going(0.02 + 0.93 * (index + step / max(of, 1)) / len(batches),
                                         f"{batch.edit['kind']} {index + 1}/{len(batches)} {where}: step {step}/{of}")

            started = time.perf_counter()
            try:
                outputs = batch.make(engine, clip=frames, prompt=prompt, negative_prompt=negative, seeds=seeds,
                                     steps=steps, guidance=guidance, lora=adapter, on_step=on_step)
            except GenerationCancelled:
                raise JobCancelled(f"job {job.pk} was cancelled")
            if len(outputs) != len(seeds):
                raise RuntimeError(f"the engine returned {len(outputs)} clips for {len(seeds)} seeds.")
            seconds = (time.perf_counter() - started) / len(seeds)

            # 3. Encode and store the three files, then write the row; a slot that fails removes its files.
            with tempfile.TemporaryDirectory(dir=_scratch()) as tmp:
                for variant, seed, output in zip(todo, seeds, outputs):
                    mp4, jpg, png = (Path(tmp) / f"v{variant}{suffix}" for suffix in (".mp4", ".jpg", "-mask.png"))
                    write_mp4(output.frames, mp4, fps=source.fps)
                    write_poster(output.frames, jpg)
                    write_mask_strip(output.mask, png)
                    num_frames, height, width = output.frames.shape[:3]
                    stored: list[str] = []
                    try:
                        for local, name in zip((mp4, jpg, png), _file_names(job, batch.segment, variant)):
                            stored.append(_store(local, name))
                        with transaction.atomic():
                            job_lock_mine(job=job)
                            clip = Clip.objects.create(
                                organization_id=job.organization_id, campaign=campaign, segment=batch.segment,
                                profile_id=source.profile_id, job=job, variant=variant, prompt=prompt,
                                negative_prompt=negative, seed=seed, model=spec.name, lora=lora,
                                lora_version=lora.version if lora else None, steps=steps, guidance=guidance,
                                num_frames=num_frames, width=width, height=height, fps=source.fps,
                                video=stored[0], poster=stored[1], mask=stored[2], seconds=round(seconds, 3),
                                parent=source, edit=batch.edit, conditioning=output.conditioning,
                            )
                            webhook_clip_event(clip=clip, type="clip.pending_review")
                    except JobLost:
                        raise  # another worker's attempt owns these (fixed) names now
                    except BaseException:
                        _delete_quietly(stored)
                        raise
                    made += 1
    except JobCancelled:
        _remove_job_output(job)
        raise
    return {"clips": Clip.objects.filter(job=job).count(), "made_this_attempt": made,
            "lora_version": lora.version if lora else None}


def _maker(edit: dict, *, other: Callable[[], np.ndarray] | None = None) -> Callable[..., list]:
    """The engine function for one edit, with the edit's own arguments bound."""
    from generation import editing

    kind = edit["kind"]
    if kind == "rescene":
        return lambda engine, **common: editing.rescene(engine, keep_box=tuple(edit["keep_box"]), **common)
    if kind == "extend":
        return lambda engine, **common: editing.extend(engine, frames=edit["frames"], direction=edit["direction"],
                                                       **common)
    if kind == "loop":
        return lambda engine, **common: editing.loop(engine, **common)
    if kind == "connect":
        return lambda engine, **common: editing.connect(engine, other=other(), **common)
    raise ValueError(f"unknown edit kind {kind!r}")


def clip_edit_run(handle: JobHandle) -> dict:
    """The work of an EDIT_CLIP job."""
    from .generation import segment_prompt
    from .segments import segment_settings_fill

    job = handle.job
    source = Clip.objects.select_related("campaign__brand", "segment").get(
        organization_id=job.organization_id, pk=job.params["clip"])
    edit = job.params["edit"]
    segment = (Segment.objects.get(organization_id=job.organization_id, pk=edit["segment"])
               if edit.get("segment") else source.segment)

    def prompt() -> tuple[str, str]:
        # Rescene into a segment takes the platform's prompt for it (its setting); any other edit
        # continues the source's scene unless the request gave a prompt for the new material.
        if edit.get("prompt"):
            return edit["prompt"], source.negative_prompt
        if edit["kind"] == "rescene":
            segment_settings_fill(segments=[segment])
            return segment_prompt(campaign=source.campaign, segment=segment)
        return source.prompt, source.negative_prompt

    other = None
    if edit["kind"] == "connect":
        def other() -> np.ndarray:
            return stored_frames(Clip.objects.get(organization_id=job.organization_id, pk=edit["other_clip"]))

    batch = _Batch(segment=segment, edit=edit, prompt=prompt, make=_maker(edit, other=other))
    return _edit_run(handle, source=source, batches=[batch], variants=int(job.params["variants"]))


def campaign_rescene_run(handle: JobHandle) -> dict:
    """The work of a RESCENE_CAMPAIGN job: one batch per segment, in that segment's setting."""
    from .generation import segment_prompt
    from .segments import segment_settings_fill

    job = handle.job
    campaign = Campaign.objects.select_related("brand").get(pk=job.campaign_id)
    source = Clip.objects.select_related("campaign__brand").get(campaign=campaign, pk=job.params["clip"])
    segments = list(selectors.segment_list_for_campaign(campaign=campaign))
    segment_settings_fill(segments=segments)  # a segment the cpu job has not reached yet gets its suggestion now
    batches = []
    for segment in segments:
        edit = {"kind": "rescene", "keep_box": job.params["keep_box"], "segment": segment.pk}
        batches.append(_Batch(segment=segment, edit=edit, make=_maker(edit),
                              prompt=lambda segment=segment: segment_prompt(campaign=campaign, segment=segment)))
    return _edit_run(handle, source=source, batches=batches, variants=int(job.params["variants_per_segment"]))
