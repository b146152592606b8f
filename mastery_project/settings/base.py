"""Settings shared by every environment, read from the environment (12-factor).

Nothing here has a production secret default: `production.py` requires them.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_prometheus",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "mastery",
    "ingest",
    "analytics",
    "compliance",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "mastery_project.correlation.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "mastery_project.security.SecurityHeadersMiddleware",
    "mastery_project.errors.ApiEnvelopeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "mastery_project.urls"
WSGI_APPLICATION = "mastery_project.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
    "DB_CONNECT_TIMEOUT", default=5
)
# A streaming replica for the analytics reads over the history (history, cohort comparison,
# back-test, admin charts), when DATABASE_REPLICA_URL names one: mastery_project.db_router.
# Reads inside a transaction on the primary and every write stay on the primary.
if env("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db_url("DATABASE_REPLICA_URL")
    for key in ("ENGINE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS"):
        DATABASES["replica"][key] = DATABASES["default"][key]
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DB_CONNECT_TIMEOUT", default=5
    )
DATABASE_ROUTERS = ["mastery_project.db_router.ReplicaRouter"]

REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="mastery"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
}

AUTH_USER_MODEL = "mastery.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mastery_project.authentication.MasteryJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["mastery_project.renderers.OrjsonRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "mastery_project.renderers.JsonFirstNegotiation",
    "DEFAULT_PARSER_CLASSES": ["mastery_project.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "mastery_project.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "mastery_project.schema.MasteryAutoSchema",
    "DEFAULT_METADATA_CLASS": "mastery_project.metadata.ApiMetadata",
    "EXCEPTION_HANDLER": "mastery_project.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Mastery Engine API",
    "DESCRIPTION": "Per-student, per-topic mastery tracking. Errors use one envelope: "
    '`{"error": {"code", "message", "details"}}`.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from this deployment (no CDN): works offline and under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BatchJobStatusEnum": "analytics.models.batch.BatchJob.Status",
        "BatchJobPriorityEnum": "analytics.models.batch.BatchJob.Priority",
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env.int("JWT_REFRESH_HOURS", default=24)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default=""),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Checked claims, and 401 for a token whose user is gone (see mastery_project.authentication).
    "AUTH_TOKEN_CLASSES": ("mastery_project.authentication.MasteryAccessToken",),
    "TOKEN_REFRESH_SERIALIZER": "mastery_project.authentication.MasteryTokenRefreshSerializer",
}

# How long a process keeps the user a token names before reading it again: a user deactivated
# or deleted in another process (or by a bulk update) is refused within this many seconds.
AUTH_USER_CACHE_SECONDS = env.int("AUTH_USER_CACHE_SECONDS", default=30)

# Optional: also accept RS256 tokens of an external issuer (SSO). All three are required
# together; the claim below names an existing local user, whose role applies.
JWT_EXTERNAL_PUBLIC_KEY = env("JWT_EXTERNAL_PUBLIC_KEY", default="").replace("\\n", "\n")
JWT_EXTERNAL_ISSUER = env("JWT_EXTERNAL_ISSUER", default="")
JWT_EXTERNAL_AUDIENCE = env("JWT_EXTERNAL_AUDIENCE", default="")
JWT_EXTERNAL_USERNAME_CLAIM = env("JWT_EXTERNAL_USERNAME_CLAIM", default="sub")
JWT_EXTERNAL_LEEWAY_SECONDS = env.int("JWT_EXTERNAL_LEEWAY_SECONDS", default=30)
if JWT_EXTERNAL_PUBLIC_KEY and not (JWT_EXTERNAL_ISSUER and JWT_EXTERNAL_AUDIENCE):
    raise ImproperlyConfigured("JWT_EXTERNAL_PUBLIC_KEY needs JWT_EXTERNAL_ISSUER and _AUDIENCE.")

# --- Browser clients (CORS, django-cors-headers) --------------------------------------
# The middleware sits right after SecurityMiddleware: plain HTTP is redirected before a
# preflight is answered, and every answer further in (the NUL refusal, the envelope's 413,
# the views) carries the CORS headers a browser needs to read it. Only /api/ is shared:
# /health, /ready and /metrics are for probes and Prometheus, not browsers, and the admin
# is a same-origin session site. Tokens are bearer headers, never cookies: no credentials
# mode. None allowed unless listed (production lists the front ends' origins).
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("DELETE", "GET", "OPTIONS", "POST", "PUT")
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "x-request-id", "x-correlation-id")
CORS_EXPOSE_HEADERS = ("X-Request-ID", "Retry-After")
CORS_PREFLIGHT_MAX_AGE = env.int("CORS_PREFLIGHT_MAX_AGE", default=86400)

# --- Background tasks (django-tasks) ---------------------------------------------------
# TASKS_BACKEND=db (the default): every task is a row in PostgreSQL, run by `run_worker`.
# TASKS_BACKEND=rq: the default backend is RQ, with Redis as the broker (run by
# `manage.py rqworker default --with-scheduler`); batch jobs stay on the database backend
# (BATCH_TASKS_BACKEND, run by `run_worker`) for what RQ does not give them: priorities,
# an enqueue that commits with the submitting transaction, and the task row the reaper
# fences on.
TASKS_BACKEND = env("TASKS_BACKEND", default="db")
if TASKS_BACKEND == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    BATCH_TASKS_BACKEND = "default"
elif TASKS_BACKEND == "rq":
    TASKS = {
        "default": {"BACKEND": "django_tasks_rq.RQBackend"},
        "batch": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    }
    BATCH_TASKS_BACKEND = "batch"
    INSTALLED_APPS.append("django_rq")  # its `rqworker` command
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be db or rq, not {TASKS_BACKEND!r}.")
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env.int("RQ_JOB_TIMEOUT", default=3600)}
}
# Batch jobs (SPEC §3.4): students per chunk (each chunk is one transaction and one
# heartbeat); a running job whose heartbeat is older than the lease has lost its worker and
# is re-queued by the reaper (`run_worker`, every BATCH_JOB_REAP_SECONDS), or failed once
# it has been tried BATCH_JOB_MAX_ATTEMPTS times. Unfinished jobs per submitter are capped.
BATCH_JOB_CHUNK = env.int("BATCH_JOB_CHUNK", default=1000)
BATCH_JOB_LEASE_SECONDS = env.int("BATCH_JOB_LEASE_SECONDS", default=30)
BATCH_JOB_REAP_SECONDS = env.int("BATCH_JOB_REAP_SECONDS", default=5)
BATCH_JOB_MAX_ATTEMPTS = env.int("BATCH_JOB_MAX_ATTEMPTS", default=3)
BATCH_JOB_OPEN_PER_SUBMITTER = env.int("BATCH_JOB_OPEN_PER_SUBMITTER", default=20)
BATCH_RESULTS_PAGE_SIZE = env.int("BATCH_RESULTS_PAGE_SIZE", default=100)

# --- Kafka -----------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS")
KAFKA_GROUP_ID = env("KAFKA_GROUP_ID", default="mastery-engine")
KAFKA_EVENTS_TOPIC = env("KAFKA_EVENTS_TOPIC", default="learning.events")
KAFKA_DLQ_TOPIC = env("KAFKA_DLQ_TOPIC", default="mastery.dlq")
KAFKA_EVENTS_PARTITIONS = env.int("KAFKA_EVENTS_PARTITIONS", default=6)
# librdkafka's default (45 s) makes a group join on the embedded broker take ~23 s.
KAFKA_SESSION_TIMEOUT_MS = env.int("KAFKA_SESSION_TIMEOUT_MS", default=6000)
KAFKA_CONSUMER_METRICS_PORT = env.int("KAFKA_CONSUMER_METRICS_PORT", default=9101)
KAFKA_CONSUMER_METRICS_ADDR = env("KAFKA_CONSUMER_METRICS_ADDR", default="127.0.0.1")
KAFKA_CONSUMER_BATCH_SIZE = env.int("KAFKA_CONSUMER_BATCH_SIZE", default=2000)
# Largest event (message value) the consumer parses; a larger one is rejected as too_large
# and dead-lettered. The default leaves ~100 kB under the DLQ limit for key and headers, so
# every rejected event within the cap is dead-lettered whole.
KAFKA_MAX_EVENT_BYTES = env.int("KAFKA_MAX_EVENT_BYTES", default=900_000)
# The dead-letter producer's message.max.bytes (librdkafka's default, under Apache Kafka's
# broker default of 1,048,588): a letter over it goes out as its first bytes, marked truncated.
KAFKA_DLQ_MESSAGE_MAX_BYTES = env.int("KAFKA_DLQ_MESSAGE_MAX_BYTES", default=1_000_000)

# --- Domain ----------------------------------------------------------------------------
MASTERY_WEIGHTS = env.json(
    "MASTERY_WEIGHTS",
    default={"completion": 0.4, "quiz": 0.3, "quality": 0.2, "consistency": 0.1},
)
MASTERY_DEFAULT_EXERCISES_TOTAL = env.int("MASTERY_DEFAULT_EXERCISES_TOTAL", default=10)
RATE_LIMIT_MASTERY = env("RATE_LIMIT_MASTERY", default="50/m")
# After Redis failed under the rate limit, how long a process lets calls through unmetered
# without asking it again (mastery_project.ratelimit.Breaker).
RATE_LIMIT_REDIS_RETRY_SECONDS = env.int("RATE_LIMIT_REDIS_RETRY_SECONDS", default=5)
# A next-week prediction below this flags the student for intervention (SPEC §3.1).
PREDICTION_INTERVENTION_BELOW = env.float("PREDICTION_INTERVENTION_BELOW", default=0.5)
# How long a prediction stays cached (per student, topic and day) when nothing changes.
PREDICTION_CACHE_SECONDS = env.int("PREDICTION_CACHE_SECONDS", default=3600)
# Reads are audited through a buffer in each web process, written in one COPY at most this
# many milliseconds later (0: in the request, before it answers); a failed write is retried
# every AUDIT_READ_RETRY_SECONDS, and reads are refused (503) once AUDIT_READ_BUFFER_MAX
# entries wait. See README "Privacy, audit and retention" for the durability window.
AUDIT_READ_FLUSH_MS = env.int("AUDIT_READ_FLUSH_MS", default=100)
AUDIT_READ_RETRY_SECONDS = env.int("AUDIT_READ_RETRY_SECONDS", default=1)
AUDIT_READ_BUFFER_MAX = env.int("AUDIT_READ_BUFFER_MAX", default=20_000)
RETENTION_EVENTS_DAYS = env.int("RETENTION_EVENTS_DAYS", default=90)
RETENTION_SNAPSHOTS_DAYS = env.int("RETENTION_SNAPSHOTS_DAYS", default=365)
RETENTION_AUDIT_DAYS = env.int("RETENTION_AUDIT_DAYS", default=365)
RETENTION_BATCH_JOBS_DAYS = env.int("RETENTION_BATCH_JOBS_DAYS", default=30)
RETENTION_PREDICTIONS_DAYS = env.int("RETENTION_PREDICTIONS_DAYS", default=180)
RETENTION_FLAG_FEEDBACK_DAYS = env.int("RETENTION_FLAG_FEEDBACK_DAYS", default=365)
RETENTION_RECOMMENDATIONS_DAYS = env.int("RETENTION_RECOMMENDATIONS_DAYS", default=365)

# --- Recommendations (SPEC §3.2) -------------------------------------------------------
# A component below the threshold gets a recommendation; a topic at or above it is done,
# and unlocks the topics that name it as a prerequisite.
RECOMMENDATION_THRESHOLD = env.float("RECOMMENDATION_THRESHOLD", default=0.7)
# estimated_minutes = steps x the minutes of one step of the action:
# practice, one more distinct exercise;
RECOMMENDATION_MINUTES_PER_EXERCISE = env.int("RECOMMENDATION_MINUTES_PER_EXERCISE", default=15)
# review, revising the topic and taking one more quiz;
RECOMMENDATION_MINUTES_PER_QUIZ = env.int("RECOMMENDATION_MINUTES_PER_QUIZ", default=20)
# refactor, reworking one exercise and resubmitting it for code review;
RECOMMENDATION_MINUTES_PER_REVIEW = env.int("RECOMMENDATION_MINUTES_PER_REVIEW", default=30)
# schedule, one working session on one more day.
RECOMMENDATION_MINUTES_PER_SESSION = env.int("RECOMMENDATION_MINUTES_PER_SESSION", default=25)

# --- Logging ---------------------------------------------------------------------------
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "mastery_project.correlation.CorrelationIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {
            "format": "%(asctime)s %(levelname)-7s [%(correlation_id)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["correlation"],
        },
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "django.server": {"level": "WARNING"},
    },
}

# --- Proxies ---------------------------------------------------------------------------
# How many reverse proxies in front of the app append to X-Forwarded-For (0: trust none).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- Privacy ---------------------------------------------------------------------------
# Key of the HMAC that replaces an erased student's id in the audit log and the erasure
# ledger. Keep it stable: a new key makes earlier erasures unrecognisable.
ERASURE_HASH_KEY = env("ERASURE_HASH_KEY", default="")
# Append-only copy of the erasure ledger, kept apart from the database and its backups so
# that `gdpr_reapply_erasures` can erase again after a restore.
ERASURE_LEDGER_FILE = Path(
    env("ERASURE_LEDGER_FILE", default=str(BASE_DIR / "var" / "erasure-ledger.jsonl"))
)
