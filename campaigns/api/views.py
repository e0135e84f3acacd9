"""API views: parse, call one service or selector, answer. Scoped to the key's organization."""
from django.db.models import prefetch_related_objects
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.api.auth import HasAnyScope, HasManageScope
from campaigns.api.errors import ErrorSerializer
from campaigns.api.serializers import (
    AssetInSerializer,
    AssetSerializer,
    LoraSerializer,
    TrainInSerializer,
    BrandInSerializer,
    BrandSerializer,
    CampaignInSerializer,
    CampaignSerializer,
    CampaignStatusInSerializer,
    ClipSerializer,
    GenerateInSerializer,
    JobEnvelopeSerializer,
    JobSerializer,
    PresetsSerializer,
    ReviewInSerializer,
    SegmentSerializer,
    SegmentUpdateInSerializer,
)
from campaigns.models import Clip
from generation.personalization import CAMERA_PRESETS, SETTINGS_CATALOGUE

ERRORS = {code: OpenApiResponse(ErrorSerializer, description=text) for code, text in {
    400: "Invalid input; `details` names the fields.",
    401: "No API key or a bad one.",
    403: "The key lacks the needed scope.",
    404: "No such object in this organization.",
    409: "The object's state does not allow this.",
    413: "Too large.",
    415: "Unsupported media type.",
    429: "Rate limited; see Retry-After.",
}.items()}


def errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in (401, 403, 429, *codes)}


def body_errors_hook(result, generator, request, public):
    """Schema postprocessing: every operation that takes a body may also answer 413 (past the size
    limit, refused by campaigns.middleware before any view runs) and 415 (a media type it does not
    parse). Stated once here rather than beside each view, so a new endpoint cannot leave them out."""
    for path in result["paths"].values():
        for operation in path.values():
            if "requestBody" not in operation:
                continue
            for code in (413, 415):
                operation["responses"].setdefault(str(code), {
                    "description": ERRORS[code].description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result


class ManageView(APIView):
    permission_classes = [HasManageScope]

    @property
    def organization(self):
        return self.request.auth.organization


class BrandCreateView(ManageView):
    @extend_schema(request=BrandInSerializer, responses={201: BrandSerializer, **errors(400)}, tags=["brands"])
    def post(self, request):
        data = BrandInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        brand = services.brand_create(organization=self.organization, **data.validated_data)
        return Response(BrandSerializer(brand).data, status=status.HTTP_201_CREATED)


class BrandDetailView(ManageView):
    @extend_schema(responses={200: BrandSerializer, **errors(404)}, tags=["brands"])
    def get(self, request, brand_id: int):
        return Response(BrandSerializer(selectors.brand_get(organization=self.organization, brand_id=brand_id)).data)


class BrandAssetsView(ManageView):
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": AssetInSerializer},
                   responses={201: AssetSerializer, 200: AssetSerializer, **errors(400, 404, 413, 415)},
                   tags=["brands"], description="Upload a brand asset. The same bytes twice answer 200 with "
                                                "the existing asset. An image is decoded here and is `ready`; a "
                                                "clip is measured from its container (refused over "
                                                "ASSET_MAX_CLIP_PIXELS frames x pixels) and is `processing` "
                                                "until a cpu worker has decoded it.")
    def post(self, request, brand_id: int):
        brand = selectors.brand_get(organization=self.organization, brand_id=brand_id)
        data = AssetInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset, created = services.asset_upload(brand=brand, upload=data.validated_data["file"],
                                               caption=data.validated_data["caption"])
        return Response(AssetSerializer(asset, context={"request": request}).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses={200: AssetSerializer(many=True), **errors(404)}, tags=["brands"])
    def get(self, request, brand_id: int):
        brand = selectors.brand_get(organization=self.organization, brand_id=brand_id)
        return Response(AssetSerializer(selectors.asset_list_for_brand(brand=brand), many=True,
                                        context={"request": request}).data)


class BrandTrainView(ManageView):
    @extend_schema(request=TrainInSerializer, responses={202: JobEnvelopeSerializer, **errors(400, 404, 409)},
                   tags=["brands"])
    def post(self, request, brand_id: int):
        brand = selectors.brand_get(organization=self.organization, brand_id=brand_id)
        data = TrainInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.brand_train(brand=brand, **data.validated_data)
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class BrandLorasView(ManageView):
    @extend_schema(responses={200: LoraSerializer(many=True), **errors(404)}, tags=["brands"])
    def get(self, request, brand_id: int):
        brand = selectors.brand_get(organization=self.organization, brand_id=brand_id)
        return Response(LoraSerializer(selectors.lora_list_for_brand(brand=brand), many=True).data)


class JobDetailView(ManageView):
    @extend_schema(responses={200: JobSerializer, **errors(404)}, tags=["jobs"])
    def get(self, request, job_id: int):
        job = selectors.job_get(organization=self.organization, job_id=job_id)
        return Response(JobSerializer(job).data)


class JobCancelView(ManageView):
    @extend_schema(request=None, responses={202: JobEnvelopeSerializer, **errors(404, 409)}, tags=["jobs"])
    def post(self, request, job_id: int):
        job = selectors.job_get(organization=self.organization, job_id=job_id)
        job = services.job_cancel(job=job)
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class CampaignListCreateView(ManageView):
    @extend_schema(request=CampaignInSerializer, responses={201: CampaignSerializer, **errors(400, 404)},
                   tags=["campaigns"])
    def post(self, request):
        data = CampaignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        try:
            brand = selectors.brand_get(organization=self.organization, brand_id=fields.pop("brand"))
        except Http404:
            raise ValidationError({"brand": ["no such brand in this organization."]})
        campaign = services.campaign_create(organization=self.organization, brand=brand, **fields)
        return Response(campaign_answer(campaign), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: CampaignSerializer(many=True), **errors()}, tags=["campaigns"])
    def get(self, request):
        campaigns = selectors.campaign_list(organization=self.organization).prefetch_related(
            selectors.segments_with_size())
        return Response(CampaignSerializer(campaigns, many=True).data)


def campaign_answer(campaign) -> dict:
    """A campaign as the API shows it: its segments with their settings and sizes (one query more)."""
    prefetch_related_objects([campaign], selectors.segments_with_size())
    return CampaignSerializer(campaign).data


class CampaignDetailView(ManageView):
    @extend_schema(responses={200: CampaignSerializer, **errors(404)}, tags=["campaigns"])
    def get(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        return Response(campaign_answer(campaign))


class SegmentDetailView(ManageView):
    @extend_schema(request=SegmentUpdateInSerializer, responses={200: SegmentSerializer, **errors(400, 404)},
                   tags=["campaigns"], description="Rename a segment and/or set its setting (where its clips "
                                                   "take place); a setting set here is the marketer's.")
    def patch(self, request, campaign_id: int, segment_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        segment = selectors.segment_get(campaign=campaign, segment_id=segment_id)
        data = SegmentUpdateInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_update(segment=segment, **data.validated_data)
        return Response(SegmentSerializer(segment).data)


class PresetsView(APIView):
    permission_classes = [HasAnyScope]

    @extend_schema(responses={200: PresetsSerializer, **errors()}, tags=["campaigns"],
                   description="Camera-move presets (a campaign's `camera`) and the settings catalogue that "
                               "segment settings are suggested from. Any key, serve or manage.")
    def get(self, request):
        return Response(PresetsSerializer({
            "camera": [{"key": p.key, "label": p.label, "label_zh": p.label_zh} for p in CAMERA_PRESETS],
            "settings": [{"key": e.key, "phrase": e.phrase, "label_zh": e.label_zh} for e in SETTINGS_CATALOGUE],
        }).data)


class CampaignGenerateView(ManageView):
    @extend_schema(request=GenerateInSerializer, responses={202: JobEnvelopeSerializer, **errors(400, 404, 409)},
                   tags=["campaigns"])
    def post(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        data = GenerateInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.campaign_generate(campaign=campaign, **data.validated_data)
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class CampaignStatusView(ManageView):
    @extend_schema(request=CampaignStatusInSerializer, responses={200: CampaignSerializer, **errors(400, 404, 409)},
                   tags=["campaigns"])
    def post(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        data = CampaignStatusInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_set_status(campaign=campaign, status=data.validated_data["status"])
        return Response(campaign_answer(campaign))


class CampaignClipsView(ManageView):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Clip.Status.values, required=False)],
        responses={200: ClipSerializer(many=True), **errors(400, 404)}, tags=["clips"],
    )
    def get(self, request, campaign_id: int):
        campaign = selectors.campaign_get(organization=self.organization, campaign_id=campaign_id)
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in Clip.Status.values:
            raise ValidationError({"status": [f"status must be one of {', '.join(Clip.Status.values)}; got {wanted!r}."]})
        clips = selectors.clip_list_for_campaign(campaign=campaign, status=wanted)
        return Response(ClipSerializer(clips, many=True, context={"request": request}).data)


class ClipReviewView(ManageView):
    @extend_schema(request=ReviewInSerializer, responses={200: ClipSerializer, **errors(400, 404, 409)},
                   tags=["clips"])
    def post(self, request, clip_id: int):
        clip = selectors.clip_get(organization=self.organization, clip_id=clip_id)
        data = ReviewInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        clip = services.clip_review(clip=clip, api_key=request.auth, **data.validated_data)
        return Response(ClipSerializer(clip, context={"request": request}).data)
