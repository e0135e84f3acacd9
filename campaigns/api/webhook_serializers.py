"""Shapes of the webhook requests and answers (API v1.1, "Webhooks"). The URL rules (https, the
SSRF guard) need a DNS lookup and live in ``campaigns.services.webhooks``, which names `url`."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.services.webhooks import EVENT_TYPES
from generation.limits import MAX_URL_CHARS

URL_HELP = ("where events are POSTed: https:// to a public address (http:// to a loopback or private address only "
            "where the platform runs with WEBHOOK_ALLOW_PRIVATE)")


@extend_schema_field({"type": "string", "format": "uri", "maxLength": MAX_URL_CHARS, "pattern": "^https?://",
                      "description": URL_HELP})
class WebhookUrlField(serializers.CharField):
    """Text only (a number is not a URL); the service checks the rest."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class WebhookInSerializer(serializers.Serializer):
    url = WebhookUrlField(max_length=MAX_URL_CHARS, help_text=URL_HELP)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, max_length=len(EVENT_TYPES),
        help_text="the event types to receive (each at most once); `webhook.test` comes on demand either way",
    )

    def validate_events(self, events: list[str]) -> list[str]:
        if len(set(events)) != len(events):
            raise serializers.ValidationError("each event type may be listed once.")
        return events


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "is_active", "created_at"]


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="`whsec_…`: the signing secret, shown only in this answer (creation "
                                             "or rotation); give it to `standardwebhooks.Webhook(secret).verify`")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True, help_text="null: no answer (timeout, refused connection)")
    error = serializers.CharField(allow_blank=True)
    ms = serializers.IntegerField(help_text="how long the attempt took")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(help_text="the `webhook-id` header: one per event, the same on every attempt")
    history = WebhookAttemptSerializer(many=True, help_text="every attempt, oldest first")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "type", "status", "attempts", "last_status_code", "last_error", "next_retry_at",
                  "delivered_at", "created_at", "history"]
        extra_kwargs = {
            "next_retry_at": {"help_text": "when the next attempt is due; null once delivered or given up"},
            "status": {"help_text": "pending (tries left), delivered (a 2xx answer) or failed (given up after 24 h "
                                    "of retries, or refused by the SSRF guard)"},
        }


class WebhookDeliveryEnvelopeSerializer(serializers.Serializer):
    delivery = WebhookDeliverySerializer()
