"""Clip generation, the worker side: campaign + segments (+ the brand's LoRA) → reviewed-ready clips.

Runs inside a gpu-queue task through ``job_run``. Segments still without a setting get one suggested
and the brief is expanded once (when a language model is configured); then for each segment it
builds the prompt once, generates every variant in one batched pipeline call, encodes MP4 + poster,
stores them, and records a Clip in ``pending_review``. A redelivered job skips the clips it already
made; a cancelled job removes every clip and file it made, so nothing half-done is left.
"""
import hashlib
import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from campaigns import selectors
from campaigns.files import storage_fetch
from campaigns.models import Campaign, Clip, Job, LoraAdapter, Segment
from generation.personalization import camera_preset, default_camera_for_brief

from .campaigns import model_spec
from .jobs import TRANSIENT_ERRORS, JobCancelled, JobHandle, job_lock_mine
from .segments import segment_settings_fill
from .webhooks import webhook_campaign_status_changed, webhook_clip_event

logger = logging.getLogger(__name__)


def clip_seed(*, campaign_id: int, segment_id: int, variant: int) -> int:
    """A seed fixed by where the clip sits, so a rerun of the same slot reproduces it."""
    digest = hashlib.sha256(f"{campaign_id}:{segment_id}:{variant}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def segment_prompt(*, campaign: Campaign, segment: Segment, brief: str | None = None) -> tuple[str, str]:
    """The prompt of one segment's clips: the brief (or its expansion), the segment's setting, the
    campaign's camera preset worded for the configured model (`ModelSpec.wording`), brand and audience words."""
    from generation.prompts import build_prompt

    brand = campaign.brand
    return build_prompt(
        brief=campaign.brief if brief is None else brief, brand_name=brand.name, style_notes=brand.style_notes,
        palette=brand.palette, trigger_token=brand.trigger_token, segment_attributes=segment.attributes,
        setting=segment.setting, camera=campaign_camera(campaign), family=model_spec().wording,
    )


def campaign_camera(campaign: Campaign) -> str:
    """The campaign's camera preset key: the marketer's, else the one its brief picks. The default
    follows the marketer's brief, not its expansion: expanding never moves the camera."""
    return campaign.camera or default_camera_for_brief(campaign.brief)


def job_brief(*, job: Job, campaign: Campaign) -> tuple[str, dict]:
    """The brief this generation job builds its prompts from, and the record of how it was made.

    With PROMPT_EXPANDER_URL set, the brief is expanded by one language-model call per job; the
    outcome is kept in the job's params, so a redelivered job reuses it and all its clips share
    one brief. Any failure falls back to the brief as written (see generation.prompt_expander).
    """
    from generation.prompt_expander import expand_brief

    cached = job.params.get("brief_expansion")
    if isinstance(cached, dict) and isinstance(cached.get("brief"), str) and cached["brief"]:
        return cached["brief"], {key: value for key, value in cached.items() if key != "brief"}
    expansion = expand_brief(campaign.brief, url=settings.PROMPT_EXPANDER_URL, model=settings.PROMPT_EXPANDER_MODEL,
                             timeout=settings.PROMPT_EXPANDER_TIMEOUT)
    record = expansion.as_record()
    if expansion.reason != "off":
        log = logger.info if expansion.used else logger.warning
        log("job %s: brief expansion %s (%.2f s)", job.pk, expansion.reason, expansion.seconds)
    job.params = {**job.params, "brief_expansion": {"brief": expansion.brief, **record}}
    Job.objects.filter(pk=job.pk).update(params=job.params)
    return expansion.brief, record


def local_model_path() -> Path:
    from generation.tiny_model import resolve_model_path

    return resolve_model_path(settings.GENERATION_MODEL, Path(settings.MODEL_CACHE_DIR))


def worker_engine():
    """This worker process's engine (loaded once, kept): the configured model and its options."""
    from generation.engine import get_engine

    return get_engine(local_model_path(), cpu_offload=settings.GENERATION_CPU_OFFLOAD,
                      vae_tiling=settings.GENERATION_VAE_TILING, max_adapters=settings.GENERATION_MAX_ADAPTERS)


def lora_local_file(lora: LoraAdapter) -> Path:
    """The adapter's file on this worker's disk, fetched from storage once.

    The name carries the row's creation time as well as its id and version: a work folder outlives
    a database (a demo's SQLite file deleted and made again, a test database), and the next
    database's adapter 1 v1 is another adapter, which must not be served the old one's weights."""
    created = lora.created_at.strftime("%Y%m%dT%H%M%S%f")
    target = Path(settings.WORK_DIR) / "loras" / f"lora-{lora.pk}-v{lora.version}-{created}.safetensors"
    if not target.exists():
        storage_fetch(lora.file.name, target)
    return target


def _file_names(job: Job, segment: Segment, variant: int) -> tuple[str, str]:
    stem = f"org-{job.organization_id}/campaigns/{job.campaign_id}/clips/job{job.pk}-seg{segment.pk}-v{variant}"
    return f"{stem}.mp4", f"{stem}.jpg"


def _store(local: Path, name: str) -> str:
    # Fixed names make a retried slot overwrite its own leftovers instead of piling up copies.
    if default_storage.exists(name):
        default_storage.delete(name)
    with open(local, "rb") as fh:
        return default_storage.save(name, File(fh, name=local.name))


def _remove_job_output(job: Job) -> None:
    for clip in Clip.objects.filter(job=job):
        for name in (clip.video.name, clip.poster.name, clip.mask.name):
            if name:
                default_storage.delete(name)
        clip.delete()


def campaign_generate_run(handle: JobHandle) -> dict:
    """The work of a GENERATE_CLIPS job."""
    from generation.engine import GenerationCancelled

    job = handle.job
    campaign = Campaign.objects.select_related("brand").get(pk=job.campaign_id)
    segments = list(selectors.segment_list_for_campaign(campaign=campaign))
    variants = int(job.params.get("variants_per_segment", 1))
    steps = int(job.params["steps"])
    guidance = float(job.params["guidance"])
    lora = selectors.lora_latest_for_brand(brand=campaign.brand)
    spec = model_spec()

    total = len(segments) * steps
    made = 0
    plan_record = None
    try:
        # 1. What the prompts need: a setting for every segment (suggested now for any the cpu job
        #    has not reached yet; the marketer's are kept) and the brief, expanded when configured.
        handle.progress(0.0, "preparing prompts", force=True)
        segment_settings_fill(segments=segments)
        brief, expansion = job_brief(job=job, campaign=campaign)
        handle.check_cancelled()

        # 2. The model: loaded once per worker process and kept.
        handle.progress(0.01, "loading the model", force=True)
        engine = worker_engine()
        adapter = (f"lora-{lora.pk}", str(lora_local_file(lora))) if lora else None
        start_image = _start_image(campaign)

        # The plan drives WanPipeline's transformer step by step; a VACE checkpoint (its transformer
        # needs the control input) generates through its own pipeline, clip by clip.
        plan_runs = engine.family.name == "wan" and not engine.family.native_condition
        # The camera guide steers text-to-video clips on Wan latents, in the plan or in each call below.
        motion = camera_preset(campaign_camera(campaign)).screen_motion if plan_runs and start_image is None else None
        if settings.GENERATION_PLAN and start_image is None and plan_runs:
            # 3. The campaign plan: every missing clip of every segment in one plan (generation/plan.py).
            made, plan_record = _generate_with_plan(
                handle, engine=engine, campaign=campaign, segments=segments, variants=variants, brief=brief,
                steps=steps, guidance=guidance, adapter=adapter, lora=lora, spec=spec, motion=motion)
            segments = []  # nothing left for the per-segment loop below

        steer = {"camera_motion": motion, "camera_guide": settings.GENERATION_CAMERA_GUIDE}
        for index, segment in enumerate(segments):
            done = set(Clip.objects.filter(job=job, segment=segment).values_list("variant", flat=True))
            todo = [v for v in range(variants) if v not in done]
            if not todo:
                continue
            prompt, negative = segment_prompt(campaign=campaign, segment=segment, brief=brief)
            seeds = [clip_seed(campaign_id=campaign.pk, segment_id=segment.pk, variant=v) for v in todo]

            # 3. All variants of this segment's prompt in one batched call.
            def on_step(step: int, of: int, index=index) -> bool:
                return handle.keep_going(0.02 + 0.93 * (index * steps + step) / total,
                                         f"segment {index + 1}/{len(segments)} '{segment.name}': step {step}/{of}")

            try:
                if start_image is None:
                    videos = engine.generate(
                        prompt=prompt, negative_prompt=negative, seeds=seeds, num_frames=campaign.num_frames,
                        width=campaign.width, height=campaign.height, steps=steps, guidance=guidance,
                        fps=campaign.fps, lora=adapter, on_step=on_step, **steer,
                    )
                    conditionings, seconds = ["text"] * len(seeds), engine.last_seconds / len(seeds)
                    guided = {"camera_guide": engine.last_camera_guide} if engine.last_camera_guide else None
                else:  # image-to-video: every clip's first frame is the campaign's start image
                    videos, conditionings, seconds = _image_to_video(
                        engine, image=start_image, prompt=prompt, negative_prompt=negative, seeds=seeds,
                        num_frames=campaign.num_frames, width=campaign.width, height=campaign.height,
                        steps=steps, guidance=guidance, fps=campaign.fps, lora=adapter, on_step=on_step,
                    )
                    guided = None
            except GenerationCancelled:
                raise JobCancelled(f"job {job.pk} was cancelled")

            # 4. Encode, store, record.
            with tempfile.TemporaryDirectory(dir=_scratch()) as tmp:
                for variant, seed, frames, conditioning in zip(todo, seeds, videos, conditionings):
                    _store_clip(job=job, campaign=campaign, segment=segment, variant=variant, frames=frames,
                                tmp=Path(tmp), prompt=prompt, negative=negative, seed=seed, steps=steps,
                                guidance=guidance, lora=lora, spec=spec, seconds=seconds, conditioning=conditioning,
                                plan=guided)
                    made += 1
    except JobCancelled:
        _remove_job_output(job)
        _settle(campaign)
        raise
    except TRANSIENT_ERRORS:
        raise  # retried: the campaign is still generating
    except Exception:
        _settle(campaign)  # failed for good: the clips made so far stay reviewable
        raise

    if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.GENERATING).update(
        status=Campaign.Status.IN_REVIEW, updated_at=timezone.now()
    ):
        webhook_campaign_status_changed(campaign=campaign, previous=Campaign.Status.GENERATING)
    clips = Clip.objects.filter(job=job).count()
    result = {"clips": clips, "made_this_attempt": made, "lora_version": lora.version if lora else None,
              "forward_calls_last_segment": engine.last_forward_calls, "prompt_expansion": expansion}
    if plan_record is not None:
        result["plan"] = plan_record
    return result


def plan_options():
    """The campaign plan's options from settings (README "Cost per clip: the campaign plan")."""
    from generation.plan import PlanOptions

    options = PlanOptions(micro_batch=settings.GENERATION_MICRO_BATCH,
                          prefix_fraction=settings.GENERATION_PREFIX_FRACTION, cache=settings.GENERATION_CACHE,
                          cache_threshold=settings.GENERATION_CACHE_THRESHOLD,
                          guidance_fraction=settings.GENERATION_GUIDANCE_FRACTION,
                          camera_guide=settings.GENERATION_CAMERA_GUIDE)
    options.check()
    if settings.GENERATION_PREFIX_PROMPT not in ("first", "common"):
        raise ValueError(f"GENERATION_PREFIX_PROMPT must be first or common; got {settings.GENERATION_PREFIX_PROMPT!r}.")
    return options


def plan_seed(*, campaign_id: int, segment_id: int, variant: int, shared: bool) -> int:
    """A clip's seed under the plan: with a shared prefix every segment's variant v starts from the
    same noise (the prefix is denoised once per seed), so the seed belongs to the variant alone."""
    return clip_seed(campaign_id=campaign_id, segment_id=0 if shared else segment_id, variant=variant)


def _generate_with_plan(handle: JobHandle, *, engine, campaign: Campaign, segments: list[Segment], variants: int,
                        brief: str, steps: int, guidance: float, adapter, lora, spec,
                        motion: tuple[float, float] | None) -> tuple[int, dict]:
    """Every missing (segment, variant) clip of the job through one campaign plan, stored as each is
    decoded; returns (clips made, what the plan saved). Slots already stored are skipped."""
    from generation.engine import GenerationCancelled
    from generation.plan import PlanItem, mag_ratios_for, run_plan

    job = handle.job
    options = plan_options()
    shared = options.prefix_steps(steps) > 0
    done = set(Clip.objects.filter(job=job).values_list("segment_id", "variant"))
    slots, items = [], []
    for segment in segments:
        prompt, negative = segment_prompt(campaign=campaign, segment=segment, brief=brief)
        for variant in range(variants):
            if (segment.pk, variant) in done:
                continue
            seed = plan_seed(campaign_id=campaign.pk, segment_id=segment.pk, variant=variant, shared=shared)
            slots.append((segment, variant))
            items.append(PlanItem(prompt=prompt, negative_prompt=negative, seed=seed, camera_motion=motion))
    if not items:
        return 0, {}
    prefix_prompts = None
    if shared and settings.GENERATION_PREFIX_PROMPT == "common":
        # The campaign's common words: the prompt of a segment without its own clauses and setting.
        common, _ = segment_prompt(campaign=campaign, segment=Segment(name="", attributes={}, setting=""), brief=brief)
        prefix_prompts = {item.seed: common for item in items}
    request = {"num_frames": campaign.num_frames, "width": campaign.width, "height": campaign.height,
               "steps": steps, "guidance": guidance}
    ratios = None
    if options.cache == "mag":
        ratios = mag_ratios_for(engine, prompt=items[0].prompt, negative_prompt=items[0].negative_prompt, **request)

    def on_step(step: int, of: int) -> bool:
        return handle.keep_going(0.02 + 0.93 * step / of, f"{len(items)} clips, one plan: step {step}/{of}")

    made = 0
    with tempfile.TemporaryDirectory(dir=_scratch()) as tmp:
        def on_clip(index: int, frames, record: dict) -> None:
            nonlocal made
            segment, variant = slots[index]
            item = items[index]
            _store_clip(job=job, campaign=campaign, segment=segment, variant=variant, frames=frames, tmp=Path(tmp),
                        prompt=item.prompt, negative=item.negative_prompt, seed=item.seed, steps=steps,
                        guidance=guidance, lora=lora, spec=spec, seconds=0.0, conditioning="text", plan=record)
            made += 1

        try:
            result = run_plan(engine, items=items, options=options, prefix_prompts=prefix_prompts, lora=adapter,
                              on_step=on_step, mag_ratios=ratios, on_clip=on_clip, **request)
        except GenerationCancelled:
            raise JobCancelled(f"job {job.pk} was cancelled")
    # Each clip's share of the plan's time, known only at the end.
    Clip.objects.filter(job=job, seconds=0.0, plan__has_key="options").update(
        seconds=round(result.seconds / len(items), 3))
    return made, result.savings


def _store_clip(*, job: Job, campaign: Campaign, segment: Segment, variant: int, frames, tmp: Path, prompt: str,
                negative: str, seed: int, steps: int, guidance: float, lora, spec, seconds: float,
                conditioning: str, plan: dict | None = None) -> None:
    """Encode, store, record one clip: the row is written only after both files are stored."""
    from generation.media import write_mp4, write_poster

    mp4, jpg = tmp / f"s{segment.pk}-v{variant}.mp4", tmp / f"s{segment.pk}-v{variant}.jpg"
    write_mp4(frames, mp4, fps=campaign.fps)
    write_poster(frames, jpg)
    video_name, poster_name = _file_names(job, segment, variant)
    stored_video, stored_poster = _store(mp4, video_name), _store(jpg, poster_name)
    with transaction.atomic():
        try:
            job_lock_mine(job=job)
        except JobCancelled:
            for name in (stored_video, stored_poster):
                default_storage.delete(name)
            raise
        clip = Clip.objects.create(
            organization_id=job.organization_id, campaign=campaign, segment=segment, job=job,
            variant=variant, prompt=prompt, negative_prompt=negative, seed=seed, model=spec.name,
            lora=lora, lora_version=lora.version if lora else None, steps=steps, guidance=guidance,
            num_frames=campaign.num_frames, width=campaign.width, height=campaign.height,
            fps=campaign.fps, video=stored_video, poster=stored_poster, seconds=round(seconds, 3),
            conditioning=conditioning, plan=plan or {},
        )
        webhook_clip_event(clip=clip, type="clip.pending_review")  # sent once this clip's row commits


def _start_image(campaign: Campaign):
    """The campaign's start image as pixels (RGBA when it has transparency), or None."""
    if campaign.start_image_id is None:
        return None
    from .editing import asset_image_array

    return asset_image_array(campaign.start_image)


def _image_to_video(engine, **arguments) -> tuple[list, list[str], float]:
    """Frames, conditioning and seconds per clip of one batched image-to-video call."""
    import time

    from generation.editing import image_to_video

    started = time.perf_counter()
    outputs = image_to_video(engine, **arguments)
    seconds = (time.perf_counter() - started) / max(len(outputs), 1)
    return [o.frames for o in outputs], [o.conditioning for o in outputs], seconds


def _settle(campaign: Campaign) -> None:
    """A generation that ended without finishing leaves the campaign as its clips say."""
    if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.GENERATING).update(
        status=Campaign.Status.IN_REVIEW if campaign.clips.exists() else Campaign.Status.DRAFT,
        updated_at=timezone.now(),
    ):
        webhook_campaign_status_changed(campaign=campaign, previous=Campaign.Status.GENERATING)


def _scratch() -> Path:
    path = Path(settings.WORK_DIR) / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path
