"""Jobs: every training, generation and segmentation run, live, with a cancel button."""
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import selectors, services
from campaigns.dashboard.context import is_fragment, org_view
from campaigns.errors import ServiceError
from campaigns.models import Job

JOBS_PAGE = 50


@require_GET
@org_view
def job_list(request):
    jobs = selectors.job_list(organization=request.organization).select_related("created_by")
    kind = request.GET.get("kind")
    if kind in Job.Kind.values:
        jobs = jobs.filter(kind=kind)
    page = Paginator(jobs, JOBS_PAGE).get_page(request.GET.get("page"))
    for job in page.object_list:
        job.took = _duration(job.started_at, job.finished_at)
    context = {"page": page, "kind": kind, "kinds": Job.Kind.choices,
               "live": any(not j.is_finished for j in page.object_list)}
    template = "dashboard/jobs/_table.html" if is_fragment(request) else "dashboard/jobs/list.html"
    return render(request, template, context)


def _duration(start, end) -> str:
    if not start or not end:
        return ""
    seconds = max(0, round((end - start).total_seconds()))
    if seconds < 120:
        return _("%(s)s s") % {"s": seconds}
    if seconds < 7200:
        return _("%(m)s min") % {"m": round(seconds / 60)}
    return _("%(h)s h %(m)s min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


@require_POST
@org_view
def job_cancel(request, job_id):
    job = selectors.job_get(organization=request.organization, job_id=job_id)
    try:
        services.job_cancel(job=job)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Job #%(id)s cancelled.") % {"id": job.pk})
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("dashboard:job-list")
