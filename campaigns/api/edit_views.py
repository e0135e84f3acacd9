"""Edit endpoints (API v1.1): edit one clip, or re-scene an approved clip for every segment."""
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from campaigns import selectors, services
from campaigns.api.edit_serializers import EDIT_IN_SERIALIZERS, CampaignResceneInSerializer
from campaigns.api.serializers import JobEnvelopeSerializer, JobSerializer
from campaigns.api.views import ManageView, errors
from generation.editing import EDIT_KINDS

EDIT_REQUEST = PolymorphicProxySerializer(
    component_name="ClipEditIn", serializers=EDIT_IN_SERIALIZERS, resource_type_field_name="kind", many=False,
)


class ClipEditsView(ManageView):
    @extend_schema(
        request=EDIT_REQUEST, responses={202: JobEnvelopeSerializer, **errors(400, 404, 409)}, tags=["clips"],
        description="Queue an edit of a clip: `rescene` (keep the product in `keep_box`, a new scene from `prompt` "
                    "or from `segment`'s setting), `extend` (`frames` more, `direction`), `loop`, or `connect` "
                    "(a bridge to `other_clip`). The job's clips appear in the campaign's clips with `parent`, "
                    "`edit` and status `pending_review`. A rejected clip: 409.",
    )
    def post(self, request, clip_id: int):
        clip = selectors.clip_get(organization=self.organization, clip_id=clip_id)
        body = request.data if isinstance(request.data, dict) else {}
        kind = body.get("kind")
        serializer_class = EDIT_IN_SERIALIZERS.get(kind) if isinstance(kind, str) else None
        if serializer_class is None:
            raise ValidationError({"kind": [f"kind must be one of {', '.join(EDIT_KINDS)}; got {kind!r}."]})
        data = serializer_class(data=body)
        data.is_valid(raise_exception=True)
        job = services.clip_edit(clip=clip, **data.validated_data)
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class CampaignResceneView(ManageView):
    @extend_schema(
        request=CampaignResceneInSerializer, responses={202: JobEnvelopeSerializer, **errors(400, 404, 409)},
        tags=["campaigns"],
        description="For every segment of the campaign, clips that keep the product inside `keep_box` of an approved "
                    "clip of this campaign and set the rest in the segment's setting. The clip not approved: 409; "
                    "a clip of another campaign: 400 naming `clip`.",
    )
    def post(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        data = CampaignResceneInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.campaign_rescene(campaign=campaign, **data.validated_data)
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)
