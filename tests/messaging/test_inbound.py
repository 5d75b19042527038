"""Replies through the inbound webhook: stored once under the number that wrote, STOP/START in the ledger."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import ConsentEvent, Message
from messaging.sandbox.plivo import _signature_headers
from messaging.selectors import is_opted_out

pytestmark = pytest.mark.django_db


def _reply(client, sender, text: str, uuid: str = "in-1"):
    path = reverse("messaging:webhook_inbound", args=[sender.provider, sender.uuid])
    fields = {"MessageUUID": uuid, "From": "12125550199", "To": sender.address.lstrip("+"), "Text": text,
              "Type": "sms", "Units": "1"}
    headers = _signature_headers(sender.credentials["auth_token"], "POST", f"http://testserver{path}", fields)
    return client.post(path, data=fields, headers=headers)


def test_stop_reply_opts_out_once_and_start_opts_back_in(make_sender, client):
    sender = make_sender("plivo")
    assert _reply(client, sender, " Stop ").status_code == 200
    assert _reply(client, sender, " Stop ").status_code == 200  # the provider retried: stored once
    inbound = Message.objects.get(direction="inbound")
    assert (inbound.to, inbound.status, inbound.body) == ("+12125550199", "received", " Stop ")
    assert is_opted_out("+12125550199")
    assert ConsentEvent.objects.filter(phone="+12125550199", method="keyword").count() == 1

    assert _reply(client, sender, "START", uuid="in-2").status_code == 200
    assert not is_opted_out("+12125550199")
    assert Message.objects.filter(direction="inbound").count() == 2


def test_an_ordinary_reply_changes_no_consent(make_sender, client):
    sender = make_sender("plivo")
    assert _reply(client, sender, "Stop sending me the wrong size please").status_code == 200
    assert not ConsentEvent.objects.exists()
    assert not is_opted_out("+12125550199")
