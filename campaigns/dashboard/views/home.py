"""The overview page and the organization switcher."""
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns import selectors
from campaigns.dashboard.context import SESSION_KEY, org_view
from campaigns.models import Job


@org_view
def home(request):
    org = request.organization
    campaigns = selectors.campaign_list(organization=org)
    jobs = selectors.job_list(organization=org)
    context = {
        "counts": {
            "brands": selectors.brand_list(organization=org).count(),
            "campaigns": campaigns.count(),
            "pending": selectors.clip_list_pending(organization=org).count(),
            "running": jobs.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).count(),
        },
        "recent_campaigns": campaigns[:6],
        "recent_jobs": jobs[:5],
        "brands": selectors.brand_list(organization=org)[:8],
    }
    return render(request, "dashboard/home.html", context)


@require_POST
@org_view
def org_switch(request):
    """Make another of the user's organizations current; objects of the old one are now 404s."""
    try:
        wanted = int(request.POST.get("organization", ""))
    except ValueError:
        return HttpResponseBadRequest("organization must be an id")
    if wanted not in {o.pk for o in request.organizations}:
        return HttpResponseBadRequest("you are not a member of that organization")
    request.session[SESSION_KEY] = wanted
    return redirect("dashboard:home")
