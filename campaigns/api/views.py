"""API views: parse, call one service or selector, answer. Scoped to the key's organization."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.api.auth import HasManageScope
from campaigns.api.errors import ErrorSerializer
from campaigns.api.serializers import BrandInSerializer, BrandSerializer, JobEnvelopeSerializer, JobSerializer

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
