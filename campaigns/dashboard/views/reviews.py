"""The review queue (approve or reject every clip before any app gets it) and the audit trail."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from campaigns import selectors, services
from campaigns.dashboard.context import error_json, error_message, error_status, org_view, wants_json
from campaigns.dashboard.forms import ReviewForm
from campaigns.errors import ServiceError
from campaigns.files import signed_url
from campaigns.models import Review

QUEUE_PAGE = 30
AUDIT_PAGE = 50
REFUSALS = (ServiceError, ValidationError, PermissionDenied)


def _queue(request, *, error: str = "", status: int = 200):
    pending = selectors.clip_list_pending(organization=request.organization).select_related("campaign__brand", "lora")
    total = pending.count()
    items = []
    for clip in pending[:QUEUE_PAGE]:
        video, _expires = signed_url(clip.video.name, request=request) if clip.video else (None, None)
        poster, _expires = signed_url(clip.poster.name, request=request) if clip.poster else (None, None)
        items.append({"clip": clip, "video": video, "poster": poster, "ratio": f"{clip.width} / {clip.height}"})
    return render(request, "dashboard/reviews/queue.html", {
        "items": items, "total": total, "error": error, "shown": len(items),
    }, status=status)


@require_GET
@org_view
def review_queue(request):
    return _queue(request)


@require_POST
@org_view
def review_decide(request, clip_id):
    clip = selectors.clip_get(organization=request.organization, clip_id=clip_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        exc = ValidationError(_("Choose approve or reject; a note is at most 2000 characters."))
        return error_json(exc) if wants_json(request) else _queue(request, error=error_message(exc), status=400)
    try:
        clip = services.clip_review(clip=clip, decision=form.cleaned_data["decision"],
                                    note=form.cleaned_data["note"], user=request.user)
    except REFUSALS as exc:
        if wants_json(request):
            return error_json(exc)
        return _queue(request, error=error_message(exc), status=error_status(exc))
    text = (_("Clip #%(id)s approved.") if clip.status == "approved" else _("Clip #%(id)s rejected.")) % {"id": clip.pk}
    if wants_json(request):
        return JsonResponse({"clip": {"id": clip.pk, "status": clip.status,
                                      "status_display": clip.get_status_display()}, "message": text})
    messages.success(request, text)
    return redirect("dashboard:review-queue")


@require_POST
@org_view
def review_bulk(request):
    """Approve every ticked clip; each is decided on its own, so one refusal does not stop the rest."""
    ids = request.POST.getlist("clips")
    note = request.POST.get("note", "")
    approved, refused = 0, []
    for clip_id in ids[:QUEUE_PAGE * 4]:
        try:
            clip = selectors.clip_get(organization=request.organization, clip_id=clip_id)
            services.clip_review(clip=clip, decision=Review.Decision.APPROVE, note=note, user=request.user)
        except REFUSALS as exc:
            refused.append(f"#{clip_id}: {error_message(exc)}")
        except Http404:  # an id of another organization, or none at all
            refused.append(f"#{clip_id}: {_('no such clip.')}")
        else:
            approved += 1
    if approved:
        messages.success(request, ngettext("Approved %(n)s clip.", "Approved %(n)s clips.", approved) % {"n": approved})
    for line in refused:
        messages.error(request, line)
    if not ids:
        messages.error(request, _("Tick the clips to approve first."))
    return redirect("dashboard:review-queue")


@require_GET
@org_view
def review_audit(request):
    reviews = selectors.review_list(organization=request.organization).select_related("clip__segment")
    decision = request.GET.get("decision")
    if decision in Review.Decision.values:
        reviews = reviews.filter(decision=decision)
    page = Paginator(reviews, AUDIT_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/reviews/audit.html", {"page": page, "decision": decision,
                                                             "decisions": Review.Decision.choices})
