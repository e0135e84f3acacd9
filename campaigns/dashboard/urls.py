"""Dashboard URLs: pages for people, scoped to the organization chosen in the session."""
from django.urls import path

from campaigns.dashboard.views import brands, campaigns, edits, home, jobs, recipients, reviews, webhooks

app_name = "dashboard"

urlpatterns = [
    path("", home.home, name="home"),
    path("organization/", home.org_switch, name="org-switch"),
    path("brands/", brands.brand_list, name="brand-list"),
    path("brands/new/", brands.brand_create, name="brand-create"),
    path("brands/<int:brand_id>/", brands.brand_detail, name="brand-detail"),
    path("brands/<int:brand_id>/edit/", brands.brand_edit, name="brand-edit"),
    path("brands/<int:brand_id>/assets/", brands.asset_upload, name="asset-upload"),
    path("brands/<int:brand_id>/assets/grid/", brands.brand_assets, name="brand-assets"),
    path("brands/<int:brand_id>/assets/<int:asset_id>/delete/", brands.asset_delete, name="asset-delete"),
    path("brands/<int:brand_id>/train/", brands.brand_train, name="brand-train"),
    path("brands/<int:brand_id>/training/", brands.brand_training, name="brand-training"),
    path("campaigns/", campaigns.campaign_list, name="campaign-list"),
    path("campaigns/new/", campaigns.campaign_create, name="campaign-create"),
    path("campaigns/<int:campaign_id>/", campaigns.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/generate/", campaigns.campaign_generate, name="campaign-generate"),
    path("campaigns/<int:campaign_id>/status/", campaigns.campaign_status, name="campaign-status"),
    path("campaigns/<int:campaign_id>/progress/", campaigns.campaign_progress, name="campaign-progress"),
    path("campaigns/<int:campaign_id>/segments/<int:segment_id>/setting/", campaigns.segment_setting,
         name="segment-setting"),
    path("campaigns/<int:campaign_id>/recipients/", recipients.recipients_upload, name="recipients-upload"),
    path("campaigns/<int:campaign_id>/recipients.csv", recipients.recipients_export, name="recipients-export"),
    path("clips/<int:clip_id>/", edits.clip_detail, name="clip-detail"),
    path("clips/<int:clip_id>/edit/", edits.clip_edit, name="clip-edit"),
    path("clips/<int:clip_id>/edit-jobs/", edits.clip_edit_jobs_panel, name="clip-edit-jobs"),
    path("review/", reviews.review_queue, name="review-queue"),
    path("review/bulk/", reviews.review_bulk, name="review-bulk"),
    path("review/audit/", reviews.review_audit, name="review-audit"),
    path("review/<int:clip_id>/", reviews.review_decide, name="review-decide"),
    path("jobs/", jobs.job_list, name="job-list"),
    path("jobs/<int:job_id>/cancel/", jobs.job_cancel, name="job-cancel"),
    path("webhooks/", webhooks.webhook_list, name="webhook-list"),
    path("webhooks/<int:endpoint_id>/", webhooks.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:endpoint_id>/test/", webhooks.webhook_test, name="webhook-test"),
    path("webhooks/<int:endpoint_id>/delete/", webhooks.webhook_delete, name="webhook-delete"),
]
