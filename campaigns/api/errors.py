"""The one error envelope of the API: `{"error": {"code", "message", "details"}}`, for every error.

DRF exceptions, domain errors from services, Django validation errors, and Django's own 404/500
for paths under /api/ all end up here; never an HTML page for an API client.
"""
import logging

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from campaigns.errors import error_body, error_payload
from campaigns.errors import flatten as _flatten

logger = logging.getLogger(__name__)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The envelope every error answer carries (for the OpenAPI schema)."""

    error = ErrorBodySerializer()


def _plain(detail):
    """DRF's ErrorDetail trees as plain lists and strings."""
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_plain(v) for v in detail]
    return str(detail)


CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media",
    429: "rate_limited",
}


def exception_handler(exc, context):
    payload = error_payload(exc)  # a refusal from a service: the same answer the dashboard gives
    if payload is not None:
        status_code, body = payload
        return Response(body, status=status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)) and "request" in context:
        # No key or a bad one: counted per client address, 429 past API_ANON_RATE_LIMIT.
        from campaigns.api.throttles import AnonymousIpRateThrottle

        throttle = AnonymousIpRateThrottle()
        if not throttle.allow_request(context["request"], context.get("view")):
            exc = exceptions.Throttled(wait=throttle.wait())

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers (JSON under /api/)

    code = CODES.get(response.status_code, "error")
    details: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        details = _plain(exc.detail) if isinstance(exc.detail, dict) else {"non_field_errors": _plain(exc.detail)}
        message = "Invalid input: " + _flatten(details)
    elif isinstance(exc, exceptions.ParseError):
        code = "malformed_body"
        message = f"The request body could not be parsed: {exc.detail}"
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        message = f"{exc.detail} Send application/json (or multipart/form-data for uploads)."
    elif isinstance(exc, exceptions.Throttled):
        details = {"retry_after_seconds": exc.wait and int(exc.wait + 0.999)}
        message = f"Rate limit exceeded; retry in {details['retry_after_seconds']} s."
    else:
        message = _flatten(exc.detail) if hasattr(exc, "detail") else str(exc)
        if getattr(exc, "detail", None) is not None and getattr(exc.detail, "code", None) not in (None, "error"):
            # DRF's own codes (authentication_failed, not_authenticated…) are more precise.
            if response.status_code in (401,):
                code = exc.detail.code
    response.data = error_body(code, message, details)
    return response


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


# Exempt from CSRF like every DRF view: the API's catch-all for unknown paths (a POST to
# /api/v1/campaigns/-1/recipients included) must answer its JSON 404, not Django's HTML 403 page for a
# missing CSRF cookie. It changes nothing, so there is nothing to forge.
@csrf_exempt
def not_found_view(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("not_found", f"No such endpoint or object: {request.path}"), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error_view(request):
    if _wants_json(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    from django.views.defaults import server_error

    return server_error(request)


def bad_request_view(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


class ApiExceptionMiddleware:
    """An unexpected error under /api/ answers the JSON envelope, in development too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not _wants_json(request) or isinstance(exception, Http404):
            return None
        logger.exception("unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return server_error_view(request)
