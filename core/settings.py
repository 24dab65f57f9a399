"""Settings: one module, in three blocks by owner.

1. Django and core: secret, debug, hosts, applications, database, Redis
   cache, client address behind proxies, security headers, static files,
   CORS and CSP, logging, Silk, the web's /metrics.
2. signup: users and passwords, the per-IP limit, codes, unverified
   accounts, access tokens and login limits, the admin login throttle.
3. messaging: email (SMTP), the outbox and its relay, the worker's periodic
   jobs, the Dramatiq broker and the worker's metrics.

Every environment variable read here is described, with its default, in
docs/configuration.md (the one reference) and listed in .env.example
(core/tests/test_env_example.py checks both). A new setting goes into its
owner's block with its default; its variable into both files.

Defaults are safe for a laptop (SQLite, local Redis, SMTP sink on :1025);
production sets SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and the
EMAIL_* values.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import cast

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.broker_config import broker_settings

BASE_DIR = Path(__file__).resolve().parent.parent


# --- Reading the environment -------------------------------------------------
def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated variable: its items, stripped, empty ones dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _metrics_networks(value: str) -> list[str]:
    import ipaddress

    networks = [n.strip() for n in value.split(",") if n.strip()]
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from exc
    return networks


# =============================================================================
# 1. Django and core
# =============================================================================

# --- Secret, debug, hosts ----------------------------------------------------
DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(or DEBUG=1 for a throw-away key in development)."
        )
    # Per process, as the contract says: a web process and a worker that must
    # agree on code hashes need a shared SECRET_KEY (scripts/serve sets one).
    SECRET_KEY = get_random_secret_key()

# Production is safe by default: with DEBUG off the host names must be given
# (a "*" default answers any Host header: cache poisoning, password-reset
# links to another host). Development (DEBUG=1) still takes any host.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*" if DEBUG else "")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. Set it to the comma-separated host names this "
        "service answers to (or DEBUG=1 in development, which allows any)."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Applications, middleware, templates -------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "core",  # before django_dramatiq: its rundramatiq wraps theirs (log format)
    "django_dramatiq",
    "ninja",  # Swagger UI from local static files, not a CDN
    "corsheaders",
    "csp",
    "axes",  # admin login throttle (per IP and per account)
    "signup",
    "messaging",
]

MIDDLEWARE = [
    "core.middleware.ForwardedProtoFromProxiesMiddleware",
    "core.requestid.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.metrics.RequestMetricsMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # A body the API refuses (not JSON, too large) is answered here, before
    # anything inside (Silk included) reads or records it; chunked bodies are
    # read here. Inside CORS and the request id, so a 415 carries both.
    "core.bodies.ApiBodyMiddleware",
    "core.middleware.ApiJsonErrorsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's login and messages middleware, skipped for /api/ requests
    # (core.middleware._BrowserOnly: the admin's pages need them, the API not).
    "core.middleware.BrowserAuthenticationMiddleware",
    "core.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns a locked-out admin login (axes' signal) into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
ASGI_APPLICATION = "core.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Database ----------------------------------------------------------------
# Persistent connections: a new PostgreSQL connection costs ~8 ms here, a
# quarter of the signup budget. Health checks drop connections that died
# (a restarted server) instead of failing the next request with them.
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 3
    # Behind PgBouncer in transaction pooling mode (scripts/with-pgbouncer), a
    # session lasts one transaction: server-side cursors (named, WITH HOLD) and
    # psycopg's automatic prepared statements would land on another server
    # connection. Persistent connections stay (they are to PgBouncer).
    if env_bool("DATABASE_TRANSACTION_POOLING"):
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker write to one file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the rate-limit cache (and the broker unless BROKER_URL) ----------
# Redis is both, so when it is gone every call must fail fast: short
# timeouts, no client-side retries (redis-py retries 3x with backoff by
# default), and a breaker in front (core.breaker) that skips it for a while.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 0.25)
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 1.0)
REDIS_BREAKER_SECONDS = env_float("REDIS_BREAKER_SECONDS", 5.0)

CACHES = {
    "default": {
        # Django's backend with one Redis client per pool, not one per call.
        "BACKEND": "core.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "payshift",
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
        },
    }
}

# --- Client address behind reverse proxies -----------------------------------
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# X-Forwarded-For is read only from these peers: addresses or networks,
# comma-separated (core.throttles.client_ip). Unset: loopback and private.
TRUSTED_PROXY_IPS = env_list("TRUSTED_PROXY_IPS")

# --- Security headers and cookies --------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
    # HSTS on by default (one year); SECURE_HSTS_SECONDS=0 switches it off.
    # Subdomains and preload are opt-in: they bind hosts beyond this service.
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_COUNT else None

# Content-Security-Policy on every page (the admin, Swagger UI): only our own
# scripts and styles. Inline styles stay allowed: Swagger UI and the admin
# set style attributes. Silk (opt-in, staff) uses inline scripts: exempt.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/silk/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Request bodies ----------------------------------------------------------
# Largest accepted request body (core.bodies): a 4096-character password of
# non-BMP characters sent as \u-escaped surrogate pairs is ~48 KiB; with a
# 254-char email and a 150-char name, every valid body fits in 64 KiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# --- Static files ------------------------------------------------------------
# WhiteNoise serves collectstatic's output (STATIC_ROOT) from gunicorn, with
# DEBUG off too; with DEBUG on it finds files in the apps, no collectstatic.
# Not the manifest storage: it makes every {% static %} fail until
# collectstatic has run, which a test or a fresh checkout has not.
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- CORS (what an adopter's browser needs) ----------------------------------
# Browsers may call the API from these origins only (none by default).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
# WWW-Authenticate: the contract sends it on every 401 (docs/api.md).
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID", "WWW-Authenticate"]
# Only the methods some route takes (core/tests/test_cors.py checks against
# the OpenAPI document).
CORS_ALLOW_METHODS = ("GET", "POST", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = (
    *("accept", "authorization", "content-type", "user-agent", "x-requested-with"),
    *("idempotency-key", "x-request-id"),
)
CORS_PREFLIGHT_MAX_AGE = 3600

# --- Logging -----------------------------------------------------------------
# LOG_FORMAT=text (development) or json (one object per line: web, worker
# and gunicorn alike, see core.logs; core.gunicorn_conf reads it too). Every
# line carries the request id.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (DEBUG only) would print a second, plain copy.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "dramatiq": {"level": "WARNING"},
        # pika logs every failed connection attempt with a traceback (RabbitMQ
        # down: several per enqueue); the service logs the outage once itself.
        "pika": {"level": "CRITICAL"},
    },
}

# --- Silk profiler (opt-in, staff only) --------------------------------------
SILK_ENABLED = env_bool("SILK_ENABLED")
if SILK_ENABLED:
    INSTALLED_APPS.append("silk")
    # Silk's middleware, recording query strings and headers masked (core.profiling).
    SILKY_MIDDLEWARE_CLASS = "core.profiling.silky_middleware"
    MIDDLEWARE.insert(MIDDLEWARE.index("core.bodies.ApiBodyMiddleware") + 1, SILKY_MIDDLEWARE_CLASS)
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True  # staff only (silk's default permission check)
    # Silk's login_required sends anonymous users to LOGIN_URL; the project's
    # only login page is the admin's (the default /accounts/login/ is a 404).
    LOGIN_URL = "admin:login"
    # Silk never stores a request or answer body (0 bytes kept): the API's
    # bodies hold passwords and codes, and masking by key fails for a body
    # Silk parses another way (a JSON body sent as a form, malformed JSON);
    # login and code answers hold access tokens. The keys below mask (as a
    # part of the name, any case) query parameters, request headers and an
    # answer's headers and Location: Silk itself masks only bodies and the
    # headers named exactly so; core.profiling.silky_middleware does the rest.
    SILKY_MAX_REQUEST_BODY_SIZE = 0
    SILKY_MAX_RESPONSE_BODY_SIZE = 0
    SILKY_SENSITIVE_KEYS = {
        *("username", "api", "token", "key", "secret", "password", "signature"),  # silk's
        *("code", "authorization"),
    }
    SILKY_PYTHON_PROFILER = env_bool("SILK_PYTHON_PROFILER")
    SILKY_META = True
    # Static files and metric scrapes would flood Silk's request list.
    from core.profiling import silk_should_intercept

    SILKY_INTERCEPT_FUNC = silk_should_intercept

# --- Metrics: the web's GET /metrics (Prometheus) ----------------------------
# Request latency by endpoint and status, signups by outcome, outbox gauges.
# Private: the outbox gauges move only for real accounts. With METRICS_TOKEN
# set a scrape must send "Authorization: Bearer <token>" (from anywhere);
# without it, it must come straight (no X-Forwarded-For, Forwarded or
# X-Real-IP header: a proxy on loopback is not a scraper) from
# METRICS_ALLOWED_NETWORKS, the peer address. Anything else gets a plain 404.
# The outbox queries and the broker ping are read at most once per
# METRICS_CACHE_SECONDS per process. (The worker's metrics: messaging, below.)
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
# Read at scrape time (core.metrics), each cached METRICS_CACHE_SECONDS.
METRICS_SCRAPE_COLLECTORS = [
    "core.metrics.BrokerCollector",
    "messaging.metrics.OutboxCollector",
]
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
# Empty: no address is enough (only the token lets a scrape in).
METRICS_ALLOWED_NETWORKS = _metrics_networks(
    os.environ.get("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1")
)
METRICS_CACHE_SECONDS = env_float("METRICS_CACHE_SECONDS", 5.0)


# =============================================================================
# 2. signup
# =============================================================================

# --- Users and passwords -----------------------------------------------------
AUTH_USER_MODEL = "signup.User"
# Argon2id at OWASP's minimum (m=19 MiB, t=2, p=1): ~25-35 ms here. Django's
# PBKDF2 default (~300 ms) and stock Argon2 (~140 ms) cannot meet the p95
# budget. The other hashers stay so that old hashes still verify.
PASSWORD_HASHERS = [
    "signup.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# auth.E003 wants the email field itself unique; ours is unique on
# Lower(email) (signup.User.Meta), which is stricter, and Django's check
# does not recognise expression constraints.
# With a second authentication backend (django-axes) Django says the same as
# a warning, auth.W004.
SILENCED_SYSTEM_CHECKS = ["auth.E003", "auth.W004"]

# --- Signup rules (named, as allauth does): per-IP limit, codes --------------
# Requests per client IP to each signup and /auth POST endpoint (core.throttles).
RATE_LIMIT_PER_IP = os.environ.get("RATE_LIMIT_PER_IP", "20/m")
SIGNUP_CODE_TTL_SECONDS = 10 * 60
SIGNUP_CODE_MAX_ATTEMPTS = 5
SIGNUP_CODE_COOLDOWN_SECONDS = 60
SIGNUP_CODES_PER_HOUR = 5

# --- Unverified accounts -----------------------------------------------------
# An account never verified is deleted this long after its signup (and a
# signup's verification token dies with it), so nobody holds an address
# hostage by signing it up (signup.flows.expiry, run by the worker every hour:
# WORKER_PERIODIC_JOBS, messaging below).
SIGNUP_UNVERIFIED_TTL_SECONDS = int(
    float(os.environ.get("UNVERIFIED_ACCOUNT_TTL_DAYS", "7")) * 24 * 3600
)
# A pending email change lives as long as a code (signup.flows.email_change).
EMAIL_CHANGE_TTL_SECONDS = SIGNUP_CODE_TTL_SECONDS

# --- Accounts after signup: access tokens, failed-login limits ---------------
ACCESS_TOKEN_TTL_SECONDS = int(os.environ.get("ACCESS_TOKEN_TTL_SECONDS", str(24 * 3600)))
ACCESS_TOKEN_TOUCH_SECONDS = 60  # last_used_at is written at most this often
# Failed password logins: per canonical address (database) and per client IP
# (Redis cache, failing open) in a fixed window. Only password
# login is limited per address: a login code or a reset still works.
LOGIN_FAILURES_PER_ADDRESS = 5
LOGIN_FAILURES_PER_IP = 50
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
# GET /me/export per user in a fixed hour (Redis cache, failing open).
EXPORTS_PER_HOUR = int(os.environ.get("EXPORTS_PER_HOUR", "5"))

# --- Two-factor login (TOTP, signup.flows.mfa) --------------------------------
# Fernet keys (urlsafe base64 of 32 bytes; make one with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`),
# comma-separated: the first encrypts the TOTP secrets, every one decrypts.
# Rotation: put a new key first, run `manage.py mfa_rotate_key`, then drop
# the old one. Unset: one key derived from SECRET_KEY (check signup.W001 in
# production: rotating SECRET_KEY would then make the secrets unreadable).
MFA_ENCRYPTION_KEYS = env_list("MFA_ENCRYPTION_KEY")
MFA_ISSUER = os.environ.get("MFA_ISSUER", "Payshift")  # the name authenticator apps show
MFA_TOKEN_TTL_SECONDS = 5 * 60  # the second step of a login (mfa_token)
MFA_FAILURES_PER_ACCOUNT = 5  # wrong second factors per account in the window: then 429
MFA_FAILURE_WINDOW_SECONDS = 15 * 60
MFA_RECOVERY_CODES = 10
MFA_TOTP_DRIFT_STEPS = 1  # codes of this many 30 s steps before and after now are taken

# --- Admin login throttle (django-axes) --------------------------------------
# Failed admin logins are limited per IP and per account (each on its own:
# 5 failures from one IP, or 5 for one account, lock that one out for
# AXES_COOLOFF_TIME). Admin only: the API has its own limits.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("ADMIN_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ADMIN_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_ONLY_ADMIN_SITE = True
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.throttles.client_ip"  # honours TRUSTED_PROXY_COUNT
# The admin form's field is "username" (axes' default would be USERNAME_FIELD,
# "email", which the form does not send: every failure counted as username
# None, one global count); canonical, so case variants share one count.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "signup.addresses.admin_login_username"
AXES_VERBOSE = False


# =============================================================================
# 3. messaging
# =============================================================================

# --- Email (SMTP) ------------------------------------------------------------
# messaging.smtp.EmailBackend: Django's SMTP backend plus SMTPUTF8 for
# internationalised addresses, a CA bundle, and a Message-ID in the sender's
# domain. STARTTLS: EMAIL_USE_TLS=1 (port 587); implicit TLS: EMAIL_USE_SSL=1
# (port 465). A relay signed by a private CA: EMAIL_SSL_CAFILE=/path/ca.pem.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "messaging.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "1025"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_SSL_CAFILE = os.environ.get("EMAIL_SSL_CAFILE", "")  # PEM bundle; empty: system CAs
# Below the actor's time limit (system check): a stalled server then ends
# the attempt as a socket timeout, which is retried.
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Payshift <no-reply@payshift.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_MESSAGE_ID_DOMAIN = os.environ.get("EMAIL_MESSAGE_ID_DOMAIN", "")  # empty: the sender's

# --- Outbox, relay, retries --------------------------------------------------
# Checked at start-up (messaging.checks): OUTBOX_STALE_SECONDS above the
# longest retry backoff, OUTBOX_CLAIM_TIMEOUT_SECONDS above the time limit.
OUTBOX_GRACE_SECONDS = env_float("OUTBOX_GRACE_SECONDS", 10)  # never enqueued
OUTBOX_STALE_SECONDS = env_float("OUTBOX_STALE_SECONDS", 300)  # > max backoff
OUTBOX_CLAIM_TIMEOUT_SECONDS = env_float("OUTBOX_CLAIM_TIMEOUT_SECONDS", 90)  # > time limit
OUTBOX_TIME_LIMIT_MS = int(os.environ.get("OUTBOX_TIME_LIMIT_MS", "60000"))  # per attempt
OUTBOX_RELAY_INTERVAL_SECONDS = env_float("OUTBOX_RELAY_INTERVAL_SECONDS", 5)
OUTBOX_RELAY_BATCH = 200
# 14 retries, backoff 1 s doubling to 120 s: rides out ~15 min of SMTP outage
# before a row is failed and needs outbox_requeue (8 gave up after ~4 min).
OUTBOX_MAX_RETRIES = int(os.environ.get("OUTBOX_MAX_RETRIES", "14"))
OUTBOX_MIN_BACKOFF_MS = int(os.environ.get("OUTBOX_MIN_BACKOFF_MS", "1000"))
OUTBOX_MAX_BACKOFF_MS = int(os.environ.get("OUTBOX_MAX_BACKOFF_MS", "120000"))

# --- Periodic jobs -----------------------------------------------------------
# Housekeeping each worker runs by itself next to its relay (messaging.periodic):
# dotted path -> seconds between runs. Each is safe with several workers.
WORKER_PERIODIC_JOBS = {
    "signup.flows.expiry.unverified_accounts_expire": 3600,
    "signup.idempotency.idempotency_purge": 3600,
    "signup.flows.mfa_login.mfa_challenges_purge": 3600,
}

# --- Dramatiq broker ---------------------------------------------------------
# Set explicitly. django-dramatiq's default is RabbitMQ plus a Prometheus
# middleware path that Dramatiq 2 no longer has. AdminMiddleware is left
# out: it adds ~6 SQL statements to every enqueue on the request path.
# The broker: Redis (REDIS_URL) by default, RabbitMQ when BROKER_URL is
# amqp:// (core.broker); the Redis timeouts and breaker above apply to it.
BROKER_URL = os.environ.get("BROKER_URL", REDIS_URL)
_broker_class, _broker_options = broker_settings(
    BROKER_URL,
    namespace=os.environ.get("DRAMATIQ_NAMESPACE", "payshift"),
    heartbeat_timeout_ms=int(os.environ.get("DRAMATIQ_HEARTBEAT_TIMEOUT_MS", "15000")),
)
DRAMATIQ_BROKER = {
    "BROKER": _broker_class,
    "OPTIONS": _broker_options,
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.ShutdownNotifications",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Pipelines",
        "messaging.middleware.OutboxRetries",  # Retries; a lost retry goes to the relay
        "dramatiq.middleware.CurrentMessage",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "messaging.middleware.RelayMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

# --- Worker metrics (Prometheus) ---------------------------------------------
# Dramatiq's own Prometheus middleware plus ours, served by a fork of
# rundramatiq on WORKER_METRICS_PORT (loopback unless WORKER_METRICS_HOST);
# off when unset, so that workers of several checkouts on one machine do not
# fight over one port.
WORKER_METRICS_PORT = os.environ.get("WORKER_METRICS_PORT", "")
WORKER_METRICS_HOST = os.environ.get("WORKER_METRICS_HOST", "127.0.0.1")
_dramatiq_middleware = cast(list[str], DRAMATIQ_BROKER["MIDDLEWARE"])
if WORKER_METRICS_PORT:
    # Dramatiq's middleware reads these when it is imported (broker set-up).
    os.environ.setdefault("dramatiq_prom_port", WORKER_METRICS_PORT)
    os.environ.setdefault("dramatiq_prom_host", WORKER_METRICS_HOST)
    if os.environ.get("WORKER_METRICS_DIR"):
        os.environ.setdefault("dramatiq_prom_db", os.environ["WORKER_METRICS_DIR"])
    _dramatiq_middleware += [
        "dramatiq.middleware.prometheus.Prometheus",
        "messaging.worker_metrics.WorkerMetrics",
    ]
# Last: every job's log lines carry the request id of the request that queued it.
_dramatiq_middleware.append("messaging.requestid.RequestIdMiddleware")
