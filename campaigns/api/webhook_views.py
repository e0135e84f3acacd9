"""Webhook endpoints (API v1.1, "Webhooks"): create, list, delete, rotate the secret, test, delivery log."""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from campaigns import selectors, services
from campaigns.api.views import ManageView, errors
from campaigns.api.webhook_serializers import (
    WebhookDeliveryEnvelopeSerializer,
    WebhookDeliverySerializer,
    WebhookInSerializer,
    WebhookSerializer,
    WebhookWithSecretSerializer,
)

DELIVERIES_SHOWN = 100


class WebhookListCreateView(ManageView):
    @extend_schema(
        request=WebhookInSerializer, responses={201: WebhookWithSecretSerializer, **errors(400)}, tags=["webhooks"],
        description="Register an endpoint for the listed event types. The answer carries the signing `secret` "
                    "(`whsec_…`), shown only here. A URL that is not https://, or whose host resolves to a "
                    "private, loopback or link-local address: 400 naming `url`.",
    )
    def post(self, request):
        data = WebhookInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(organization=self.organization, **data.validated_data)
        return Response(WebhookWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: WebhookSerializer(many=True), **errors()}, tags=["webhooks"],
                   description="The organization's endpoints, newest first, without their secrets.")
    def get(self, request):
        return Response(WebhookSerializer(selectors.webhook_endpoint_list(organization=self.organization),
                                          many=True).data)


class WebhookDetailView(ManageView):
    @extend_schema(request=None, responses={204: None, **errors(404)}, tags=["webhooks"],
                   description="Delete the endpoint and its delivery log; nothing more is sent to it.")
    def delete(self, request, webhook_id: int):
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=webhook_id)
        services.webhook_endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateView(ManageView):
    @extend_schema(request=None, responses={200: WebhookWithSecretSerializer, **errors(404)}, tags=["webhooks"],
                   description="A new signing secret, shown only in this answer. For 24 hours deliveries carry two "
                               "signatures (new and old secret) so the receiver can switch without losing events.")
    def post(self, request, webhook_id: int):
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=webhook_id)
        endpoint = services.webhook_endpoint_rotate(endpoint=endpoint)
        return Response(WebhookWithSecretSerializer(endpoint).data)


class WebhookTestView(ManageView):
    @extend_schema(request=None, responses={202: WebhookDeliveryEnvelopeSerializer, **errors(404)},
                   tags=["webhooks"],
                   description="Send a `webhook.test` event to this endpoint; follow it in the delivery log.")
    def post(self, request, webhook_id: int):
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=webhook_id)
        delivery = services.webhook_endpoint_test(endpoint=endpoint)
        return Response({"delivery": WebhookDeliverySerializer(delivery).data}, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveriesView(ManageView):
    @extend_schema(responses={200: WebhookDeliverySerializer(many=True), **errors(404)}, tags=["webhooks"],
                   description=f"The endpoint's latest {DELIVERIES_SHOWN} deliveries, newest first: event id "
                               "(`webhook-id`), type, status, attempts, last status code and error, next retry.")
    def get(self, request, webhook_id: int):
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=webhook_id)
        deliveries = selectors.webhook_delivery_list_for_endpoint(endpoint=endpoint)[:DELIVERIES_SHOWN]
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)
