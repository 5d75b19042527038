"""The webhook never answers 200 after an unexpected error: the provider must retry later."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from messaging.models import MessageEvent, Sender

pytestmark = pytest.mark.django_db


def test_an_unexpected_error_answers_500_and_stores_nothing(make_sender):
    sender = make_sender("plivo")
    # A sender left on a provider the code no longer knows: nothing can verify or read its callbacks.
    Sender.objects.filter(pk=sender.pk).update(provider="retired")
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["retired", sender.uuid])
    response = client.post(path, data={"MessageUUID": "u-1", "Status": "delivered"})
    assert response.status_code == 500
    assert not MessageEvent.objects.exists()


def test_a_callback_for_another_providers_path_is_not_found(make_sender, client):
    sender = make_sender("plivo")
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    assert client.post(path, data={"MessageUUID": "u-1"}).status_code == 404


def test_a_sender_whose_secrets_cannot_be_decrypted_answers_503_and_stores_nothing(make_sender, settings, caplog):
    """Nothing can be verified: not 403 (the provider might give up), not 200 (the event would be lost)."""
    sender = make_sender("plivo", credentials={"auth_id": "MA1", "auth_token": "Tok-Secret-0077"})
    settings.CREDENTIALS_KEYS = ["x3TyNa1m0iwh9s0dAg3CKNeqZhVrR1sbHEb4i0Z7mTs="]
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    response = client.post(path, data={"MessageUUID": "u-1", "Status": "delivered"})
    assert response.status_code == 503
    assert not MessageEvent.objects.exists()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cannot be decrypted" in logged and "Tok-Secret-0077" not in logged
