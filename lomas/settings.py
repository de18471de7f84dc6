"""Django settings for lomas-django.

One module for every deployment: whatever changes between deployments comes from
the environment (see README, "Configuration"). Values fixed by the lomas wire
protocol are set in code with a comment.
"""

import secrets
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
]

MIDDLEWARE = [
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
# Persistent connections (DATABASE_CONN_MAX_AGE seconds) suit gunicorn's fixed threads; the
# development server starts a thread per request, so the default closes them after each.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _DEFAULT_SQLITE), conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0)
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
LOGIN_REDIRECT_URL = "/admin/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.LomasBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsLomasUser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
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
    "OAUTH_DEVICE_VERIFICATION_URI": env_str("LOMAS_DEVICE_VERIFICATION_URI", "/o/device"),
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
CELERY_TASK_ACKS_LATE = False
# A job's DP library work stops after LOMAS_JOB_TIME_LIMIT s (queries/time_limit.py) and fails cleanly;
# Celery's soft and hard limits are backstops for a worker stuck outside that work.
LOMAS_JOB_TIME_LIMIT = env_int("LOMAS_JOB_SOFT_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = LOMAS_JOB_TIME_LIMIT + 30
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
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
# How long GET /status/<uid> may wait for a running job before answering "in_progress".
LOMAS_STATUS_WAIT_SECONDS = env_float("LOMAS_STATUS_WAIT_SECONDS", 1.0)
# S3 credentials by credentials_name: {"name": {"access_key_id": ..., "secret_access_key": ...}}.
LOMAS_S3_CREDENTIALS = env_json("LOMAS_S3_CREDENTIALS", {})

# --- Logging ------------------------------------------------------------------
LOG_LEVEL = env_str("LOMAS_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("lomas", "accounts", "datasets", "budgets", "queries")
    },
}
