"""Request bodies past the limit are refused from Content-Length, before a byte of them is read.

A JSON or form body may be JSON_MAX_BYTES; a multipart upload ASSET_MAX_BYTES plus
UPLOAD_OVERHEAD_BYTES for its form fields and boundaries. Under /api/ the refusal is the JSON
envelope (413 ``too_large``), elsewhere a short text. A body sent without Content-Length (chunked)
is bounded where it is read: the JSON parser stops at its limit, and Django's upload handlers
write to disk, where the asset service refuses the file by size. The proxy in front should refuse
the same sizes (see infra/).
"""
from django.conf import settings
from django.http import HttpResponse, JsonResponse

from campaigns.errors import error_body


def body_limit(content_type: str) -> int:
    if content_type.startswith("multipart/"):
        return settings.ASSET_MAX_BYTES + settings.UPLOAD_OVERHEAD_BYTES
    return settings.JSON_MAX_BYTES


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            limit = body_limit(request.META.get("CONTENT_TYPE", ""))
            if length > limit:
                return self.refuse(request, length, limit)
        return self.get_response(request)

    @staticmethod
    def refuse(request, length: int, limit: int):
        message = f"The request body is {length} bytes; at most {limit} are accepted here."
        if request.path.startswith("/api/"):
            response = JsonResponse(error_body("too_large", message, {"max_bytes": limit}), status=413)
        else:
            response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return response
