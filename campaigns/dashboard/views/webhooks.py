"""Webhooks: the organization's endpoints, a new one (its secret shown once), test, delete, the delivery log."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import selectors, services
from campaigns.dashboard.context import form_add_service_errors, org_view
from campaigns.dashboard.forms import WebhookForm

DELIVERIES_SHOWN = 100


@require_http_methods(["GET", "POST"])
@org_view
def webhook_list(request):
    form = WebhookForm(request.POST or None, initial={"events": ["clip.pending_review", "clip.approved",
                                                                 "clip.rejected"]})
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.webhook_endpoint_create(organization=request.organization,
                                                       url=form.cleaned_data["url"],
                                                       events=form.cleaned_data["events"])
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            form = WebhookForm(initial={"events": form.cleaned_data["events"]})
    # The secret is in this answer only (no redirect, nothing in the session): 201 with it, once.
    status = 201 if created else (400 if form.errors else 200)
    return render(request, "dashboard/webhooks/list.html", {
        "endpoints": selectors.webhook_endpoint_list(organization=request.organization),
        "form": form, "created": created,
    }, status=status)


@require_GET
@org_view
def webhook_detail(request, endpoint_id):
    endpoint = selectors.webhook_endpoint_get(organization=request.organization, endpoint_id=endpoint_id)
    deliveries = selectors.webhook_delivery_list_for_endpoint(endpoint=endpoint)[:DELIVERIES_SHOWN]
    return render(request, "dashboard/webhooks/detail.html", {"endpoint": endpoint, "deliveries": deliveries})


@require_POST
@org_view
def webhook_test(request, endpoint_id):
    endpoint = selectors.webhook_endpoint_get(organization=request.organization, endpoint_id=endpoint_id)
    delivery = services.webhook_endpoint_test(endpoint=endpoint)
    messages.success(request, _("Test event %(id)s sent; its attempts show below.") % {"id": delivery.event_id})
    return redirect("dashboard:webhook-detail", endpoint_id=endpoint.pk)


@require_POST
@org_view
def webhook_delete(request, endpoint_id):
    endpoint = selectors.webhook_endpoint_get(organization=request.organization, endpoint_id=endpoint_id)
    services.webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, _("Endpoint %(url)s deleted.") % {"url": endpoint.url})
    return redirect("dashboard:webhook-list")
