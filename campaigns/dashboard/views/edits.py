"""A clip's page and its Edit panel: re-scene (keep box drawn on the poster), extend, loop, connect.

Each form posts to ``clip_edit``, which calls the same services as the API
(``campaigns.services.editing``) and redirects back with a message; a refusal is shown in the
form it came from. The campaign page lists edited clips under their parent (``nest_edits``).
"""
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import selectors, services
from campaigns.dashboard.context import error_message, live_panel, org_view
from campaigns.dashboard.edit_forms import (
    EDIT_FORMS,
    EDIT_KIND_LABELS,
    EVERY_SEGMENT,
    OWN_PROMPT,
    edit_form_add_errors,
)
from campaigns.errors import ServiceError
from campaigns.files import signed_url
from campaigns.models import Clip, Job
from campaigns.services.editing import clip_edit_jobs

RECENT_JOBS = 10


def nest_edits(views: list[dict]) -> list[dict]:
    """Clip views with each edited clip right after its parent (depth 1, 2, …); a clip whose parent
    is not among them (another segment's, say) stays where it is, at depth 0."""
    by_parent: dict[int, list[dict]] = {}
    ids = {v["clip"].pk for v in views}
    roots = []
    for view in views:
        clip = view["clip"]
        view["edit_label"] = EDIT_KIND_LABELS.get((clip.edit or {}).get("kind"), "") if clip.parent_id else ""
        if clip.parent_id in ids:
            by_parent.setdefault(clip.parent_id, []).append(view)
        else:
            roots.append(view)
    nested: list[dict] = []

    def place(view: dict, depth: int) -> None:
        view["depth"] = min(depth, 3)
        nested.append(view)
        for child in by_parent.get(view["clip"].pk, []):
            place(child, depth + 1)

    for view in roots:
        place(view, 0)
    return nested


def _forms(clip: Clip, *, bound_kind: str | None = None, data=None) -> dict:
    segments = list(selectors.segment_list_for_campaign(campaign=clip.campaign))
    others = [c for c in selectors.clip_list_for_campaign(campaign=clip.campaign)
              if c.pk != clip.pk and (c.width, c.height) == (clip.width, clip.height)]
    extra = {"rescene": {"segments": segments}, "connect": {"others": others}}
    return {kind: form(data if kind == bound_kind else None, clip=clip, **extra.get(kind, {}))
            for kind, form in EDIT_FORMS.items()}


def _jobs_context(request, clip: Clip) -> dict:
    jobs = list(clip_edit_jobs(clip=clip)[:RECENT_JOBS])
    return {"clip": clip, "jobs": jobs, "live": any(not j.is_finished for j in jobs)}


def _page(request, clip: Clip, *, forms: dict | None = None, status: int = 200):
    def url(name):
        return signed_url(name, request=request)[0] if name else None

    edits = list(clip.edits.filter(organization=request.organization).select_related("segment"))
    return render(request, "dashboard/clips/detail.html", {
        "clip": clip, "campaign": clip.campaign, "video": url(clip.video.name), "poster": url(clip.poster.name),
        "mask": url(clip.mask.name), "ratio": f"{clip.width} / {clip.height}",
        "edit_label": EDIT_KIND_LABELS.get((clip.edit or {}).get("kind"), ""),
        "edits": [{"clip": c, "label": EDIT_KIND_LABELS.get((c.edit or {}).get("kind"), "")} for c in edits],
        "forms": forms or _forms(clip), "can_edit": clip.status != Clip.Status.REJECTED,
        **_jobs_context(request, clip),
    }, status=status)


def _clip(request, clip_id) -> Clip:
    return selectors.clip_get(organization=request.organization, clip_id=clip_id)


@require_GET
@org_view
def clip_detail(request, clip_id):
    return _page(request, _clip(request, clip_id))


@require_GET
@org_view
def clip_edit_jobs_panel(request, clip_id):
    """The clip's edit jobs alone, for the live poller."""
    clip = _clip(request, clip_id)
    return live_panel(request, "dashboard/clips/_edit_jobs.html", lambda: _jobs_context(request, clip),
                      page=reverse("dashboard:clip-detail", kwargs={"clip_id": clip.pk}) + "#edit-jobs")


def _submit(request, clip: Clip, form) -> Job:
    data = form.cleaned_data
    common = {"variants": data["variants"], "prompt": data["prompt"] or None, "user": request.user}
    if form.kind == "rescene":
        target = data["target"]
        if target == EVERY_SEGMENT:
            return services.campaign_rescene(campaign=clip.campaign, clip=clip.pk, keep_box=form.keep_box,
                                             variants_per_segment=data["variants"], user=request.user)
        segment = None if target == OWN_PROMPT else int(target)
        return services.clip_edit(clip=clip, kind="rescene", keep_box=form.keep_box, segment=segment, **common)
    if form.kind == "extend":
        return services.clip_edit(clip=clip, kind="extend", frames=data["frames"], direction=data["direction"],
                                  **common)
    if form.kind == "connect":
        return services.clip_edit(clip=clip, kind="connect", other_clip=data["other_clip"], **common)
    return services.clip_edit(clip=clip, kind=form.kind, **common)


@require_POST
@org_view
def clip_edit(request, clip_id):
    clip = _clip(request, clip_id)
    kind = request.POST.get("kind")
    if kind not in EDIT_FORMS:
        messages.error(request, _("Choose an edit: re-scene, extend, loop or connect."))
        return redirect("dashboard:clip-detail", clip_id=clip.pk)
    forms = _forms(clip, bound_kind=kind, data=request.POST)
    form = forms[kind]
    if not form.is_valid():
        return _page(request, clip, forms=forms, status=400)
    try:
        job = _submit(request, clip, form)
    except ValidationError as exc:
        edit_form_add_errors(form, exc)
        return _page(request, clip, forms=forms, status=400)
    except (ServiceError, PermissionDenied) as exc:
        form.add_error(None, error_message(exc))
        return _page(request, clip, forms=forms, status=getattr(exc, "status", 403))
    if job.kind == Job.Kind.RESCENE_CAMPAIGN:
        text = _("Re-scene for every segment queued as job #%(id)s; the new clips go to review when it is done.")
    else:
        text = _("%(kind)s queued as job #%(id)s; the new clips go to review when it is done.")
    messages.success(request, text % {"id": job.pk, "kind": EDIT_KIND_LABELS[kind]})
    return redirect(reverse("dashboard:clip-detail", kwargs={"clip_id": clip.pk}) + "#edit-jobs")
