"""Recipients on the campaign page: upload a CSV (an import job), download every recipient's page link."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import selectors, services
from campaigns.dashboard.context import error_message, org_view
from campaigns.errors import ServiceError
from campaigns.models import Job, RecipientPage
from campaigns.recipient_pages import recipients_csv_response

# Bad rows shown on the campaign page; the job's result (API) holds up to a thousand.
SHOWN_ERRORS = 20


def recipients_context(campaign) -> dict:
    """The campaign page's recipients card: the latest import, its first bad rows, the page count."""
    job = (selectors.job_list(organization=campaign.organization)
           .filter(campaign=campaign, kind=Job.Kind.IMPORT_RECIPIENTS).first())
    errors = (job.result or {}).get("errors", []) if job else []
    return {"recipients_job": job, "recipients_errors": errors[:SHOWN_ERRORS],
            "recipients_errors_more": max(0, ((job.result or {}).get("bad_rows", 0) if job else 0) - SHOWN_ERRORS),
            "recipient_pages": RecipientPage.objects.filter(organization_id=campaign.organization_id, campaign=campaign,
                                                            revoked_at__isnull=True).count()}


def _back(campaign):
    return redirect(reverse("dashboard:campaign-detail", kwargs={"campaign_id": campaign.pk}) + "#recipients")


@require_POST
@org_view
def recipients_upload(request, campaign_id):
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a CSV file of recipients to upload."))
        return _back(campaign)
    try:
        services.recipients_upload(campaign=campaign, upload=upload, user=request.user)
    except (ValidationError, ServiceError) as exc:
        messages.error(request, _("The recipients were not imported: %(error)s") % {"error": error_message(exc)})
    else:
        messages.success(request, _("Recipients are being imported; bad rows will be listed here."))
    return _back(campaign)


@require_GET
@org_view
def recipients_export(request, campaign_id):
    campaign = selectors.campaign_get(organization=request.organization, campaign_id=campaign_id)
    return recipients_csv_response(campaign=campaign, request=request)
