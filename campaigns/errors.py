"""Domain errors raised by services; the API and the dashboard turn each into its answer.

Validation problems are Django's ``ValidationError`` (its message dict names the fields).
"""


class ServiceError(Exception):
    """A refusal that the caller can show as it is: what was wrong and what is allowed."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class Conflict(ServiceError):
    """The object is in a state that does not allow this (a decided clip, a finished job)."""

    code = "conflict"
    status = 409


class TooLarge(ServiceError):
    code = "too_large"
    status = 413


class UnsupportedMedia(ServiceError):
    code = "unsupported_media"
    status = 415


class OverBudget(ServiceError):
    """A job that would cost more than one job may (compute or memory; services.fleet)."""

    code = "over_budget"
    status = 400


class TooManyJobs(ServiceError):
    """An organization that already holds as many gpu jobs as it may."""

    code = "too_many_jobs"
    status = 429


class NotFound(ServiceError):
    code = "not_found"
    status = 404


# --- the error envelope ---------------------------------------------------------------------------
# One answer for a refusal, whoever asks: the API (campaigns.api.errors) and the dashboard's JSON
# calls (campaigns.dashboard.context) both send `{"error": {"code", "message", "details"}}`.

PERMISSION_DENIED_MESSAGE = "You do not have permission to perform this action."


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# Keys for errors about the whole object rather than one field: their messages stand alone.
WHOLE_OBJECT_KEYS = ("non_field_errors", "__all__")


def flatten(detail) -> str:
    """Nested field errors as one sentence: `field: message; other: message`."""
    if isinstance(detail, dict):
        return "; ".join(flatten(v) if k in WHOLE_OBJECT_KEYS else f"{k}: {flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(flatten(v) for v in detail)
    return str(detail)


def error_payload(exc: Exception) -> tuple[int, dict] | None:
    """The status and envelope for a refusal from a service (a ServiceError, Django's
    ValidationError naming its fields, or PermissionDenied); None for anything else."""
    from django.core.exceptions import PermissionDenied, ValidationError

    if isinstance(exc, ServiceError):
        return exc.status, error_body(exc.code, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return 400, error_body("invalid", flatten(details), details)
    if isinstance(exc, PermissionDenied):
        return 403, error_body("permission_denied", str(exc) or PERMISSION_DENIED_MESSAGE)
    return None
