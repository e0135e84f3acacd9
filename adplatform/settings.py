"""Settings of the ad-clip platform, read from the environment (see the README's table).

Unset variables give the embedded default: a SQLite file, a broker that needs no server, local
media files and the project's tiny model, all under ``var/``.
"""
import logging
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from adplatform.logs import configure_structlog, log_format
from adplatform.logs import formatters as log_formatters

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# A production process must never run on a key that is in the repository.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production settings (DJANGO_DEBUG off) refuse to start "
            "without one; set DJANGO_SECRET_KEY, or DJANGO_DEBUG=1 for development."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DJANGO_DEBUG-is-on"

# Whether a proxy that sets X-Forwarded-For and X-Forwarded-Proto stands in front of the app. Only then
# are those headers believed (client addresses for lockouts and rate limits, HTTPS detection); a
# client talking to gunicorn directly could write them itself.
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "health_check",  # its `manage.py health_check readyz --no-http` is the workers' readiness probe
    "django_structlog",
    "campaigns",
    "generation",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before host checks and the HTTPS redirect (adplatform/ops.py).
    "adplatform.ops.OpsEndpointsMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Binds a request id to every log line of the request (adplatform/logs.py).
    "django_structlog.middlewares.RequestMiddleware",
    "campaigns.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "campaigns.api.errors.ApiExceptionMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "adplatform.urls"
WSGI_APPLICATION = "adplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web process and the worker write the same file; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Keep connections open between requests (opening one costs more than a clip lookup).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The clip-for-viewer lookup runs as a server-side prepared statement on PostgreSQL; turn off
# behind PgBouncer older than 1.21 in transaction mode.
SERVE_PREPARED_STATEMENTS = env.bool("SERVE_PREPARED_STATEMENTS", default=True)
# k of k-anonymity: a clustered segment holds at least this many viewers and is described only by
# attribute values at least this many of them share (campaigns.services.segmentation).
SEGMENT_MIN_SIZE = max(1, env.int("SEGMENT_MIN_SIZE", default=20))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes, failures kept in the database, so every process sees them): after
# LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is locked out of
# /accounts/login/ and /admin/login/ for LOGIN_LOCKOUT_MINUTES, the right password included.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "campaigns.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "campaigns.client_ip.client_ip"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hant", "繁體中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

# Files: local folder unless a bucket is named, then every file goes to S3 through django-storages.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
# How long a signed file URL (S3 presigned or local signed) stays fetchable.
SIGNED_URL_TTL = timedelta(seconds=env.int("SIGNED_URL_TTL_SECONDS", default=3600))


def s3_storage(*, bucket: str, endpoint_url: str | None, region: str | None,
               access_key: str | None, secret_key: str | None) -> dict:
    """The STORAGES entry for a private S3 bucket whose URLs are signed and expire."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "access_key": access_key,
            "secret_key": secret_key,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": int(SIGNED_URL_TTL.total_seconds()),
            "file_overwrite": False,
            "signature_version": "s3v4",
            "addressing_style": "path",
        },
    }


STORAGES = {
    "default": (
        s3_storage(bucket=AWS_STORAGE_BUCKET_NAME, endpoint_url=AWS_S3_ENDPOINT_URL,
                   region=AWS_S3_REGION_NAME, access_key=AWS_ACCESS_KEY_ID,
                   secret_key=AWS_SECRET_ACCESS_KEY)
        if AWS_STORAGE_BUCKET_NAME
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads: bigger files are refused with 413 before they are stored.
ASSET_MAX_BYTES = env.int("ASSET_MAX_BYTES", default=50 * 1024 * 1024)
ASSET_MAX_PIXELS = env.int("ASSET_MAX_PIXELS", default=40_000_000)
# A clip's frames, and frames x pixels, read from its container before anything is decoded: what
# decoding it (on the cpu queue) may cost. 640 M holds 10 s of 1080p at 30 fps (622 M).
ASSET_MAX_CLIP_FRAMES = env.int("ASSET_MAX_CLIP_FRAMES", default=2000)
ASSET_MAX_CLIP_PIXELS = env.int("ASSET_MAX_CLIP_PIXELS", default=640_000_000)
# A clip still being checked this long after its check began (or was queued) is queued again by the
# workers' watchdog: the worker died or the message was lost. Longer than the check's own time
# limit (11 minutes).
ASSET_CHECK_RETRY_S = env.int("ASSET_CHECK_RETRY_S", default=15 * 60)
ASSET_CHECK_MAX_ATTEMPTS = 3
# Recipients CSV uploads (campaigns.services.recipients): 20 MB holds 100,000 rows of a dozen columns.
RECIPIENTS_MAX_BYTES = env.int("RECIPIENTS_MAX_BYTES", default=20 * 1024 * 1024)
RECIPIENTS_MAX_ROWS = env.int("RECIPIENTS_MAX_ROWS", default=100_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Hostile input (campaigns/middleware.py, campaigns/bounded_json.py): a JSON or form body over
# JSON_MAX_BYTES, or a multipart body over ASSET_MAX_BYTES + UPLOAD_OVERHEAD_BYTES, is refused (413)
# from its Content-Length before it is read; JSON nested deeper than JSON_MAX_DEPTH is a 400.
JSON_MAX_BYTES = env.int("JSON_MAX_BYTES", default=DATA_UPLOAD_MAX_MEMORY_SIZE)
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=32)
UPLOAD_OVERHEAD_BYTES = 1024 * 1024

# The cache holds the rate-limit counters. Every production process must count in one place (Redis:
# CACHE_URL=rediscache://host:6379/1), or each gunicorn worker and pod would allow the full rate on
# its own; so production refuses to start without CACHE_URL. Development defaults to process memory.
if not DEBUG and not env.str("CACHE_URL", default=""):
    raise ImproperlyConfigured(
        "CACHE_URL is not set. Production settings (DJANGO_DEBUG off) need a cache shared by every web "
        "process for rate limits, e.g. CACHE_URL=rediscache://redis:6379/1."
    )
CACHES = {
    "default": env.cache("CACHE_URL", default="locmemcache://adplatform")
}

# Celery: JSON only, late acks so a dead worker's job is redelivered, one GPU job at a time.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded default's broker: message files in a folder (BROKER_DIR) that every process
    # of this machine shares.
    _broker_dir = Path(env.str("BROKER_DIR", default=str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # With Redis and acks_late an unacked task is redelivered after this long: it must exceed the
    # longest job (LoRA training's hard limit below), or a running job would be handed out twice.
    # Ten priority levels, 0 served first: fair dispatch between organizations (campaigns.services.fleet).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=4 * 3600),
                                       "priority_steps": list(range(10)), "sep": ":"}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# A task's name begins with its queue (see adplatform/celery.py), so the web process can enqueue
# by name without importing the task's code and still reach the right workers.
CELERY_TASK_ROUTES = {"gpu.*": {"queue": "gpu"}, "cpu.*": {"queue": "cpu"}}
# Generous defaults; each task states its own limits beside it.
CELERY_TASK_SOFT_TIME_LIMIT = 30 * 60
CELERY_TASK_TIME_LIMIT = 35 * 60
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Only with `celery -A adplatform beat` running: re-wakes webhook deliveries whose wake-up was lost.
CELERY_BEAT_SCHEDULE = {"webhook-deliver-due": {"task": "cpu.webhook_deliver_due", "schedule": 60.0}}

# Dead workers (campaigns.services.jobs): a running job's worker beats every
# JOB_HEARTBEAT_INTERVAL_S; every worker's watchdog looks every JOB_WATCHDOG_INTERVAL_S and
# requeues a job silent for JOB_HEARTBEAT_TIMEOUT_S, so a dead worker's job runs again within
# about 90 s. A job whose workers died JOB_MAX_ATTEMPTS times fails, saying so.
JOB_HEARTBEAT_INTERVAL_S = env.int("JOB_HEARTBEAT_INTERVAL_S", default=10)
JOB_HEARTBEAT_TIMEOUT_S = env.int("JOB_HEARTBEAT_TIMEOUT_S", default=60)
JOB_WATCHDOG_INTERVAL_S = env.int("JOB_WATCHDOG_INTERVAL_S", default=15)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
# The fleet's limits (campaigns.services.fleet): gpu jobs one organization may hold queued or
# running (more: 429); one job's compute, pixels x frames x clips x steps (the default admits a
# campaign of 32 segments x 8 variants of 1280x720 x 81 frames at 50 steps); the memory of one
# decoded batch of clips (8 variants of 1920x1920 x 257 frames would need 91 GB).
ORG_MAX_GPU_JOBS = env.int("ORG_MAX_GPU_JOBS", default=20)
GENERATION_MAX_JOB_WORK = env.float("GENERATION_MAX_JOB_WORK", default=1e12)
GENERATION_MAX_BATCH_MEMORY_GB = env.float("GENERATION_MAX_BATCH_MEMORY_GB", default=16.0)
# Adapter-affine routing: a brand's jobs go to the gpu worker that holds its LoRA (its own queue,
# Celery's worker-direct queues), up to a backlog of this many there; GENERATION_MAX_ADAPTERS is
# how many adapters one worker's engine keeps loaded.
GPU_ADAPTER_AFFINITY = env.bool("GPU_ADAPTER_AFFINITY", default=True)
GPU_AFFINITY_MAX_BACKLOG = env.int("GPU_AFFINITY_MAX_BACKLOG", default=2)
GENERATION_MAX_ADAPTERS = env.int("GENERATION_MAX_ADAPTERS", default=4)
CELERY_WORKER_DIRECT = True
if JOB_HEARTBEAT_TIMEOUT_S < 3 * JOB_HEARTBEAT_INTERVAL_S:
    raise ImproperlyConfigured(
        f"JOB_HEARTBEAT_TIMEOUT_S ({JOB_HEARTBEAT_TIMEOUT_S}) must be at least 3 x JOB_HEARTBEAT_INTERVAL_S "
        f"({JOB_HEARTBEAT_INTERVAL_S}), or a busy but live worker's job would be handed out twice."
    )

# The generator: a local diffusers folder of a DiT text-to-video pipeline, or "tiny".
GENERATION_MODEL = env.str("GENERATION_MODEL", default="tiny")
# wan, ltx or cogvideox; empty: read from the model folder (set it where the folder is absent).
GENERATION_MODEL_FAMILY = env.str("GENERATION_MODEL_FAMILY", default="")
MODEL_CACHE_DIR = env.path("MODEL_CACHE_DIR", default=VAR_DIR / "models")
GENERATION_CPU_OFFLOAD = env.bool("GENERATION_CPU_OFFLOAD", default=False)
GENERATION_VAE_TILING = env.bool("GENERATION_VAE_TILING", default=False)
GENERATION_STEPS = env.int("GENERATION_STEPS", default=0)  # 0: the model family's default
# The campaign plan (generation/plan.py; README "Cost per clip: the campaign plan"). Off: one
# engine call per segment, every clip the full 2 x steps transformer evaluations.
GENERATION_PLAN = env.bool("GENERATION_PLAN", default=True)
GENERATION_MICRO_BATCH = env.int("GENERATION_MICRO_BATCH", default=0)  # clips per batch; 0: from free memory
# The defaults are the plan `benchmarks/campaign.py` measured at a quarter of the naive work with
# no loss of adherence (and `benchmarks/quality.py`'s platform suite generates with them): MagCache
# and the unconditional pass in the first quarter of the steps only, no shared prefix.
GENERATION_PREFIX_FRACTION = env.float("GENERATION_PREFIX_FRACTION", default=0.0)  # 0: no shared prefix
GENERATION_PREFIX_PROMPT = env.str("GENERATION_PREFIX_PROMPT", default="first")  # first | common
GENERATION_CACHE = env.str("GENERATION_CACHE", default="mag")  # none | first_block | mag | taylorseer
GENERATION_CACHE_THRESHOLD = env.float("GENERATION_CACHE_THRESHOLD", default=0.0)  # 0: the cache's default
GENERATION_GUIDANCE_FRACTION = env.float("GENERATION_GUIDANCE_FRACTION", default=0.25)  # share of steps with CFG
# The camera guide (README "Camera guide"): after this share of the steps a campaign's clips are
# steered onto its camera move (their own first frame carried along it); 0: the prompt's words alone.
GENERATION_CAMERA_GUIDE = env.float("GENERATION_CAMERA_GUIDE", default=0.6)
WORK_DIR = env.path("WORK_DIR", default=VAR_DIR / "work")
# LoRA training writes a resumable checkpoint to storage this often (steps).
LORA_CHECKPOINT_EVERY = env.int("LORA_CHECKPOINT_EVERY", default=50)
# Optional brief expansion by a language model (generation/prompt_expander.py): an OpenAI-compatible
# base URL such as http://127.0.0.1:8080/v1; empty = off. The timeout is the whole call's deadline,
# kept within 1..120 s: a generation job never waits longer on text.
PROMPT_EXPANDER_URL = env.str("PROMPT_EXPANDER_URL", default="")
PROMPT_EXPANDER_MODEL = env.str("PROMPT_EXPANDER_MODEL", default="")
PROMPT_EXPANDER_TIMEOUT = min(120.0, max(1.0, env.float("PROMPT_EXPANDER_TIMEOUT", default=10.0)))

REVIEW_FORBID_OWN_CAMPAIGN = env.bool("REVIEW_FORBID_OWN_CAMPAIGN", default=False)

# /metrics (adplatform/metrics.py) answers only a scraper sending "Authorization: Bearer <METRICS_TOKEN>";
# unset, /metrics is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# /readyz (adplatform/health.py): seconds each check (database, cache, storage, broker) may take
# before it counts as failed; the readiness probe's timeoutSeconds must exceed it (infra/k8s).
READINESS_CHECK_TIMEOUT_S = env.float("READINESS_CHECK_TIMEOUT_S", default=5.0)

# Webhooks (campaigns.services.webhooks): http:// and private, loopback or link-local targets only
# when allowed (development); production webhooks go to public https:// addresses.
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=DEBUG)
# Seconds one delivery attempt may take (connect + answer); a slower receiver counts as a failure.
WEBHOOK_TIMEOUT = min(30.0, max(1.0, env.float("WEBHOOK_TIMEOUT", default=10.0)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["campaigns.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies only (bounded in size, depth and text); the two uploads (assets, recipients) take
    # multipart in their views. A form sent to a JSON endpoint is a 415: DRF reads a form's JSON fields
    # with plain json.loads, past every bound of BoundedJSONParser.
    "DEFAULT_PARSER_CLASSES": ["campaigns.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "campaigns.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["campaigns.api.throttles.ApiKeyRateThrottle"],
    # api_key: per key; anon_ip: requests without a valid key, per client address (campaigns/client_ip.py).
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_RATE_LIMIT", default="6000/min"),
                               "anon_ip": env.str("API_ANON_RATE_LIMIT", default="60/min")},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ad-clip platform API",
    "DESCRIPTION": "Profiles, clips for viewers, events (serve scope); brands, assets, campaigns, "
                   "jobs and review (manage scope). Authenticate with `Authorization: Api-Key <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "campaigns.api.views.body_errors_hook"],
}

# Logs (adplatform/logs.py): one JSON object per line with request and job ids, or readable lines for
# developers; JSON unless DJANGO_DEBUG is on.
LOG_FORMAT = log_format(env.str("LOG_FORMAT", default="console" if DEBUG else "json"))
configure_structlog()
DJANGO_STRUCTLOG_CELERY_ENABLED = True  # a task's lines carry the request id that enqueued it
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False  # bound by adplatform.logs.bind_request_metadata instead
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = BEHIND_PROXY  # the proxy's X-Request-ID, not a client's
# One line per request at INFO (request_finished: path, status, ids); request_started only at DEBUG.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # External ids in any line are replaced by a keyed hash (campaigns/log_privacy.py; the request
    # loggers get the same filter in CampaignsConfig.ready()).
    "filters": {"external_ids": {"()": "campaigns.log_privacy.ExternalIdFilter"}},
    "formatters": log_formatters(),
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["external_ids"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG:
    # Production hardening; `manage.py check --deploy` is clean with these.
    if BEHIND_PROXY:
        # Only a proxy that sets this header itself may be believed; gunicorn exposed directly must not.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
