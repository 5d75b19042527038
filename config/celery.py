import hashlib
import os
import re

from celery import Celery

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
