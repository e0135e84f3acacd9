"""Logs: one JSON object per line in production, readable lines for developers (LOG_FORMAT).

Every line, from structlog or from a plain ``logging`` call, carries what is bound for the work it
belongs to: ``request_id`` for a web request (django-structlog's RequestMiddleware), ``task_id`` and
the task's id arguments (``job_id``, ``profile_id``, ``campaign_id``) in a Celery worker
(django-structlog's worker step plus ``bind_task_ids`` below). Viewers' external ids are hashed in
both kinds of line (campaigns/log_privacy.py): structlog events by a processor, plain records by the
handler's filter.
"""
import inspect
import logging
import logging.config

import structlog
import structlog.tracebacks

from campaigns.log_privacy import redact_event_dict

FORMATS = ("json", "console")

# Added to every line, structlog's own and plain logging's (foreign_pre_chain), before rendering.
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def request_id_of_the_record(logger, method_name: str, event_dict: dict) -> dict:
    """Django logs a 4xx/5xx response ("Not Found: /path") after the middleware has unbound the
    request's context; the request rides on the record, with the id remembered on it."""
    request = getattr(event_dict.get("_record"), "request", None)
    request_id = getattr(request, "log_request_id", None)
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def configure_structlog() -> None:
    """structlog hands its events to the standard logging handlers (settings.LOGGING) to render."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            redact_event_dict,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def formatters() -> dict:
    """LOGGING["formatters"]: one per LOG_FORMAT; the handler names the one in use."""
    def formatter(*renderers) -> dict:
        return {
            "()": structlog.stdlib.ProcessorFormatter,
            # Not ExtraAdder: a record's extras include Django's request object, whose repr holds
            # the raw path (and so external ids).
            "foreign_pre_chain": [*_SHARED, request_id_of_the_record],
            "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        }

    # Tracebacks without the frames' local variables: those hold requests, profiles and secrets.
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
    return {
        "json": formatter(tracebacks, structlog.processors.JSONRenderer()),
        "console": formatter(
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)),
    }


def log_format(value: str) -> str:
    if value not in FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}; got {value!r}.")
    return value


# --- Celery workers ----------------------------------------------------------------------------

def bind_task_ids(sender=None, signal=None, task=None, logger=None, **kwargs) -> None:
    """Bind a task's id arguments by name (a job task's ``job_id``, ``profile_id``...) for its lines.

    Called by django-structlog's task_prerun receiver, after it has cleared the previous task's
    context and bound ``task_id``.
    """
    if task is None:
        return
    try:
        names = list(inspect.signature(task.run).parameters)
    except (TypeError, ValueError):
        return
    request = task.request
    values = dict(zip(names, request.args or ()))
    values.update(request.kwargs or {})
    structlog.contextvars.bind_contextvars(
        **{name: value for name, value in values.items() if name.endswith("_id") and isinstance(value, (int, str))})


def setup_worker_logging(**kwargs) -> None:
    """Celery's setup_logging: use settings.LOGGING instead of Celery's own root handler."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def connect_celery(app) -> None:
    """Worker lines carry task and job ids; published tasks carry the request id that sent them."""
    from celery.signals import setup_logging
    from django_structlog.celery import signals as structlog_signals
    from django_structlog.celery.steps import DjangoStructLogInitStep

    setup_logging.connect(setup_worker_logging, weak=False)
    app.steps["worker"].add(DjangoStructLogInitStep)
    structlog_signals.bind_extra_task_metadata.connect(bind_task_ids, weak=False)


# --- Web requests --------------------------------------------------------------------------------

def bind_request_metadata(sender=None, request=None, logger=None, log_kwargs=None, **kwargs) -> None:
    """The client address as the rate limits see it (campaigns/client_ip.py): X-Forwarded-For only
    behind a declared proxy, not the first header a client writes. And the request id, remembered
    on the request for the lines logged after its context is gone."""
    from campaigns.client_ip import client_ip

    structlog.contextvars.bind_contextvars(ip=client_ip(request))
    request.log_request_id = structlog.contextvars.get_contextvars().get("request_id")


def add_request_id_header(sender=None, request=None, response=None, logger=None, log_kwargs=None, **kwargs) -> None:
    """Answer with the request's id, so a user's report can be matched to its log lines."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and response is not None:
        response["X-Request-ID"] = request_id


def connect_django() -> None:
    from django_structlog import signals as request_signals

    request_signals.bind_extra_request_metadata.connect(bind_request_metadata, weak=False)
    request_signals.bind_extra_request_finished_metadata.connect(add_request_id_header, weak=False)
