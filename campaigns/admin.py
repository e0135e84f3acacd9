"""Django admin for every model: searchable, filterable, and read-only where history must not change."""
from django.contrib import admin

from campaigns import models


class OrgScopedAdmin(admin.ModelAdmin):
    list_filter = ("organization",)
    list_select_related = ("organization",)


@admin.register(models.Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "organization__name")


@admin.register(models.ApiKey)
class ApiKeyAdmin(OrgScopedAdmin):
    list_display = ("prefix", "name", "organization", "scopes", "last_used_at", "revoked_at")
    # Keys are made with `manage.py create_api_key` (which prints the secret once); here only revoked.
    readonly_fields = ("prefix", "hashed_key", "scopes", "last_used_at", "created_at", "organization")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from django.utils import timezone

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


@admin.register(models.Brand)
class BrandAdmin(OrgScopedAdmin):
    list_display = ("name", "organization", "trigger_token", "created_at")
    search_fields = ("name",)


@admin.register(models.BrandAsset)
class BrandAssetAdmin(OrgScopedAdmin):
    list_display = ("id", "brand", "kind", "width", "height", "num_frames", "size_bytes", "created_at")
    list_filter = ("kind", "organization")
    readonly_fields = ("checksum", "size_bytes", "width", "height", "num_frames", "content_type")


@admin.register(models.LoraAdapter)
class LoraAdapterAdmin(OrgScopedAdmin):
    list_display = ("brand", "version", "status", "base_model", "created_at")
    list_filter = ("status", "organization")


@admin.register(models.Campaign)
class CampaignAdmin(OrgScopedAdmin):
    list_display = ("name", "brand", "status", "camera", "num_frames", "width", "height", "fps", "created_at")
    list_filter = ("status", "organization")
    search_fields = ("name", "brief")


@admin.register(models.Segment)
class SegmentAdmin(OrgScopedAdmin):
    list_display = ("name", "campaign", "position", "setting", "setting_source")


@admin.register(models.Profile)
class ProfileAdmin(OrgScopedAdmin):
    list_display = ("external_id", "organization", "embedded_at", "updated_at")
    search_fields = ("external_id",)
    exclude = ("embedding",)


@admin.register(models.Clip)
class ClipAdmin(OrgScopedAdmin):
    list_display = ("id", "campaign", "segment", "variant", "status", "seed", "lora_version", "created_at")
    list_filter = ("status", "organization")
    search_fields = ("prompt",)
    # Decisions go through the review queue so that each one lands in the audit trail.
    readonly_fields = ("status", "decided_at", "prompt", "negative_prompt", "seed", "model", "lora_version")


@admin.register(models.Review)
class ReviewAdmin(OrgScopedAdmin):
    list_display = ("clip", "decision", "reviewer", "api_key", "created_at")
    list_filter = ("decision", "organization")

    # An append-only audit trail.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.Job)
class JobAdmin(OrgScopedAdmin):
    list_display = ("id", "kind", "status", "progress", "attempts", "worker", "created_at", "finished_at")
    list_filter = ("kind", "status", "organization")
    readonly_fields = ("progress", "attempts", "worker_losses", "worker", "routed_to", "started_at", "finished_at",
                       "heartbeat_at")


@admin.register(models.FleetWorker)
class FleetWorkerAdmin(admin.ModelAdmin):
    """The workers as their watchdogs report them (alive while seen in the last minute)."""

    list_display = ("hostname", "seen_at", "adapter_loads")
    readonly_fields = ("hostname", "seen_at", "adapter_loads")
    ordering = ("-seen_at",)

    def has_add_permission(self, request):
        return False


@admin.register(models.Event)
class EventAdmin(OrgScopedAdmin):
    list_display = ("clip", "profile", "type", "created_at")
    list_filter = ("type", "organization")


@admin.register(models.WebhookEndpoint)
class WebhookEndpointAdmin(OrgScopedAdmin):
    list_display = ("url", "organization", "events", "is_active", "created_at")
    list_filter = ("is_active", "organization")
    search_fields = ("url",)
    # The signing secrets are shown to the customer once (API, dashboard), never here.
    exclude = ("secret", "previous_secret")
    readonly_fields = ("organization", "previous_secret_until")

    def has_add_permission(self, request):
        return False  # endpoints are made through the API or the dashboard, which show their secret once


@admin.register(models.WebhookDelivery)
class WebhookDeliveryAdmin(OrgScopedAdmin):
    list_display = ("event_id", "type", "endpoint", "status", "attempts", "last_status_code", "next_retry_at")
    list_filter = ("status", "type", "organization")
    search_fields = ("event_id",)
    readonly_fields = ("endpoint", "organization", "event_id", "type", "payload", "attempts", "last_status_code",
                       "last_error", "last_attempt_at", "delivered_at", "history")
