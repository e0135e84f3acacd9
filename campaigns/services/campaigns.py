"""Campaigns: create (validated against what the base model can take), generate, go live, pause."""
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from campaigns.errors import Conflict
from campaigns.models import Brand, Campaign, Job, Organization, Segment
from generation.families import DEFAULT_FAMILY, ModelFamily, family_by_name, family_for_model_path
from generation.limits import (
    MAX_BRIEF_CHARS,
    MAX_FPS,
    MAX_NAME_CHARS,
    MAX_SEGMENTS,
    MAX_STEPS,
    MAX_URL_CHARS,
    MAX_VARIANTS,
)
from generation.personalization import CAMERA_BY_KEY, GENERAL_SEGMENT, clean_setting, default_camera_for_brief

from .fleet import compute_budget_check
from .jobs import job_create
from .profiles import profile_clean_attributes
from .webhooks import webhook_campaign_status_changed

# What the project's own checkpoints make well and fast on a CPU; real checkpoints use their
# family's own defaults (Wan2.1: 81 frames at 832x480). `tiny` learned 9-frame 32 px clips of the
# toy world (larger sizes run but lose the picture); `tiny-random` draws noise at any size.
OWN_MODEL_DEFAULTS = {
    "tiny": {"num_frames": 9, "width": 32, "height": 32, "fps": 8, "steps": 20, "guidance": 5.0},
    "tiny-random": {"num_frames": 17, "width": 128, "height": 128, "fps": 8, "steps": 8, "guidance": 5.0},
    "tiny-random-vace": {"num_frames": 17, "width": 128, "height": 128, "fps": 8, "steps": 8, "guidance": 5.0},
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: ModelFamily
    defaults: dict

    @property
    def is_tiny(self) -> bool:
        """One of the project's own CPU-sized checkpoints (not a real one)."""
        return self.name in OWN_MODEL_DEFAULTS

    @property
    def wording(self) -> str:
        """Whose words the prompt builder uses for the camera (`CameraPreset.wording`): the family's,
        or for the project's own checkpoints the toy world's, which `tiny` was trained on."""
        return "tiny" if self.is_tiny else self.family.name


def model_spec() -> ModelSpec:
    """The configured base model's family and defaults, read without loading it (no torch here)."""
    name = settings.GENERATION_MODEL
    if name in OWN_MODEL_DEFAULTS:
        return ModelSpec(name, DEFAULT_FAMILY, OWN_MODEL_DEFAULTS[name])
    family_name = settings.GENERATION_MODEL_FAMILY
    if family_name:
        family = family_by_name(family_name)
    elif (Path(name) / "model_index.json").is_file():
        family = family_for_model_path(name)
    else:
        family = DEFAULT_FAMILY  # the web host may not hold the checkpoint; GPU workers do
    defaults = {
        "num_frames": family.default_num_frames, "width": family.default_width, "height": family.default_height,
        "fps": family.default_fps, "steps": family.default_steps, "guidance": family.default_guidance,
    }
    return ModelSpec(name, family, defaults)


def _clean_segments(segments) -> tuple[list[dict], int | None]:
    """Marketer-defined segments as a clean list, or k for clustering; the field named on error.

    A segment may carry its own ``setting``; those that do not get one suggested once embedded.
    """
    if segments is None or segments == []:
        return [{"name": GENERAL_SEGMENT, "attributes": {}, "setting": ""}], None
    if isinstance(segments, bool):
        raise ValidationError({"segments": "segments must be an integer k or a list of {name, attributes}."})
    if isinstance(segments, int):
        if not 1 <= segments <= MAX_SEGMENTS:
            raise ValidationError({"segments": f"k must be between 1 and {MAX_SEGMENTS}; got {segments}."})
        return [], segments
    if not isinstance(segments, list) or len(segments) > MAX_SEGMENTS:
        raise ValidationError({"segments": f"segments must be an integer k or a list of at most {MAX_SEGMENTS} "
                                           "{name, attributes} objects."})
    clean, names = [], set()
    for i, item in enumerate(segments):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise ValidationError({"segments": f"segments[{i}] must be an object with a non-empty 'name'."})
        name = item["name"].strip()
        if len(name) > MAX_NAME_CHARS:
            raise ValidationError({"segments": f"segments[{i}].name must be at most {MAX_NAME_CHARS} characters."})
        try:  # the same bounds as a viewer's attributes: segments are matched against them
            attributes = profile_clean_attributes(attributes=item.get("attributes", {}))
        except ValidationError as exc:
            raise ValidationError({"segments": f"segments[{i}].{exc.message_dict['attributes'][0]}"}) from None
        if name in names:
            raise ValidationError({"segments": f"segment name '{name}' is used twice; names must be unique."})
        names.add(name)
        setting = item.get("setting")
        if setting is not None:
            try:
                setting = clean_setting(setting)
            except ValueError as exc:
                raise ValidationError({"segments": f"segments[{i}].{exc}"}) from None
        clean.append({"name": name, "attributes": attributes, "setting": setting or ""})
    return clean, None


def clean_camera(camera, *, brief: str) -> str:
    """A camera preset key as given, or the brief's default when none is; the field named on error."""
    if camera is None or camera == "":
        return default_camera_for_brief(brief)
    if not isinstance(camera, str) or camera not in CAMERA_BY_KEY:
        raise ValidationError({"camera": f"camera must be one of the presets: {', '.join(CAMERA_BY_KEY)}; "
                                         f"got {camera!r}."})
    return camera


_https_url = URLValidator(schemes=["https"])


def clean_cta_url(cta_url) -> str:
    """The call to action's https URL as given (empty for none); the field named on error."""
    if cta_url is None or cta_url == "":
        return ""
    if not isinstance(cta_url, str):
        raise ValidationError({"cta_url": f"cta_url must be an https:// URL (text); got {type(cta_url).__name__}."})
    cta_url = cta_url.strip()
    if len(cta_url) > MAX_URL_CHARS:
        raise ValidationError({"cta_url": f"cta_url must be at most {MAX_URL_CHARS} characters; "
                                          f"got {len(cta_url)}."})
    try:
        _https_url(cta_url)
    except ValidationError:
        raise ValidationError({"cta_url": "cta_url must be an https:// URL, e.g. https://example.com/offer."}) from None
    return cta_url


def clean_objective(objective) -> str:
    """What the variant chooser maximizes: clicks (the default) or completes."""
    if objective is None or objective == "":
        return Campaign.Objective.CLICKS
    if objective not in Campaign.Objective.values:
        raise ValidationError({"objective": f"objective must be one of {', '.join(Campaign.Objective.values)}; "
                                            f"got {objective!r}."})
    return objective


@transaction.atomic
def campaign_create(*, organization: Organization, brand: Brand, name: str, brief: str,
                    num_frames: int | None = None, width: int | None = None, height: int | None = None,
                    fps: int | None = None, segments=None, camera: str | None = None, start_image=None,
                    cta_url: str | None = None, objective: str | None = None, user=None) -> Campaign:
    if brand.organization_id != organization.pk:
        raise ValidationError({"brand": "no such brand in this organization."})
    spec = model_spec()
    values = {
        "num_frames": spec.defaults["num_frames"] if num_frames is None else num_frames,
        "width": spec.defaults["width"] if width is None else width,
        "height": spec.defaults["height"] if height is None else height,
    }
    problems = spec.family.validate(**values)
    fps = spec.defaults["fps"] if fps is None else fps
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        problems["fps"] = f"fps must be a whole number from 1 to {MAX_FPS}; got {fps!r}."
    if problems:
        raise ValidationError({field: f"{message} (model: {spec.name}, {spec.family.name} family)"
                               for field, message in problems.items()})
    defined, k = _clean_segments(segments)
    brief = (brief or "").strip()
    if len(brief) > MAX_BRIEF_CHARS:
        # The prompt builder's limit, refused here rather than by the GPU job that would build it.
        raise ValidationError({"brief": f"brief must be at most {MAX_BRIEF_CHARS} characters; got {len(brief)}."})
    camera = clean_camera(camera, brief=brief)
    cta_url = clean_cta_url(cta_url)
    objective = clean_objective(objective)
    from .editing import start_image_for_brand  # image-to-video: one of the brand's image assets

    start_asset = start_image_for_brand(brand=brand, start_image=start_image)

    campaign = Campaign(organization=organization, brand=brand, name=(name or "").strip(), brief=brief,
                        fps=fps, segment_count=k, camera=camera, start_image=start_asset, cta_url=cta_url,
                        objective=objective,
                        created_by=user if user and user.is_authenticated else None, **values)
    campaign.full_clean()
    campaign.save()
    Segment.objects.bulk_create([
        Segment(organization=organization, campaign=campaign, name=s["name"], attributes=s["attributes"], position=i,
                setting=s["setting"], setting_source=Segment.SettingSource.MARKETER if s["setting"] else "")
        for i, s in enumerate(defined)
    ])
    if defined:
        segments_embed_enqueue(campaign=campaign)
    else:
        job_create(organization=organization, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, user=user,
                   params={"k": k})
    return campaign


def segments_embed_enqueue(*, campaign: Campaign) -> None:
    """Marketer-defined segments get their centroids embedded by a CPU worker (see personalization)."""
    from campaigns.services.jobs import job_enqueue_task

    job_enqueue_task(task_name="cpu.segments_embed", args=[campaign.pk])


def _unfinished_job(campaign: Campaign, kind: str) -> Job | None:
    return campaign.jobs.filter(kind=kind, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).first()


@transaction.atomic
def campaign_generate(*, campaign: Campaign, variants_per_segment: int = 1, steps: int | None = None,
                      user=None, enqueue: bool = True) -> Job:
    """Queue clip generation for every segment x variant; the campaign moves to 'generating'.

    ``enqueue=False`` leaves the job for the caller to run in its own process (operator commands).
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if isinstance(variants_per_segment, bool) or not isinstance(variants_per_segment, int) \
            or not 1 <= variants_per_segment <= MAX_VARIANTS:
        raise ValidationError({"variants_per_segment": f"must be a whole number from 1 to {MAX_VARIANTS}; "
                                                       f"got {variants_per_segment!r}."})
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS):
        raise ValidationError({"steps": f"must be a whole number from 1 to {MAX_STEPS}; got {steps!r}."})
    if campaign.status == Campaign.Status.ARCHIVED:
        raise Conflict("this campaign is archived; archived campaigns cannot generate.", code="campaign_archived")
    running = _unfinished_job(campaign, Job.Kind.GENERATE_CLIPS)
    if running:
        raise Conflict(f"generation job {running.pk} for this campaign is still {running.status}; wait for it "
                       "or cancel it first.", code="already_generating", details={"job": running.pk})
    segmenting = _unfinished_job(campaign, Job.Kind.SEGMENT_PROFILES)
    if segmenting or not campaign.segments.exists():
        raise Conflict("this campaign's segments are not ready yet (profiles are being clustered); try again "
                       "when its segmentation job has finished.", code="segments_not_ready")
    spec = model_spec()
    steps = steps or settings.GENERATION_STEPS or spec.defaults["steps"]
    compute_budget_check(width=campaign.width, height=campaign.height, num_frames=campaign.num_frames,
                         clips=campaign.segments.count() * variants_per_segment, batch=variants_per_segment,
                         steps=steps)
    job = job_create(
        organization=campaign.organization, kind=Job.Kind.GENERATE_CLIPS, campaign=campaign, brand=campaign.brand,
        user=user, params={"variants_per_segment": variants_per_segment, "steps": steps,
                           "guidance": spec.defaults["guidance"]},
        enqueue=enqueue,
    )
    previous = campaign.status
    campaign.status = Campaign.Status.GENERATING
    campaign.save(update_fields=["status", "updated_at"])
    if previous != campaign.status:
        webhook_campaign_status_changed(campaign=campaign, previous=previous)
    return job


TRANSITIONS = {
    Campaign.Status.LIVE: {Campaign.Status.IN_REVIEW, Campaign.Status.PAUSED},
    Campaign.Status.PAUSED: {Campaign.Status.LIVE},
    Campaign.Status.ARCHIVED: {Campaign.Status.DRAFT, Campaign.Status.IN_REVIEW, Campaign.Status.LIVE,
                               Campaign.Status.PAUSED},
}


@transaction.atomic
def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Go live, pause, archive: only the moves a marketer may make, with a 409 naming the allowed ones."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    allowed_from = TRANSITIONS.get(status)
    if allowed_from is None:
        raise ValidationError({"status": f"status can be set to {', '.join(TRANSITIONS)}; got {status!r}."})
    if campaign.status not in allowed_from:
        raise Conflict(f"a campaign that is {campaign.status} cannot become {status}; "
                       f"it can from: {', '.join(sorted(allowed_from))}.", code="bad_transition")
    if status == Campaign.Status.LIVE and not campaign.clips.filter(status="approved").exists():
        raise Conflict("a campaign needs at least one approved clip to go live.", code="no_approved_clip")
    previous = campaign.status
    campaign.status = status
    campaign.save(update_fields=["status", "updated_at"])
    webhook_campaign_status_changed(campaign=campaign, previous=previous)
    return campaign
