"""Campaigns: write a brief, generate clips per audience segment, watch them perform, go live."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import selectors, services
from campaigns.dashboard.charts import bar_width, ctr
from campaigns.dashboard.context import error_message, form_add_service_errors, form_start_work, live_panel, org_view
from campaigns.dashboard.views.edits import nest_edits
from campaigns.dashboard.views.recipients import recipients_context
from campaigns.dashboard.forms import CampaignForm, GenerateForm, SegmentSettingForm, camera_choices, setting_suggestions
from campaigns.errors import ServiceError
from campaigns.files import signed_url
from campaigns.models import Campaign, Clip, Job
from campaigns.selectors_serving import FUNNEL, campaign_stats, rate

# The status moves a marketer makes from the campaign page, and the button each gets.
STATUS_ACTIONS = {
    Campaign.Status.IN_REVIEW: [Campaign.Status.LIVE],
    Campaign.Status.LIVE: [Campaign.Status.PAUSED],
    Campaign.Status.PAUSED: [Campaign.Status.LIVE],
}


@org_view
def campaign_list(request):
    campaigns = selectors.campaign_list(organization=request.organization).annotate(
        clip_count=Count("clips", distinct=True),
        pending_count=Count("clips", filter=Q(clips__status=Clip.Status.PENDING_REVIEW), distinct=True),
        approved_count=Count("clips", filter=Q(clips__status=Clip.Status.APPROVED), distinct=True),
    )
    return render(request, "dashboard/campaigns/list.html", {"campaigns": campaigns})


@org_view
def campaign_create(request):
    brands = list(selectors.brand_list(organization=request.organization))
    spec = services.model_spec()
    initial = {}
    if request.GET.get("brand"):
        initial["brand"] = request.GET["brand"]
    form = CampaignForm(request.POST or None, brands=brands, spec=spec, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            brand = selectors.brand_get(organization=request.organization, brand_id=data["brand"])
            campaign = services.campaign_create(
                organization=request.organization, brand=brand, name=data["name"], brief=data["brief"],
                num_frames=data["num_frames"], width=data["width"], height=data["height"], fps=data["fps"],
                segments=data["segments"], camera=data["camera"] or None, cta_url=data["cta_url"],
                objective=data["objective"], user=request.user,
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Campaign created. Generate its clips when you are ready."))
            return redirect("dashboard:campaign-detail", campaign_id=campaign.pk)
    rows = form.segment_rows or [{"name": "", "attributes": "", "setting": ""} for _ in range(2)]
    return render(request, "dashboard/campaigns/create.html", {
        "form": form, "brands": brands, "spec": spec, "segment_rows": rows,
        "sizes": form.sizes, "setting_suggestions": setting_suggestions(),
    }, status=400 if form.errors else 200)


def _performance(stats: dict) -> tuple[dict[int, dict], dict[int, int]]:
    """Per clip {impressions, clicks, completes, viewers} and viewers per segment, from the
    serving side's per-clip counters (``campaign_stats``)."""
    rows = [row for seg in stats["segments"] for row in seg["clips"]] + stats.get("unsegmented_clips", [])
    return ({row["id"]: row for row in rows}, {seg["id"]: seg.get("viewers", 0) for seg in stats["segments"]})


def _clip_view(clip: Clip, counts: dict, request) -> dict:
    video, _expires = signed_url(clip.video.name, request=request) if clip.video else (None, None)
    poster, _expires = signed_url(clip.poster.name, request=request) if clip.poster else (None, None)
    impressions, clicks = counts.get("impressions", 0), counts.get("clicks", 0)
    return {"clip": clip, "video": video, "poster": poster, "ratio": f"{clip.width} / {clip.height}",
            "impressions": impressions, "clicks": clicks, "ctr": ctr(impressions, clicks),
            "viewers": counts.get("viewers")}


def _funnel_row(name: str, figures: dict, *, level: str) -> dict:
    """One line of the viewing funnel: each stage's count and its share of the impressions (%)."""
    impressions = figures.get("impressions", 0)
    cells = []
    for key in FUNNEL:
        fraction = rate(figures.get(key, 0), impressions)
        cells.append({"key": key, "count": figures.get(key, 0),
                      "percent": None if fraction is None else round(100.0 * fraction, 1)})
    return {"name": name, "level": level, "cells": cells}


def _funnel(stats: dict) -> list[dict]:
    """The viewing funnel per segment, and per variant (clip) within it, then the campaign's total."""
    rows = []
    for seg in stats["segments"]:
        rows.append(_funnel_row(seg["name"], seg, level="segment"))
        rows += [_funnel_row(_("variant %(variant)s · clip #%(id)s") % {"variant": clip["variant"] + 1, "id": clip["id"]},
                             clip, level="clip") for clip in seg["clips"] if clip["impressions"]]
    loose = [clip for clip in stats["unsegmented_clips"] if clip["impressions"]]
    if loose:
        rows += [_funnel_row(_("Per-viewer clip #%(id)s") % {"id": clip["id"]}, clip, level="clip") for clip in loose]
    rows.append(_funnel_row(_("All viewers"), stats["totals"], level="total"))
    return rows


def _segments_with_clips(request, campaign, stats: dict) -> tuple[list[dict], dict]:
    clips = list(selectors.clip_list_for_campaign(campaign=campaign))
    counts, viewers = _performance(stats)
    views = [_clip_view(c, counts.get(c.pk, {}), request) for c in clips]
    groups = []
    for segment in selectors.segment_list_for_campaign(campaign=campaign):
        own = nest_edits([v for v in views if v["clip"].segment_id == segment.pk])  # edited clips under their parent
        groups.append(_group(segment.name, segment, own, viewers.get(segment.pk, 0)))
    loose = nest_edits([v for v in views if v["clip"].segment_id is None])
    if loose:
        groups.append(_group(_("Per-viewer clips"), None, loose, None))
    totals = {"impressions": sum(v["impressions"] for v in views), "clicks": sum(v["clicks"] for v in views)}
    totals["ctr"] = ctr(totals["impressions"], totals["clicks"])
    # Bars are scaled to the best click-through rate on the page, so the winner fills its track.
    best = max([g["ctr"] or 0 for g in groups] + [v["ctr"] or 0 for v in views] + [0])
    for group in groups:
        group["bar"] = bar_width(group["ctr"], best)
        for view in group["clips"]:
            view["bar"] = bar_width(view["ctr"], best)
    return groups, totals


def _group(name, segment, clip_views, audience) -> dict:
    impressions = sum(v["impressions"] for v in clip_views)
    clicks = sum(v["clicks"] for v in clip_views)
    served = [v["clip"] for v in clip_views if v["clip"].status == Clip.Status.APPROVED]
    return {
        "name": name, "segment": segment, "clips": clip_views,
        "attribute_items": [(key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
                            for key, value in (segment.attributes or {}).items()] if segment else [],
        "audience": audience,
        "served": served, "impressions": impressions, "clicks": clicks, "ctr": ctr(impressions, clicks),
        "pending": sum(1 for v in clip_views if v["clip"].status == Clip.Status.PENDING_REVIEW),
    }


def _progress_context(request, campaign) -> dict:
    jobs = selectors.job_list(organization=request.organization).filter(campaign=campaign)
    job = jobs.filter(kind=Job.Kind.GENERATE_CLIPS).first()
    segmenting = jobs.filter(kind=Job.Kind.SEGMENT_PROFILES, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).first()
    return {"campaign": campaign, "job": segmenting or job}


@require_GET
@org_view
def campaign_detail(request, campaign_id):
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    return _detail(request, campaign)


def _detail(request, campaign, *, generate_form=None, status=200):
    stats = campaign_stats(campaign=campaign)
    groups, totals = _segments_with_clips(request, campaign, stats)
    lora = selectors.lora_latest_for_brand(brand=campaign.brand)
    cameras = dict(camera_choices())
    return render(request, "dashboard/campaigns/detail.html", {
        "campaign": campaign, "groups": groups, "totals": totals, "lora": lora,
        "funnel": _funnel(stats) if totals["impressions"] else [],
        "camera_label": cameras.get(campaign.camera, ""), "setting_suggestions": setting_suggestions(),
        "generate_form": generate_form or GenerateForm(),
        "status_actions": STATUS_ACTIONS.get(campaign.status, []),
        "clip_total": sum(len(g["clips"]) for g in groups),
        **_progress_context(request, campaign),
        **recipients_context(campaign),
    }, status=status)


@require_POST
@org_view
def campaign_generate(request, campaign_id):
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    form = GenerateForm(request.POST)
    if not form.is_valid():
        return _detail(request, campaign, generate_form=form, status=400)
    data = form.cleaned_data
    generate = lambda: services.campaign_generate(  # noqa: E731
        campaign=campaign, variants_per_segment=data["variants_per_segment"], steps=data["steps"], user=request.user)
    if not form_start_work(request, form, generate,
                           started=_("Generation started. New clips appear here and in the review queue.")):
        return _detail(request, campaign, generate_form=form, status=400)
    return redirect(reverse("dashboard:campaign-detail", kwargs={"campaign_id": campaign.pk}) + "#progress")


@require_POST
@org_view
def segment_setting(request, campaign_id, segment_id):
    """The inline form beside a segment: the marketer's own setting for it."""
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    segment = selectors.segment_get(campaign=campaign, segment_id=segment_id)
    form = SegmentSettingForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors["setting"])
        segment = services.segment_update(segment=segment, setting=form.cleaned_data["setting"])
    except ValidationError as exc:
        messages.error(request, _("The setting of “%(name)s” was not saved: %(error)s")
                       % {"name": segment.name, "error": error_message(exc)})
    else:
        messages.success(request, _("“%(name)s” now takes place in: %(setting)s")
                         % {"name": segment.name, "setting": segment.setting})
    return redirect(reverse("dashboard:campaign-detail", kwargs={"campaign_id": campaign.pk})
                    + f"#segment-{segment.pk}")


@require_POST
@org_view
def campaign_status(request, campaign_id):
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    try:
        campaign = services.campaign_set_status(campaign=campaign, status=request.POST.get("status", ""))
    except (ServiceError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, _("The campaign is now %(status)s.") % {"status": campaign.get_status_display()})
    return redirect("dashboard:campaign-detail", campaign_id=campaign.pk)


@require_GET
@org_view
def campaign_progress(request, campaign_id):
    """The generation panel alone, for the live poller."""
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    return live_panel(request, "dashboard/campaigns/_progress.html", lambda: _progress_context(request, campaign),
                      page=reverse("dashboard:campaign-detail", kwargs={"campaign_id": campaign.pk}) + "#progress")
