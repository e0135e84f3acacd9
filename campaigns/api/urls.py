"""URLs of API v1."""
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from campaigns.api import edit_views, recipient_views, serve_views, vast_views, views, webhook_views
from campaigns.api.errors import not_found_view

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", authentication_classes=[], permission_classes=[]), name="docs"),
    path("brands", views.BrandCreateView.as_view(), name="brand-create"),
    path("brands/<int:brand_id>", views.BrandDetailView.as_view(), name="brand-detail"),
    path("brands/<int:brand_id>/assets", views.BrandAssetsView.as_view(), name="brand-assets"),
    path("brands/<int:brand_id>/train", views.BrandTrainView.as_view(), name="brand-train"),
    path("brands/<int:brand_id>/loras", views.BrandLorasView.as_view(), name="brand-loras"),
    path("campaigns", views.CampaignListCreateView.as_view(), name="campaign-list"),
    path("campaigns/<int:campaign_id>", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<int:campaign_id>/generate", views.CampaignGenerateView.as_view(), name="campaign-generate"),
    path("campaigns/<int:campaign_id>/status", views.CampaignStatusView.as_view(), name="campaign-status"),
    path("campaigns/<int:campaign_id>/clips", views.CampaignClipsView.as_view(), name="campaign-clips"),
    path("campaigns/<int:campaign_id>/segments/<int:segment_id>", views.SegmentDetailView.as_view(),
         name="segment-detail"),
    path("campaigns/<int:campaign_id>/recipients", recipient_views.RecipientsUploadView.as_view(),
         name="campaign-recipients"),
    path("campaigns/<int:campaign_id>/recipients.csv", recipient_views.RecipientsExportView.as_view(),
         name="campaign-recipients-csv"),
    path("presets", views.PresetsView.as_view(), name="presets"),
    path("clips/<int:clip_id>/review", views.ClipReviewView.as_view(), name="clip-review"),
    path("clips/<int:clip_id>/edits", edit_views.ClipEditsView.as_view(), name="clip-edits"),
    path("campaigns/<int:campaign_id>/rescene", edit_views.CampaignResceneView.as_view(), name="campaign-rescene"),
    path("jobs/<int:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
    path("webhooks", webhook_views.WebhookListCreateView.as_view(), name="webhook-list"),
    path("webhooks/<int:webhook_id>", webhook_views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:webhook_id>/rotate", webhook_views.WebhookRotateView.as_view(), name="webhook-rotate"),
    path("webhooks/<int:webhook_id>/test", webhook_views.WebhookTestView.as_view(), name="webhook-test"),
    path("webhooks/<int:webhook_id>/deliveries", webhook_views.WebhookDeliveriesView.as_view(),
         name="webhook-deliveries"),
    # Serve scope: profiles, the clip for a viewer, events; and a health check (no key).
    path("profiles/<str:external_id>", serve_views.ProfileView.as_view(), name="profile-detail"),
    path("campaigns/<int:campaign_id>/clip", serve_views.CampaignClipForViewerView.as_view(), name="campaign-clip"),
    path("events", serve_views.EventCreateView.as_view(), name="event-create"),
    path("campaigns/<int:campaign_id>/vast", vast_views.CampaignVastView.as_view(), name="campaign-vast"),
    path("vast/track", vast_views.VastTrackingView.as_view(), name="vast-tracking"),
    path("health", serve_views.HealthView.as_view(), name="health"),
    # Anything else under /api/v1/ is a JSON 404, in development too (where Django's handler404
    # would show its HTML debug page).
    re_path(r"^.*$", not_found_view),
]
