"""Resending messages whose outcome is unknown goes through a confirmation with its recipients and segments."""

from __future__ import annotations

import re

import pytest

from messaging.models import Message

pytestmark = pytest.mark.django_db


def test_resend_unconfirmed_is_confirmed_first(admin_client, engine, make_sender):
    sender = make_sender("plivo")
    unknown = [Message.objects.create(sender=sender, to=f"+1212555010{i}", body="Hello \U0001F600", status="unconfirmed")
               for i in range(3)]
    delivered = Message.objects.create(sender=sender, to="+12125550109", body="Hello", status="delivered")
    selected = [m.pk for m in unknown] + [delivered.pk]
    url = "/admin/messaging/message/"
    page = admin_client.post(url, {"action": "resend_unconfirmed", "_selected_action": selected})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-figure="messages">3<' in html and 'data-figure="segments-UCS-2">3<' in html
    assert 'data-figure="skipped">1<' in html
    assert Message.objects.filter(status="unconfirmed").count() == 3  # nothing resent yet

    response = admin_client.post(url, {"action": "resend_unconfirmed", "_selected_action": selected, "confirm": "yes"})
    assert response.status_code == 302
    assert Message.objects.filter(pk__in=[m.pk for m in unknown], status="errored").count() == 3
    assert Message.objects.get(pk=delivered.pk).status == "delivered"


def test_a_messages_page_shows_its_whole_history_in_order(admin_client, engine, make_sender, sandbox):
    """Sent to the emulator, then reported undelivered with a code: the send answer and the report are both on
    the message's page, oldest first, with the provider's status and what its code means."""
    from datetime import UTC, datetime

    from messaging.providers.base import StatusEvent
    from messaging.services import events_apply, message_create, message_send

    sandbox.config(callback_retries=0)
    sender = make_sender("plivo")
    message = message_create(sender=sender, to="+12125550142", body="Hello")
    assert message_send(message_id=message.pk) == "sent"
    message.refresh_from_db()
    events_apply(sender=sender, events=[StatusEvent(
        provider_message_id=message.provider_message_id, status="undelivered", raw_status="undelivered",
        occurred_at=datetime.now(UTC), error_code="110", event_id="report-1")])

    html = admin_client.get(f"/admin/messaging/message/{message.pk}/change/").content.decode()
    history = html[html.lower().index("history (every send answer"):]
    assert history.index("send") < history.index("undelivered")
    assert "110" in history and "Message too long" in history
    assert len(re.findall(r'href="/admin/messaging/messageevent/\d+/change/"', history)) == 2
