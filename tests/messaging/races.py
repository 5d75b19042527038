"""Racing the reconciler: something happens to a message after the reconciler has read it and while it waits
for the provider's answer (the emulator is told to answer slowly)."""

from __future__ import annotations

import threading

from django.db import connection

from messaging.models import Message
from messaging.services import message_reconcile
from tests.support import wait_until


def reconcile_while(message: Message, meanwhile) -> str:
    """Run ``message_reconcile`` in a thread of its own; once it has read the message (it stamps ``checked_at``
    right after) and while it still waits for the provider, call ``meanwhile()``. Returns its answer."""
    answers = []

    def reconcile():
        try:
            answers.append(message_reconcile(message_id=message.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=reconcile)
    thread.start()
    wait_until(lambda: Message.objects.filter(pk=message.pk, checked_at__isnull=False).exists(), timeout=10,
               message="the reconciler to read the message")
    assert thread.is_alive(), "the provider answered before anything could happen meanwhile"
    meanwhile()
    thread.join(30)
    assert not thread.is_alive() and len(answers) == 1
    return answers[0]
