"""While the database cannot be reached, a status callback answers 503 with Retry-After (the provider sends it
again and it is applied then; never a 200 for a report not stored), and the periodic tasks skip their run with a
warning instead of failing. The database is made unreachable for real: the connection is closed and pointed
at a place where no database is."""

from __future__ import annotations

import contextlib
import logging

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from messaging.models import MessageEvent

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_away():
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/folder/db.sqlite3"
    else:
        from tests.support import free_port

        connection.settings_dict["PORT"] = free_port()  # nothing listens there
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_a_callback_while_the_database_is_away_answers_503_and_the_next_try_is_handled(make_sender, caplog):
    sender = make_sender("plivo")
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    data = {"MessageUUID": "u-1", "Status": "delivered"}
    caplog.set_level(logging.WARNING, logger="messaging.webhooks")
    with database_away():
        response = client.post(path, data=data)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database unavailable" in response.content.decode()
    assert "the database is unavailable" in caplog.text
    assert not MessageEvent.objects.exists()
    # The provider tries again once the database is back: the report is verified and stored then (a Plivo
    # callback without its signature is refused 403, which proves the request reached verification).
    assert client.post(path, data=data).status_code == 403


def test_periodic_tasks_skip_their_run_while_the_database_is_away(caplog):
    from campaigns.tasks import import_sweep, tick
    from messaging.tasks import sweep

    caplog.set_level(logging.WARNING, logger="config.celery")
    with database_away():
        for task in (tick, sweep, import_sweep):
            assert task() == {"skipped": "database unavailable"}
    assert caplog.text.count("the database is unavailable") == 3
    assert "enqueued" in tick()  # and the next run works


def test_tasks_that_carry_work_are_tried_again_while_the_database_is_away():
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError, TimeoutError

    from campaigns.tasks import dispatch, import_contacts
    from messaging.tasks import reconcile, send_batch

    for task in (send_batch, reconcile, dispatch, import_contacts):
        assert set(task.autoretry_for) == {OperationalError, InterfaceError, ConnectionError, TimeoutError}
        assert task.max_retries is None and task.retry_backoff_max == 30
