"""Settings, read through one django-environ ``Env``.

Every variable is listed in README.md. The defaults are the embedded development setup:
SQLite (WAL) and a serverless Celery broker on the local filesystem.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ

from config.celery import queue_for

BASE_DIR = Path(__file__).resolve().parent.parent

# This process is a test run: pytest sets PYTEST_VERSION for its session. The processes a test run starts
# (workers, the emulator, manage.py commands) inherit the variable but are not test runs (pytest is not loaded
# there): they use the database and the broker folder they are given.
TEST_RUN = "PYTEST_VERSION" in os.environ and "pytest" in sys.modules

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env", overwrite=False)  # the real environment wins over the file

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

if TEST_RUN:
    # A test run makes keys of its own (never the development ones) and hands them, through the environment, to
    # the processes it starts: they are not test runs and need real keys to start, and the workers must decrypt
    # the credentials the tests write.
    from cryptography.fernet import Fernet
    from django.core.management.utils import get_random_secret_key

    os.environ.setdefault("SECRET_KEY", get_random_secret_key())
    os.environ.setdefault("CREDENTIALS_KEY", Fernet.generate_key().decode())

# Development (`make run`) runs with DEBUG on; with it off this is production, and refuses to start without
# real keys (below).
DEBUG = env.bool("DEBUG", default=False)
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Key for provider credentials at rest (Fernet, urlsafe base64 of 32 bytes). Several keys may be given,
# comma separated: the first encrypts, all decrypt (key rotation). Without it (development only) a key is
# derived from SECRET_KEY.
CREDENTIALS_KEYS = env.list("CREDENTIALS_KEY", default=[])

if not DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    if SECRET_KEY == DEVELOPMENT_SECRET_KEY or not SECRET_KEY.strip():
        raise ImproperlyConfigured(
            "SECRET_KEY is not set, and DEBUG is off: production needs a secret key of its own. Generate one with\n"
            "  python -c \"from django.core.management.utils import get_random_secret_key; "
            "print(get_random_secret_key())\"\n"
            "and set it as SECRET_KEY (or set DEBUG=true for development on this machine only)."
        )
    if not [key for key in CREDENTIALS_KEYS if key.strip()]:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEY is not set, and DEBUG is off: production needs a key of its own to encrypt provider "
            "credentials. Generate one with\n"
            "  python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"\n"
            "and set it as CREDENTIALS_KEY. Keep it safe: credentials saved with it cannot be read without it."
        )

# Public base URL of this site as the providers see it (scheme://host[:port], no trailing slash).
# Used to build status-callback URLs and to verify signed callbacks behind a proxy.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- HTTPS and security headers ------------------------------------------------------------------
# Production (DEBUG off) is served over HTTPS: plain http is redirected, cookies are sent over HTTPS only, and
# browsers are told to use HTTPS for a year (HSTS). Development (`make run`, DEBUG on) and the test run serve
# plain http. HTTPS=false turns it all off (e.g. a trial on a private network); each part has its own variable.
HTTPS = env.bool("HTTPS", default=not DEBUG and not TEST_RUN)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
# Behind a proxy that terminates TLS: the header it sets to "https" on requests that came in over HTTPS (e.g.
# X-Forwarded-Proto). Only when the proxy always sets or overwrites it: a client could send it too.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
if _proxy_ssl_header:
    import re

    if not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is the name of a header only (e.g. X-Forwarded-Proto); the value it must have "
            "is https."
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Proxies in front of the web server that append the client's address to X-Forwarded-For: the login throttle
# reads the client's address that many entries from the right. 0: the address of the direct peer.
PROXY_COUNT = env.int("PROXY_COUNT", default=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # no script here reads it: forms carry the token
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)

# Content security policy of every page (django-csp): scripts, styles, images, fonts and fetches from this site
# only, no inline script or style, no plugins, never framed, forms posted here only. A view may set its own
# stricter header (campaign media does).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Login throttling (django-axes) --------------------------------------------------------------
# A username that fails to log in LOGIN_FAILURE_LIMIT times from one address is refused from that address,
# even with the right password, for LOGIN_LOCKOUT_MINUTES after the last attempt (each further attempt starts
# the wait again). Staff see the attempts under *Axes* in the admin.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "csrfmiddlewaretoken"]

INSTALLED_APPS = [
    "config.apps.ProductAdminConfig",  # Django's admin, as the product's site (config.admin_site)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "phonenumber_field",
    "messaging",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.timezones.StaffTimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a refused login into the lockout page
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password is checked
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 35):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"SQLite {sqlite3.sqlite_version} is too old: sending needs 3.35 or newer (UPDATE ... RETURNING). "
            "Use a Python built with a newer SQLite, or PostgreSQL (DATABASE_URL)."
        )
    # WAL lets the web server, workers and beat read while one of them writes; IMMEDIATE makes a
    # writing transaction take its lock up front so concurrent writers queue instead of deadlocking.
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file (not :memory:) so worker processes started by the tests share it; one per test run.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    _db["CONN_HEALTH_CHECKS"] = True
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}  # concurrent test runs never share one

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

PHONENUMBER_DEFAULT_REGION = env.str("DEFAULT_REGION", default="US")
PHONENUMBER_DB_FORMAT = "E164"

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A test run gets a broker folder of its own, so tests never take tasks from a `make run` on the same
    # machine, nor it theirs. The processes it starts are given it (BROKER_FOLDER).
    _default_broker = f"test-broker-{os.getpid()}" if TEST_RUN else "broker"
    _broker_dir = Path(env.str("BROKER_FOLDER", default=str(VAR_DIR / _default_broker)))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # kombu's filesystem transport, written atomically
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": env.float("BROKER_POLLING_INTERVAL", default=0.2),
    }
else:
    # Redis: a task delivered to a worker that died unacknowledged is given again once it has been out this long
    # (the dispatcher and the sweep do not wait for it: its messages are enqueued again, or reconciled, long
    # before). Workers look for such tasks every BROKER_RESTORE_SECONDS.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("BROKER_VISIBILITY_TIMEOUT", default=3600),
        "unacked_restore_interval": env.int("BROKER_RESTORE_SECONDS", default=60),
        "unacked_restore_throttle": 1,
    }
# One queue per database (see config.celery.queue_for). A test run enqueues for its test database, the one
# its workers are given as DATABASE_URL, so they consume what it enqueues.
CELERY_TASK_DEFAULT_QUEUE = env.str(
    "CELERY_QUEUE", default=queue_for(_db["TEST"]["NAME"] if TEST_RUN else _db["NAME"])
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# When the broker connection is lost, tasks under way run to their end (their sends are recorded); the broker gives
# their messages again to a worker, where the claims make the second run a no-op. Cancelling them instead would
# leave their messages mid-send, for the reconciler.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A task enqueued while the broker restarts (beat's tick, a launch's dispatch, a retry) is published again for
# about 15 s, reconnecting, before the caller sees an error (Celery's default gives up after 0.6 s).
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 10, "interval_start": 0, "interval_step": 0.5, "interval_max": 2}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "campaigns-tick": {"task": "campaigns.tasks.tick", "schedule": env.float("TICK_SECONDS", default=2.0)},
    "messaging-sweep": {"task": "messaging.tasks.sweep", "schedule": env.float("SWEEP_SECONDS", default=10.0)},
    "imports-sweep": {"task": "campaigns.tasks.import_sweep", "schedule": env.float("IMPORT_SWEEP_SECONDS", default=60.0)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Sending ------------------------------------------------------------------------------------
PROVIDER_TIMEOUT = env.float("PROVIDER_TIMEOUT", default=10.0)  # seconds, read timeout per provider call
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=3.05)
SEND_BATCH_SIZE = env.int("SEND_BATCH_SIZE", default=100)  # messages per send task
SEND_THREADS = env.int("SEND_THREADS", default=16)  # concurrent provider calls inside one task
SEND_MAX_ATTEMPTS = env.int("SEND_MAX_ATTEMPTS", default=5)
RECONCILE_AFTER_SECONDS = env.int("RECONCILE_AFTER_SECONDS", default=60)  # `sending` rows are then asked about
DISPATCH_STALE_SECONDS = env.int("DISPATCH_STALE_SECONDS", default=120)  # enqueued, never claimed: enqueue again
FINAL_RECONCILE_AFTER_SECONDS = env.int("FINAL_RECONCILE_AFTER_SECONDS", default=6 * 3600)  # `sent`, no receipt
if RECONCILE_AFTER_SECONDS < PROVIDER_TIMEOUT + PROVIDER_CONNECT_TIMEOUT + 2:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "RECONCILE_AFTER_SECONDS must exceed PROVIDER_TIMEOUT + PROVIDER_CONNECT_TIMEOUT by 2 s or more: a send "
        "must be able to start and finish inside the lease the reconciler respects."
    )
CIRCUIT_FAILURES = env.int("CIRCUIT_FAILURES", default=5)  # consecutive provider failures that open the circuit
CIRCUIT_OPEN_SECONDS = env.int("CIRCUIT_OPEN_SECONDS", default=30)  # how long a sender is then left alone
# A campaign pauses itself when more than this share of its last CARRIER_FILTERING_WINDOW outcomes were filtered by
# carriers as spam, and at least CARRIER_FILTERING_MIN were (so one early filtered message does not stop it).
CARRIER_FILTERING_RATE = env.float("CARRIER_FILTERING_RATE", default=0.05)
CARRIER_FILTERING_WINDOW = env.int("CARRIER_FILTERING_WINDOW", default=200)
CARRIER_FILTERING_MIN = env.int("CARRIER_FILTERING_MIN", default=5)

# Outbound calls (provider APIs, media checks) connect to public addresses only. These hosts may be internal:
# "host" on any port, "host:port" on that port only, compared with the URL's host as written. Empty in
# production; `make run` (run_all) and the test suite set it for the local emulator and servers.
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])

# Provider callbacks (messaging/webhooks.py). A body larger than this is refused (413); JSON nested deeper than
# this is refused (400) before it is decoded. A nonce of a signature that covers only the URL (Plivo V2) is
# accepted once within the replay window, and forgotten after it.
CALLBACK_MAX_BYTES = env.int("CALLBACK_MAX_BYTES", default=256 * 1024)
CALLBACK_MAX_JSON_DEPTH = env.int("CALLBACK_MAX_JSON_DEPTH", default=32)
CALLBACK_REPLAY_WINDOW_SECONDS = env.int("CALLBACK_REPLAY_WINDOW_SECONDS", default=24 * 3600)

# --- Contact imports -----------------------------------------------------------------------------
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=50 * 1024 * 1024)  # larger uploads are refused
IMPORT_CHUNK_ROWS = env.int("IMPORT_CHUNK_ROWS", default=5000)  # rows written per transaction
IMPORT_STALE_SECONDS = env.int("IMPORT_STALE_SECONDS", default=300)  # no heartbeat this long: the import resumes
# What a contact file may hold (campaigns/imports/readers.py, xlsxbounds.py). Over a limit, the file is refused
# before anything is written, with the limit and where it applies.
IMPORT_MAX_CELL_CHARS = env.int("IMPORT_MAX_CELL_CHARS", default=1024 * 1024)  # one cell; also one XLSX row in all
IMPORT_MAX_COLUMNS = env.int("IMPORT_MAX_COLUMNS", default=500)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=1_048_576)  # an XLSX sheet's (Excel's own maximum)
IMPORT_MAX_UNCOMPRESSED_BYTES = env.int("IMPORT_MAX_UNCOMPRESSED_BYTES", default=500 * 1024 * 1024)  # XLSX unpacked
# The problem report lists this many rows at most (then a line saying how many more), each value cut to this length.
IMPORT_REPORT_MAX_ROWS = env.int("IMPORT_REPORT_MAX_ROWS", default=100_000)
IMPORT_REPORT_MAX_VALUE_CHARS = env.int("IMPORT_REPORT_MAX_VALUE_CHARS", default=1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},  # no banner
}
