"""Viewers' external ids never reach the logs: a logging filter puts a keyed hash in their place.

An external id is the app's name for a person; it shows up in request paths
(``/api/v1/profiles/<id>``) and queries (``?profile=<id>``), and so in gunicorn's access log and in
Django's request logging ("Not Found: /api/v1/profiles/<id>"). The filter rewrites each such id to
``h:<16 hex>``, an HMAC of the (percent-decoded) id keyed by SECRET_KEY: the same viewer gives the
same token, so an operator can still follow one viewer's requests, but the id cannot be read back
or recomputed without the key. Rotating SECRET_KEY unlinks old log lines from new ones.
"""
import logging
import re
from urllib.parse import unquote

from django.utils.crypto import salted_hmac

# A path segment after /profiles/, or the value of a profile= query parameter, up to the next
# separator. Django logs the decoded path, in which an id may hold spaces; the access log quotes the
# raw request line ("GET /path HTTP/1.1"), so a quote or " HTTP/" ends a path segment too.
_IN_PATH = re.compile(r"(/profiles/)((?:(?! HTTP/)[^/?#\"'\n])+)")
_IN_QUERY = re.compile(r"([?&;]profile=)([^&#\s\"']+)")

# Loggers whose records carry request paths. A logger's filter sees the records logged on it, so
# each is named here; campaigns' own loggers go through the console handler's filter (settings).
REQUEST_LOGGERS = ("django.request", "django.server", "django.security.csrf", "gunicorn.access", "gunicorn.error")


def external_id_hash(external_id: str) -> str:
    return "h:" + salted_hmac("campaigns.log_privacy.external_id", unquote(external_id)).hexdigest()[:16]


def redact_external_ids(text: str) -> str:
    text = _IN_PATH.sub(lambda m: m.group(1) + external_id_hash(m.group(2)), text)
    return _IN_QUERY.sub(lambda m: m.group(1) + external_id_hash(m.group(2)), text)


def redact_event_dict(logger, method_name: str, event_dict: dict) -> dict:
    """The same for structlog events (a processor, adplatform/logs.py): every text value, hashed once."""
    return {key: redact_external_ids(value) if isinstance(value, str) else value
            for key, value in event_dict.items()}


class ExternalIdFilter(logging.Filter):
    """Rewrites the record's message with external ids hashed; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A record passes a logger's filter and then a handler's: hash once, not a hash of the hash.
        # A structlog event (its message a dict) was hashed by redact_event_dict already.
        if getattr(record, "external_ids_hashed", False) or isinstance(record.msg, dict):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error report
            return True
        redacted = redact_external_ids(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        record.external_ids_hashed = True
        return True


def install_request_log_filter() -> None:
    """Attach the filter to the request loggers, once (called from the app's ready())."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExternalIdFilter) for f in logger.filters):
            logger.addFilter(ExternalIdFilter())
