"""Writes: every business operation, shared by the API, the dashboard, the admin and the tasks.

Split by entity; import from here (``from campaigns import services``).
"""
from .accounts import api_key_authenticate, api_key_create, membership_set, organization_get_or_create
from .brands import brand_create, brand_update
from .jobs import JobCancelled, JobHandle, job_cancel, job_create, job_fail, job_run, job_selftest

__all__ = [
    "JobCancelled",
    "JobHandle",
    "api_key_authenticate",
    "api_key_create",
    "brand_create",
    "brand_update",
    "job_cancel",
    "job_create",
    "job_fail",
    "job_run",
    "job_selftest",
    "membership_set",
    "organization_get_or_create",
]
