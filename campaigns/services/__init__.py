"""Writes: every business operation, shared by the API, the dashboard, the admin and the tasks.

Split by entity; import from here (``from campaigns import services``).
"""
from .accounts import api_key_authenticate, api_key_create, membership_set, organization_get_or_create
from .assets import asset_delete, asset_probe, asset_upload
from .brands import brand_create, brand_update
from .campaigns import campaign_create, campaign_generate, campaign_set_status, model_spec
from .editing import campaign_rescene, clip_edit
from .reviews import clip_review
from .segments import segment_update
from .training import brand_train
from .profiles import profile_delete, profile_upsert
from .recipients import recipient_pages_revoke, recipients_export_rows, recipients_upload
from .serving import clip_for_viewer, event_record
from .webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate,
    webhook_endpoint_test,
    webhook_event_emit,
    webhook_job_finished,
)
from .jobs import JobCancelled, JobHandle, job_cancel, job_create, job_fail, job_run

__all__ = [
    "JobCancelled",
    "JobHandle",
    "api_key_authenticate",
    "api_key_create",
    "asset_delete",
    "asset_probe",
    "asset_upload",
    "brand_create",
    "brand_train",
    "brand_update",
    "campaign_create",
    "campaign_generate",
    "campaign_rescene",
    "campaign_set_status",
    "clip_edit",
    "clip_for_viewer",
    "clip_review",
    "event_record",
    "model_spec",
    "job_cancel",
    "job_create",
    "job_fail",
    "job_run",
    "membership_set",
    "organization_get_or_create",
    "profile_delete",
    "profile_upsert",
    "recipient_pages_revoke",
    "recipients_export_rows",
    "recipients_upload",
    "segment_update",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_rotate",
    "webhook_endpoint_test",
    "webhook_event_emit",
    "webhook_job_finished",
]
