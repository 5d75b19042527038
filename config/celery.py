import functools
import hashlib
import logging
import os
import re

from celery import Celery
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaigns")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def queue_for(database_name: str) -> str:
    """The task queue of the deployment (or test run) using this database: ``celery.<database name>``, written
    with letters, digits and ``_ . -`` only (a SQLite path becomes one word: the embedded broker puts queue
    names in file names). Deployments sharing one Redis or RabbitMQ so never purge or take each other's tasks,
    as they never share a pace (``messaging.pacing`` keys carry the same name)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(database_name)).strip("-") or "default"
    if len(name) > 200:  # RabbitMQ takes 255 bytes at most: keep the end, and a digest of the whole
        name = f"{name[-180:]}-{hashlib.sha256(str(database_name).encode()).hexdigest()[:12]}"
    return f"celery.{name}"


# What the database driver raises while the database cannot be reached (restarting, failing over, a dropped session),
# and what Redis raises while it restarts (the pace store lives there when Redis is the broker).
DATABASE_AWAY = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
logger = logging.getLogger("config.celery")


class DatabaseRetryTask(app.Task):
    """A task tried again, with backoff up to 30 s, while the database (or the Redis pace store) cannot be
    reached: its work is done once it is back, and the worker logs a retry, not an error. For tasks safe to run again (each of ours
    claims or checks state before it writes)."""

    autoretry_for = DATABASE_AWAY
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = None


def periodic(run):
    """A periodic task (beat sends the next one soon): while the database cannot be reached, it logs a warning
    and does nothing; the next run does the work."""

    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        try:
            return run(*args, **kwargs)
        except DATABASE_AWAY as exc:
            logger.warning("%s skipped: the database is unavailable (%s)", run.__name__,
                           (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200])
            return {"skipped": "database unavailable"}

    return wrapper
