"""Django settings for lomas-django.

One module for every deployment: whatever changes between deployments comes from
the environment (see README, "Configuration"). Values fixed by the lomas wire
protocol are set in code with a comment.
"""

import secrets
from ipaddress import ip_network
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from lomas.env import env_bool, env_float, env_int, env_json, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LOMAS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", default=False)


def _dev_secret(name: str, make: "type[str] | object") -> str:
    """A secret kept in VAR_DIR for development; production must set it explicitly."""
    path = VAR_DIR / name
    if path.exists():
        return path.read_text(encoding="utf-8")
    value = make()  # type: ignore[operator]
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)
    return value


def _rsa_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) is required when DEBUG is off.")
    SECRET_KEY = _dev_secret("dev-secret-key", lambda: secrets.token_urlsafe(50))

OIDC_RSA_PRIVATE_KEY = env_secret("LOMAS_OIDC_RSA_PRIVATE_KEY")
if not OIDC_RSA_PRIVATE_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "LOMAS_OIDC_RSA_PRIVATE_KEY (or LOMAS_OIDC_RSA_PRIVATE_KEY_FILE) is required when DEBUG is off."
        )
    OIDC_RSA_PRIVATE_KEY = _dev_secret("dev-oidc-rsa.pem", _rsa_private_key_pem)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "accounts",
    "datasets",
    "budgets",
    "queries",
    "lomas.console",
]

MIDDLEWARE = [
    # First: counts, times and traces every request (lomas/middleware.py).
    "lomas.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The lomas client joins its base URL and a route with one "/" and POSTs there:
# a redirect to a trailing slash would break it.
APPEND_SLASH = False

ROOT_URLCONF = "lomas.urls"
WSGI_APPLICATION = "lomas.wsgi.application"

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

# --- Database -----------------------------------------------------------------
# DATABASE_URL unset: an SQLite file in VAR_DIR. SQLite writers take the write lock
# at BEGIN (IMMEDIATE) so concurrent writers queue instead of failing on upgrade.
_DEFAULT_SQLITE = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
# PostgreSQL connections persist (DATABASE_CONN_MAX_AGE seconds, checked before reuse): opening
# one costs a server process per request and per job. An SQLite file is opened per request.
_DATABASE_URL = env_str("DATABASE_URL", _DEFAULT_SQLITE)
DATABASES = {
    "default": dj_database_url.parse(
        _DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if _DATABASE_URL.startswith("sqlite") else 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
# Services own their transactions (budgets lock rows inside them); no ATOMIC_REQUESTS.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.UsernameOrEmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
# Researchers land on their portal; a lomas admin without a budget is sent on to the admin console.
LOGIN_REDIRECT_URL = "/portal/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BootstrapAuthentication",
        "accounts.authentication.LomasBearerAuthentication",
        "accounts.authentication.ExternalOIDCAuthentication",
        "accounts.authentication.FreePassAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsLomasUser"],
    # lomas takes JSON bodies only (415 otherwise); the upload routes add multipart (lomas.requests.UPLOAD_PARSERS).
    "DEFAULT_PARSER_CLASSES": ["lomas.requests.LomasJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "lomas.console.browsable.LomasBrowsableAPIRenderer",
    ],
    # Every failure answers in the lomas error shape (spec §1.2).
    "EXCEPTION_HANDLER": "lomas.exception_handler.lomas_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# --- OAuth2 / OpenID Connect provider (django-oauth-toolkit) -----------------
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": OIDC_RSA_PRIVATE_KEY,
    "OAUTH2_VALIDATOR_CLASS": "accounts.oauth.LomasOAuth2Validator",
    "SCOPES": {
        "openid": "OpenID Connect",
        "profile": "Your name",
        "email": "Your email address",
        "offline_access": "Stay signed in (refresh tokens)",
    },
    "DEFAULT_SCOPES": ["openid", "profile", "email", "offline_access"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("LOMAS_ACCESS_TOKEN_EXPIRE_SECONDS", 3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("LOMAS_REFRESH_TOKEN_EXPIRE_SECONDS", 14 * 24 * 3600),
    "PKCE_REQUIRED": False,
    "OAUTH_DEVICE_VERIFICATION_URI": env_str("LOMAS_DEVICE_VERIFICATION_URI", "/o/device/"),
    "DEVICE_FLOW_INTERVAL": env_int("LOMAS_DEVICE_FLOW_INTERVAL", 5),
}
# The public client of lomas-client; every grant it uses is allowed for it (accounts/oauth.py).
LOMAS_OAUTH_CLIENT_ID = "lomas_client"

# --- Celery -------------------------------------------------------------------
# CELERY_BROKER_URL unset: an embedded broker (files in VAR_DIR) and a worker that
# `make run` starts beside the web server. CELERY_TASK_ALWAYS_EAGER runs jobs in-process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = CELERY_TASK_ALWAYS_EAGER
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Acknowledged after the job ran, so a worker killed outright delivers it again (see Crash resistance).
CELERY_TASK_ACKS_LATE = True
# A job's DP library work stops after LOMAS_JOB_TIME_LIMIT s (queries/time_limit.py) and fails cleanly;
# Celery's soft and hard limits are backstops for a worker stuck outside that work.
LOMAS_JOB_TIME_LIMIT = env_int("LOMAS_JOB_SOFT_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = LOMAS_JOB_TIME_LIMIT + 30
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery closes every database connection around every task unless this is set (a new PostgreSQL
# connection cost a small job about 10 ms); lomas/celery.py closes the old ones instead, as Django
# does around a request, so a worker process keeps its connection for DATABASE_CONN_MAX_AGE seconds.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Jobs go to one queue per kind so that cost estimates and dummy runs never wait
# behind long real queries (spec §2.1). A prefix lets several deployments share a broker.
_QUEUE_PREFIX = env_str("LOMAS_QUEUE_PREFIX")
LOMAS_JOB_QUEUES = {kind: f"{_QUEUE_PREFIX}{kind}" for kind in ("query", "dummy", "cost")}
CELERY_TASK_DEFAULT_QUEUE = LOMAS_JOB_QUEUES["query"]

# --- lomas --------------------------------------------------------------------
LOMAS_DATA_DIR = Path(env_str("LOMAS_DATA_DIR", str(VAR_DIR / "data")))
LOMAS_DUMMY_MAX_ROWS = env_int("LOMAS_DUMMY_MAX_ROWS", 100_000)
# Largest request body read, in bytes (Django's default); a larger one is a 400 InvalidQueryException.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("LOMAS_MAX_REQUEST_BYTES", 2_621_440)
# SmartNoise-Synth: most synthetic rows one query may ask for, most training epochs of a GAN synthesizer.
LOMAS_SYNTH_MAX_SAMPLES = env_int("LOMAS_SYNTH_MAX_SAMPLES", 100_000)
LOMAS_SYNTH_MAX_EPOCHS = env_int("LOMAS_SYNTH_MAX_EPOCHS", 300)
# OpenDP: largest polars plan accepted (decoded bytes), and the OpenDP features enabled (the polars
# path needs "contrib"); "honest-but-curious" trusts user code and is never allowed.
LOMAS_OPENDP_MAX_PLAN_BYTES = env_int("LOMAS_OPENDP_MAX_PLAN_BYTES", 1_000_000)
LOMAS_OPENDP_FEATURES = env_list("LOMAS_OPENDP_FEATURES", ["contrib"])
if "honest-but-curious" in LOMAS_OPENDP_FEATURES:
    raise ImproperlyConfigured("LOMAS_OPENDP_FEATURES must not enable honest-but-curious.")
# How long a cost estimate is remembered (seconds; DP costs do not depend on the rows).
LOMAS_COST_CACHE_SECONDS = env_int("LOMAS_COST_CACHE_SECONDS", 3600)
# How long GET /status/<uid> may wait for a running job before answering "in_progress".
LOMAS_STATUS_WAIT_SECONDS = env_float("LOMAS_STATUS_WAIT_SECONDS", 10.0)
# S3 credentials by credentials_name: {"name": {"access_key_id": ..., "secret_access_key": ...}}.
LOMAS_S3_CREDENTIALS = env_json("LOMAS_S3_CREDENTIALS", {})
# SQL_DB datasets' database URLs by credentials name: {"name": "postgresql://user:password@host/db"}.
LOMAS_SQL_CREDENTIALS = env_json("LOMAS_SQL_CREDENTIALS", {})
# Seconds one SQL statement on a SQL_DB dataset may run (PostgreSQL's statement_timeout): by default
# a backstop just after the job's time limit, which interrupts the statement first.
LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS = env_int("LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS", LOMAS_JOB_TIME_LIMIT + 30)

# --- Dex (gRPC user administration) -------------------------------------------
# Dex's gRPC API as host:port; empty = Dex not configured (the dex_* commands then refuse).
LOMAS_DEX_GRPC_TARGET = env_str("LOMAS_DEX_GRPC_TARGET")
# TLS towards Dex: on with LOMAS_DEX_GRPC_TLS (system roots) or a CA file; a client certificate and
# key (both or neither) authenticate us to a Dex that requires mTLS. Empty = plain-text channel.
LOMAS_DEX_GRPC_CA_FILE = env_str("LOMAS_DEX_GRPC_CA_FILE")
LOMAS_DEX_GRPC_CERT_FILE = env_str("LOMAS_DEX_GRPC_CERT_FILE")
LOMAS_DEX_GRPC_KEY_FILE = env_str("LOMAS_DEX_GRPC_KEY_FILE")
LOMAS_DEX_GRPC_TLS = env_bool("LOMAS_DEX_GRPC_TLS", default=bool(LOMAS_DEX_GRPC_CA_FILE or LOMAS_DEX_GRPC_CERT_FILE))
if bool(LOMAS_DEX_GRPC_CERT_FILE) != bool(LOMAS_DEX_GRPC_KEY_FILE):
    raise ImproperlyConfigured("LOMAS_DEX_GRPC_CERT_FILE and LOMAS_DEX_GRPC_KEY_FILE go together.")
# Deadline of one Dex call, in seconds.
LOMAS_DEX_GRPC_TIMEOUT = env_float("LOMAS_DEX_GRPC_TIMEOUT", 10.0)
# bcrypt cost of the password hashes pushed to Dex (Dex accepts 10 to 16 and recommends 12).
LOMAS_DEX_BCRYPT_ROUNDS = env_int("LOMAS_DEX_BCRYPT_ROUNDS", 12)
if not 10 <= LOMAS_DEX_BCRYPT_ROUNDS <= 16:
    raise ImproperlyConfigured("LOMAS_DEX_BCRYPT_ROUNDS must be between 10 and 16 (Dex refuses other costs).")

# --- datasets -----------------------------------------------------------------
# Bytes this machine's columnar dataset copies (and SmartNoise-SQL's SQLite files beside them) may
# take in LOMAS_DATASET_STORE_DIR, counted once for all its processes, and each process's objects
# made from rows (a library's own copy); the least recently used are removed beyond it.
LOMAS_DATASET_CACHE_BYTES = env_int("LOMAS_DATASET_CACHE_BYTES", 4 * 1024**3)
if LOMAS_DATASET_CACHE_BYTES < 0:
    raise ImproperlyConfigured("LOMAS_DATASET_CACHE_BYTES must be 0 or more.")
# A directory of this machine (not shared between hosts) for the columnar copies.
LOMAS_DATASET_STORE_DIR = Path(env_str("LOMAS_DATASET_STORE_DIR", str(VAR_DIR / "datasets")))
# Datasets each worker prepares when it starts (columnar copy, SQLite file, dummy twin); "*" for all.
LOMAS_HOT_DATASETS = env_list("LOMAS_HOT_DATASETS", [])
if not isinstance(LOMAS_S3_CREDENTIALS, dict) or not all(
    isinstance(entry, dict)
    and all(isinstance(entry.get(field), str) for field in ("access_key_id", "secret_access_key"))
    for entry in LOMAS_S3_CREDENTIALS.values()
):
    raise ImproperlyConfigured(
        "LOMAS_S3_CREDENTIALS must map each credentials_name to {access_key_id, secret_access_key[, region_name]}."
    )
if not isinstance(LOMAS_SQL_CREDENTIALS, dict) or not all(
    isinstance(url, str) and url.startswith(("postgresql://", "postgres://")) for url in LOMAS_SQL_CREDENTIALS.values()
):
    raise ImproperlyConfigured("LOMAS_SQL_CREDENTIALS must map each credentials name to a postgresql:// URL.")
if LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS must be positive.")

# --- Crash resistance -----------------------------------------------------------
# A started job holds its row, and a real query its user's query slot, under a lease of this many
# seconds that a heartbeat in the worker renews every LOMAS_JOB_HEARTBEAT_SECONDS while the job runs:
# a job whose whole worker died fails (500) once its lease runs out, and its user may query again.
# (A dead pool process is reported by its worker at once: queries/tasks.py.)
LOMAS_QUERY_LEASE_SECONDS = env_int("LOMAS_QUERY_LEASE_SECONDS", 30)
LOMAS_JOB_HEARTBEAT_SECONDS = env_float("LOMAS_JOB_HEARTBEAT_SECONDS", LOMAS_QUERY_LEASE_SECONDS / 6)
if not 0 < LOMAS_JOB_HEARTBEAT_SECONDS < LOMAS_QUERY_LEASE_SECONDS:
    raise ImproperlyConfigured("LOMAS_QUERY_LEASE_SECONDS must be positive and LOMAS_JOB_HEARTBEAT_SECONDS below it.")
# A submission gives up on an unreachable broker within a few seconds (503) instead of hanging.
LOMAS_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# A pool process loads the DP libraries before it reports up (queries/tasks.py), which takes
# seconds on a busy machine: the process that replaces a dead one must not be killed for it.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 120
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # An unacknowledged job of a dead worker is delivered again after this; a live job is never
        # delivered twice, since it ends (hard time limit) before.
        "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    }

# --- Fair share -----------------------------------------------------------------
# Most jobs of one user in progress at once (queued or running, every kind): a cost estimate or dummy
# query past it is a 400 (real queries keep their one-at-a-time rule). 0 = no limit.
LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER = env_int("LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER", 2)
# Memory a job's DP library work may add to its worker process, in MiB (address space); 0 = no limit.
LOMAS_JOB_MEMORY_MB = env_int("LOMAS_JOB_MEMORY_MB", 4096)
# Longest SQL query accepted (characters).
LOMAS_SQL_MAX_CHARS = env_int("LOMAS_SQL_MAX_CHARS", 10_000)
# DiffPrivLib: the largest value of each parameter that drives a fit's work, in any pipeline step.
LOMAS_DIFFPRIVLIB_MAX_PARAMS = env_json(
    "LOMAS_DIFFPRIVLIB_MAX_PARAMS", {"n_estimators": 100, "max_depth": 15, "max_iter": 1000, "n_clusters": 100}
)
if LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER < 0 or LOMAS_JOB_MEMORY_MB < 0 or LOMAS_SQL_MAX_CHARS <= 0:
    raise ImproperlyConfigured(
        "LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER and LOMAS_JOB_MEMORY_MB must be 0 or more, LOMAS_SQL_MAX_CHARS positive."
    )
if not isinstance(LOMAS_DIFFPRIVLIB_MAX_PARAMS, dict) or not all(
    isinstance(cap, int) and cap > 0 for cap in LOMAS_DIFFPRIVLIB_MAX_PARAMS.values()
):
    raise ImproperlyConfigured("LOMAS_DIFFPRIVLIB_MAX_PARAMS must map parameter names to positive integers.")

# --- Abuse resistance and API docs -------------------------------------------
# Timing protection of DP submissions and job results (lomas server.time_attack; see lomas/timing.py):
# "stall", "jitter", "tick", or empty for none; the magnitude N is in seconds.
LOMAS_TIME_ATTACK_METHOD = env_str("LOMAS_TIME_ATTACK_METHOD").strip().lower()
if LOMAS_TIME_ATTACK_METHOD not in ("", "stall", "jitter", "tick"):
    raise ImproperlyConfigured("LOMAS_TIME_ATTACK_METHOD must be stall, jitter, tick or empty.")
LOMAS_TIME_ATTACK_MAGNITUDE = env_float("LOMAS_TIME_ATTACK_MAGNITUDE", 1.0)
if LOMAS_TIME_ATTACK_MAGNITUDE < 0 or (LOMAS_TIME_ATTACK_METHOD == "tick" and LOMAS_TIME_ATTACK_MAGNITUDE <= 0):
    raise ImproperlyConfigured("LOMAS_TIME_ATTACK_MAGNITUDE must be 0 or more (more than 0 for tick).")
# Per-user submit limit (lomas server.submit_limit): at most LOMAS_SUBMIT_LIMIT DP submissions per user in
# each window of LOMAS_SUBMIT_LIMIT_WINDOW s, beyond that 429; 0 = no limit. The counts live in the cache,
# shared by every web process when it is Redis (LOMAS_CACHE_URL, by default a Redis broker's URL).
LOMAS_SUBMIT_LIMIT = env_int("LOMAS_SUBMIT_LIMIT", 300)
LOMAS_SUBMIT_LIMIT_WINDOW = env_int("LOMAS_SUBMIT_LIMIT_WINDOW", 60)
if LOMAS_SUBMIT_LIMIT < 0 or LOMAS_SUBMIT_LIMIT_WINDOW <= 0:
    raise ImproperlyConfigured("LOMAS_SUBMIT_LIMIT must be 0 or more and LOMAS_SUBMIT_LIMIT_WINDOW positive.")
# Sign-in throttle (lomas/rate_limit.py): LOMAS_SIGN_IN_FAILURE_LIMIT failed password sign-ins (token endpoint, sign-in
# pages) per user name or client address within LOMAS_SIGN_IN_FAILURE_WINDOW s start a cool-down of
# LOMAS_SIGN_IN_COOLDOWN s (429). Behind LOMAS_NUM_PROXIES reverse proxies the client address is read from
# X-Forwarded-For (deploy/nginx.conf is one); 0 trusts REMOTE_ADDR alone.
LOMAS_SIGN_IN_FAILURE_LIMIT = env_int("LOMAS_SIGN_IN_FAILURE_LIMIT", 10)
LOMAS_SIGN_IN_FAILURE_WINDOW = env_int("LOMAS_SIGN_IN_FAILURE_WINDOW", 300)
LOMAS_SIGN_IN_COOLDOWN = env_int("LOMAS_SIGN_IN_COOLDOWN", 300)
LOMAS_NUM_PROXIES = env_int("LOMAS_NUM_PROXIES", 0)
if min(LOMAS_SIGN_IN_FAILURE_LIMIT, LOMAS_SIGN_IN_FAILURE_WINDOW, LOMAS_SIGN_IN_COOLDOWN) <= 0 or LOMAS_NUM_PROXIES < 0:
    raise ImproperlyConfigured("The LOMAS_SIGN_IN_* settings must be positive and LOMAS_NUM_PROXIES 0 or more.")
LOMAS_CACHE_URL = env_str(
    "LOMAS_CACHE_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": LOMAS_CACHE_URL}
        if LOMAS_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
    | {"KEY_PREFIX": f"lomas:{_QUEUE_PREFIX}"}
}
# OpenAPI schema at /api/schema, Swagger UI at /api/docs (served from our static files, no CDN).
INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "lomas.openapi.LomasAutoSchema"
SPECTACULAR_SETTINGS = {
    "TITLE": "lomas-django API",
    "DESCRIPTION": "The lomas wire protocol (lomas-client 0.5.1) and the admin API. Errors answer in the lomas shape.",
    "VERSION": "0.5.1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # Every bearer (built-in, external provider, free pass) is the one "bearer" scheme on the wire.
    "AUTHENTICATION_WHITELIST": [
        "accounts.authentication.LomasBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "ENUM_NAME_OVERRIDES": {"DatabaseTypeEnum": ["PATH_DB"], "CheckEnum": ["ok", "down"]},
    # "Authorize" gets a token from /o/token with the password grant of the public client (lomas/openapi.py).
    "SWAGGER_UI_OAUTH2_CONFIG": {"clientId": LOMAS_OAUTH_CLIENT_ID, "scopes": list(OAUTH2_PROVIDER["SCOPES"])},
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True},
    # Request examples that run on the demo (PENGUIN): lomas/console/schema_examples.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "lomas.console.schema_examples.add_demo_examples",
    ],
}

# --- Observability --------------------------------------------------------------
# GET /metrics answers clients in LOMAS_METRICS_ALLOWED_IPS (addresses or networks) and any client
# sending "Authorization: Bearer <LOMAS_METRICS_TOKEN>". Several processes of a host share their samples
# through PROMETHEUS_MULTIPROC_DIR (lomas/metrics.py); traces go to OTEL_EXPORTER_OTLP_ENDPOINT.
try:
    LOMAS_METRICS_ALLOWED_NETWORKS = [
        ip_network(value, strict=False) for value in env_list("LOMAS_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"LOMAS_METRICS_ALLOWED_IPS: {exc}") from None
LOMAS_METRICS_TOKEN = env_secret("LOMAS_METRICS_TOKEN")
# A host running Celery workers and no web process serves its samples on this port (0: not served).
LOMAS_WORKER_METRICS_PORT = env_int("LOMAS_WORKER_METRICS_PORT", 0)
LOMAS_WORKER_METRICS_ADDRESS = env_str("LOMAS_WORKER_METRICS_ADDRESS", "127.0.0.1")
# Log lines as text ("plain") or one JSON object a line ("json"); both carry the job id and user.
LOMAS_LOG_FORMAT = env_str("LOMAS_LOG_FORMAT", "plain").strip().lower()
if LOMAS_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOMAS_LOG_FORMAT must be plain or json.")

# --- Admin dashboard --------------------------------------------------------------
# Largest data file (bytes) the admin pages accept as an upload into LOMAS_DATA_DIR/uploads.
LOMAS_ADMIN_UPLOAD_MAX_BYTES = env_int("LOMAS_ADMIN_UPLOAD_MAX_BYTES", 200 * 1024 * 1024)

# --- Identity (accounts/authentication.py, accounts/device.py) -----------------
# Bearers of this server's own provider (/o/) are accepted unless this is off.
LOMAS_BUILTIN_OIDC_ENABLED = env_bool("LOMAS_BUILTIN_OIDC_ENABLED", default=True)
# How long a device-flow sign-in may wait for the user's approval.
LOMAS_DEVICE_CODE_EXPIRE_SECONDS = env_int("LOMAS_DEVICE_CODE_EXPIRE_SECONDS", 600)
# An external OpenID Connect provider whose tokens are trusted too (empty: none).
LOMAS_EXTERNAL_OIDC_ISSUER = env_str("LOMAS_EXTERNAL_OIDC_ISSUER")
LOMAS_EXTERNAL_OIDC_DISCOVERY_URL = env_str("LOMAS_EXTERNAL_OIDC_DISCOVERY_URL")  # default: <issuer>/.well-known/...
LOMAS_EXTERNAL_OIDC_AUDIENCE = env_str("LOMAS_EXTERNAL_OIDC_AUDIENCE", "lomas_client")
LOMAS_EXTERNAL_OIDC_MODE = env_str("LOMAS_EXTERNAL_OIDC_MODE", "jwt")  # jwt | userinfo
if LOMAS_EXTERNAL_OIDC_MODE not in ("jwt", "userinfo"):
    raise ImproperlyConfigured("LOMAS_EXTERNAL_OIDC_MODE must be jwt or userinfo.")
LOMAS_EXTERNAL_OIDC_ALGORITHMS = env_list("LOMAS_EXTERNAL_OIDC_ALGORITHMS", ["RS256"])
# Asymmetric algorithms only: "none" and shared-secret HS* would let a token's author pick the key.
if not LOMAS_EXTERNAL_OIDC_ALGORITHMS or not {alg[:2] for alg in LOMAS_EXTERNAL_OIDC_ALGORITHMS} <= {"RS", "PS", "ES"}:
    raise ImproperlyConfigured("LOMAS_EXTERNAL_OIDC_ALGORITHMS must list asymmetric algorithms (e.g. RS256,ES256).")
LOMAS_EXTERNAL_OIDC_USERNAME_CLAIM = env_str("LOMAS_EXTERNAL_OIDC_USERNAME_CLAIM", "name")
# An unknown key id fetches the provider's keys again, at most this often (seconds).
LOMAS_EXTERNAL_OIDC_JWKS_REFRESH_SECONDS = env_float("LOMAS_EXTERNAL_OIDC_JWKS_REFRESH_SECONDS", 30.0)
LOMAS_EXTERNAL_OIDC_TIMEOUT_SECONDS = env_float("LOMAS_EXTERNAL_OIDC_TIMEOUT_SECONDS", 5.0)
LOMAS_EXTERNAL_OIDC_LEEWAY_SECONDS = env_int("LOMAS_EXTERNAL_OIDC_LEEWAY_SECONDS", 0)
# The bootstrap identity (spec §7): this bearer acts as a lomas admin until DELETE /api/bootstrap disables it for
# good (accounts/bootstrap.py); empty: none. At least 16 characters: it is an admin password.
LOMAS_BOOTSTRAP_SECRET = env_secret("LOMAS_BOOTSTRAP_SECRET")
if LOMAS_BOOTSTRAP_SECRET and len(LOMAS_BOOTSTRAP_SECRET) < 16:
    raise ImproperlyConfigured("LOMAS_BOOTSTRAP_SECRET must have at least 16 characters.")
# FreePass: the bearer names the user, unverified. Development only: refused without DEBUG.
LOMAS_FREE_PASS_ENABLED = env_bool("LOMAS_FREE_PASS_ENABLED", default=False)
if LOMAS_FREE_PASS_ENABLED and not DEBUG:
    raise ImproperlyConfigured("LOMAS_FREE_PASS_ENABLED is for development only: it is refused when DEBUG is off.")

# --- Logging ------------------------------------------------------------------
LOG_LEVEL = env_str("LOMAS_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
        "json": {"()": "lomas.logs.JsonFormatter"},
    },
    # Adds the job id, user and trace ids bound in the current request or job (lomas/logs.py).
    "filters": {"context": {"()": "lomas.logs.ContextFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOMAS_LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("lomas", "accounts", "datasets", "budgets", "queries")
    },
}
