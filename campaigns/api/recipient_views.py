"""Recipients in bulk: a CSV upload that becomes an import job, and the CSV of personal page links."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from campaigns import selectors, services
from campaigns.api.serializers import JobEnvelopeSerializer, JobSerializer
from campaigns.api.views import ManageView, errors
from campaigns.recipient_pages import recipients_csv_response


class RecipientsInSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, UTF-8, header row with an `external_id` column; every other "
                                           "column is an attribute (`interests` may hold `a;b;c`).")


class RecipientsUploadView(ManageView):
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": RecipientsInSerializer},
                   responses={202: JobEnvelopeSerializer, **errors(400, 404, 409, 413)}, tags=["recipients"],
                   description="Upsert the CSV's recipients as profiles and place them in the campaign's segments, "
                               "in a job. Its `result` counts the rows and lists each bad one with its `line` "
                               "and `reason`; good rows go in whatever the bad ones hold.")
    def post(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        data = RecipientsInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.recipients_upload(campaign=campaign, upload=data.validated_data["file"])
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class RecipientsExportView(ManageView):
    def perform_content_negotiation(self, request, force=False):
        # The answer is CSV whatever the client accepts (`Accept: text/csv` included); errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=(
                       "`external_id,segment,clip_id,page_url`, one row per placed viewer")), **errors(404)},
                   tags=["recipients"],
                   description="Every placed viewer with their segment, their clip and the URL of their personal "
                               "landing page (no login; revocable). A viewer without a variant yet is given one, "
                               "as their first view would, so the page plays the clip listed here.")
    def get(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        return recipients_csv_response(campaign=campaign, request=request)
