"""Resending messages whose outcome is unknown goes through a confirmation with its recipients and segments."""

from __future__ import annotations

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
