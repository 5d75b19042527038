"""The task queue is named after the database: deployments (or test runs) sharing one broker never purge nor take
each other's tasks, and a process started on the test database uses the test run's queue and broker folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app, queue_for
from tests.support import PYTHON, Process, database_url, delete_queue, wait_until

SHOW = (
    "import json; from django.conf import settings; from config.celery import app; "
    "print(json.dumps({'queue': app.conf.task_default_queue, "
    "'folder': settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('data_folder_in')}))"
)
PURGE_AND_SEND = (
    "import json; from config.celery import app; purged = app.control.purge(); app.send_task('tests.theirs'); "
    "print(json.dumps({'queue': app.conf.task_default_queue, 'purged': purged}))"
)


def _manage_shell(code: str, env: dict, log) -> tuple[Process, dict]:
    process = Process([PYTHON, "manage.py", "shell", "-c", code], env=env, log=log)
    assert process.wait(120) == 0, process.output()
    return process, json.loads(process.output().strip().splitlines()[-1])


def _broker_env(settings) -> dict:
    env = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        env["BROKER_FOLDER"] = str(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
    return env


def test_queue_names_follow_the_database_name():
    assert queue_for("test_test_4242") == "celery.test_test_4242"
    assert queue_for("/srv/app/var/db.sqlite3") == "celery.srv-app-var-db.sqlite3"  # no slash: a file name
    assert queue_for("/srv/app/var/db.sqlite3") != queue_for("/srv/other/var/db.sqlite3")
    long = queue_for("/x" * 300)
    assert len(long) < 255 and long != queue_for("/y" + "/x" * 299)


@pytest.mark.django_db
def test_a_process_started_on_the_test_database_uses_the_test_runs_queue_and_broker(settings, tmp_path):
    if "CELERY_QUEUE" not in os.environ:
        assert app.conf.task_default_queue == queue_for(connection.settings_dict["NAME"])
    process, seen = _manage_shell(SHOW, {"DATABASE_URL": database_url(connection.settings_dict)},
                                  tmp_path / "shell.log")
    assert seen["queue"] == app.conf.task_default_queue
    assert seen["folder"] == settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    assert not (settings.VAR_DIR / f"test-broker-{process.pid}").exists()  # it made no broker folder of its own


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_purge_or_a_worker_of_another_database_leaves_this_runs_tasks_alone(settings, tmp_path):
    if "CELERY_QUEUE" in os.environ:
        pytest.skip("CELERY_QUEUE gives every database the same queue")
    ours = app.conf.task_default_queue
    app.control.purge()
    app.send_task("tests.ours")  # none of this run's workers is running: it waits in this run's queue

    other = {"DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}", **_broker_env(settings)}
    worker = Process([PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "INFO", "-n", "other@%h",
                      "--concurrency", "1", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                     env=other, log=tmp_path / "worker.log")
    theirs = None
    try:
        wait_until(lambda: "ready." in worker.output(), timeout=60, message="the other worker to start")
        # Another deployment on the same broker purges its queue and enqueues a task of its own.
        _, seen = _manage_shell(PURGE_AND_SEND, other, tmp_path / "other.log")
        theirs = seen["queue"]
        assert theirs == queue_for(str(tmp_path / "other.sqlite3")) != ours
        wait_until(lambda: "tests.theirs" in worker.output(), timeout=30, message="the other worker to take its task")
        time.sleep(1.0)  # a few more polls of the broker
        assert "tests.ours" not in worker.output()
    finally:
        worker.stop()
        if theirs and not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            delete_queue(app, theirs)
    assert app.control.purge() == 1  # this run's task was there all along
