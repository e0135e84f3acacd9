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
