"""Campaign generation through the campaign plan (generation/plan.py) and without it, on tiny-random."""
import pytest
from django.template.loader import render_to_string

from campaigns import services
from campaigns.models import Campaign, Clip, Job
from campaigns.services.generation import campaign_generate_run
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(org, settings, tmp_path_factory):
    settings.GENERATION_MODEL = "tiny-random"
    settings.MODEL_CACHE_DIR = tmp_path_factory.getbasetemp() / "plan-models"
    campaign = factories.CampaignFactory(brand__organization=org, num_frames=9, width=32, height=32)
    # Settings given: no embedding model is needed to suggest them.
    factories.SegmentFactory(campaign=campaign, name="Hikers", setting="a mountain forest trail at dawn")
    factories.SegmentFactory(campaign=campaign, name="Commuters", setting="a rainy city street at night",
                             attributes={"style": "minimal"})
    return campaign


def generate(campaign: Campaign) -> Job:
    job = services.campaign_generate(campaign=campaign, variants_per_segment=2, steps=4, enqueue=False)
    services.job_run(job_id=job.pk, work=campaign_generate_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


def generate_with_camera(campaign: Campaign, camera: str) -> list[Clip]:
    """The campaign's 4 clips (2 segments x 2 variants) with its camera set to `camera`."""
    campaign.camera = camera
    campaign.save(update_fields=["camera"])
    clips = list(Clip.objects.filter(job=generate(campaign)).select_related("job"))
    assert len(clips) == 4
    return clips


@pytest.mark.slow
def test_the_plan_records_what_it_did_on_every_clip(campaign, settings):
    settings.GENERATION_PLAN = True
    settings.GENERATION_PREFIX_FRACTION = 0.5
    settings.GENERATION_CACHE = "first_block"
    settings.GENERATION_GUIDANCE_FRACTION = 0.5
    job = generate(campaign)
    clips = list(Clip.objects.filter(job=job).select_related("segment"))
    assert len(clips) == 4 and job.result["clips"] == 4
    by_variant = {}
    for clip in clips:
        assert clip.plan["options"]["cache"] == "first_block"
        assert clip.plan["prefix_steps"] == 2 and clip.plan["guidance_steps"] == 2
        assert clip.plan["prefix"]["seed"] == clip.seed and clip.plan["prefix"]["steps"] == 2
        assert clip.seconds > 0
        by_variant.setdefault(clip.variant, set()).add(clip.seed)
    # With a shared prefix a variant's seed is the same in every segment, and differs between variants.
    assert all(len(seeds) == 1 for seeds in by_variant.values())
    assert by_variant[0] != by_variant[1]
    # One segment's prompt (the first in the plan) is the prefix of both segments' clips.
    prefixes = {c.plan["prefix"]["prompt"] for c in clips}
    assert len(prefixes) == 1 and prefixes <= {c.prompt for c in clips}
    assert len({c.prompt for c in clips}) == 2
    # What it saved: prefix, guidance and cache all spend less than 2 x 4 evaluations per clip.
    plan = job.result["plan"]
    assert plan["naive_evaluations"] == 4 * 2 * 4
    assert 0 < plan["evaluations"] < plan["naive_evaluations"] and plan["ratio"] < 0.75
    html = render_to_string("dashboard/_job.html", {"job": job})
    assert "Campaign plan:" in html and f'data-plan-ratio="{plan["ratio"]}"' in html


@pytest.mark.slow
def test_every_option_off_spends_what_a_naive_run_spends(campaign, settings):
    settings.GENERATION_PLAN = True
    settings.GENERATION_PREFIX_FRACTION = 0.0
    settings.GENERATION_CACHE = "none"
    settings.GENERATION_GUIDANCE_FRACTION = 1.0
    job = generate(campaign)
    assert job.result["plan"]["ratio"] == 1.0
    clips = list(Clip.objects.filter(job=job))
    assert all("prefix" not in c.plan and c.plan["options"]["cache"] == "none" for c in clips)
    # Without a prefix, seeds are the per-slot seeds of the naive path.
    assert len({c.seed for c in clips}) == 4


@pytest.mark.slow
def test_the_naive_path_stays_available(campaign, settings):
    settings.GENERATION_PLAN = False
    job = generate(campaign)
    clips = list(Clip.objects.filter(job=job))
    # No plan record; at most the camera guide's, which runs in each call (the brief picks the camera).
    assert len(clips) == 4 and all(set(c.plan) <= {"camera_guide"} for c in clips)
    assert "plan" not in job.result
    assert "Campaign plan:" not in render_to_string("dashboard/_job.html", {"job": job})


@pytest.mark.slow
def test_a_redelivered_plan_job_makes_nothing_twice(campaign, settings):
    settings.GENERATION_PLAN = True
    settings.GENERATION_CACHE = "none"
    job = generate(campaign)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    job.refresh_from_db()
    result = campaign_generate_run(services.JobHandle(job))
    assert result["made_this_attempt"] == 0 and Clip.objects.filter(job=job).count() == 4


@pytest.mark.slow
def test_without_the_plan_the_camera_guide_runs_in_each_call(campaign, settings):
    settings.GENERATION_PLAN = False
    clips = generate_with_camera(campaign, "descend")
    for clip in clips:
        assert clip.plan == {"camera_guide": {"motion": [0.0, -0.35], "step": 2}}


def test_bad_plan_settings_fail_loudly(campaign, settings):
    settings.GENERATION_PLAN = True
    settings.GENERATION_CACHE = "teacache"
    job = services.campaign_generate(campaign=campaign, steps=2, enqueue=False)
    services.job_run(job_id=job.pk, work=campaign_generate_run)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "teacache" in job.error


@pytest.mark.slow
def test_by_default_a_campaign_runs_the_measured_plan(campaign):
    """The defaults are what benchmarks/campaign.py measured: MagCache (ratios calibrated on the
    first job of a checkpoint that has none), guidance in the first quarter of the steps, and the
    camera guide from 60% of the steps on (the campaign's camera move)."""
    clips = generate_with_camera(campaign, "pan_left")
    job = clips[0].job
    for clip in clips:
        assert clip.plan["options"]["cache"] == "mag" and clip.plan["options"]["guidance_fraction"] == 0.25
        assert clip.plan["guidance_steps"] == 1 and len(clip.plan["mag_ratios"]) >= 1
        assert "prefix" not in clip.plan
        assert clip.plan["options"]["camera_guide"] == 0.6
        assert clip.plan["camera_guide"] == {"motion": [0.35, 0.0], "step": 2}
    plan = job.result["plan"]
    # 4 steps: one guided (2 passes) and three conditional only, before any block MagCache skips.
    assert plan["naive_evaluations"] == 4 * 2 * 4 and plan["evaluations"] <= 4 * 5


def test_the_benchmarks_measure_the_platforms_default_plan():
    from django.conf import settings

    from benchmarks.campaign import build_parser as campaign_options
    from benchmarks.quality import build_parser as quality_options

    defaults = (settings.GENERATION_PREFIX_FRACTION, settings.GENERATION_CACHE, settings.GENERATION_CACHE_THRESHOLD,
                settings.GENERATION_GUIDANCE_FRACTION)
    campaign_args = campaign_options().parse_args([])
    assert (campaign_args.prefix_fraction, campaign_args.cache, campaign_args.cache_threshold,
            campaign_args.guidance_fraction) == defaults
    quality_args = quality_options().parse_args([])
    assert (0.0, quality_args.plan_cache, 0.0, quality_args.plan_guidance_fraction) == defaults
    assert quality_args.plan_camera_guide == settings.GENERATION_CAMERA_GUIDE
