"""The API's JSON parser: bounded in size (413) and nesting depth (400) before it parses anything, and
refusing text that cannot be stored (400 naming the field)."""
from django.conf import settings
from django.core.exceptions import ValidationError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from campaigns.bounded_json import JsonTooDeep, JsonUnstorableText, json_loads
from campaigns.errors import ServiceError, TooLarge


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSONParser, but it reads at most JSON_MAX_BYTES (a body without Content-Length too)
    and refuses nesting past JSON_MAX_DEPTH before parsing."""

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return None
        limit = settings.JSON_MAX_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise TooLarge(f"a JSON body may be at most {limit} bytes.", details={"max_bytes": limit})
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(body.decode(encoding))
        except JsonTooDeep as exc:
            raise ServiceError(str(exc), code="too_deep", details={"max_depth": exc.limit}) from None
        except JsonUnstorableText as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
