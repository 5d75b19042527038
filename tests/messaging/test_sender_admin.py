"""The sender page: write-only credentials, documented pace by kind of sender, webhook URLs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import Sender
from messaging.providers.base import sender_type

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address,kind",
    [("+14155550100", "long_code"), ("+18005550100", "toll_free"), ("12345", "short_code"),
     ("ACME", "alphanumeric"), ("", "leased")],
)
def test_sender_type(address, kind):
    assert sender_type(address) == kind


def _add(admin_client, **fields):
    data = {"name": "Line", "provider": "plivo", "address": "+14155550100", "is_active": "on", "mps": "",
            "api_base_url": "", "options": "{}", "credentials_input": "auth_id=MA123\nauth_token=tok-secret-9876"}
    data.update(fields)
    return admin_client.post(reverse("admin:messaging_sender_add"), data)


@pytest.mark.parametrize(
    "provider,address,credentials,mps",
    [
        ("plivo", "+14155550100", "auth_id=MA1\nauth_token=t-12345", 1.0),  # US long code, unregistered
        ("plivo", "+18885550100", "auth_id=MA1\nauth_token=t-12345", 25.0),  # verified toll-free
        ("plivo", "+447700900123", "auth_id=MA1\nauth_token=t-12345", 5.0),  # account default
        ("cloudvno", "55123", "api_key=k-12345\nwebhook_secret=w-12345", 500.0),  # short code
    ],
)
def test_blank_pace_takes_the_documented_default(admin_client, provider, address, credentials, mps):
    response = _add(admin_client, provider=provider, address=address, credentials_input=credentials)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Sender.objects.get().mps == mps


def test_credentials_are_write_only_and_merged(admin_client):
    assert _add(admin_client, mps="7").status_code == 302
    sender = Sender.objects.get()
    assert sender.mps == 7 and sender.credentials == {"auth_id": "MA123", "auth_token": "tok-secret-9876"}
    page = admin_client.get(reverse("admin:messaging_sender_change", args=[sender.pk])).content.decode()
    assert "tok-secret-9876" not in page and "••••••9876" in page
    assert f"/webhooks/plivo/{sender.uuid}/status/" in page
    # Leaving the box empty keeps what is stored; a key given replaces only that key.
    data = {"name": "Line", "provider": "plivo", "address": "+14155550100", "is_active": "on", "mps": "7",
            "api_base_url": "", "options": "{}", "credentials_input": "auth_token=new-token-5555"}
    assert admin_client.post(reverse("admin:messaging_sender_change", args=[sender.pk]), data).status_code == 302
    sender.refresh_from_db()
    assert sender.credentials == {"auth_id": "MA123", "auth_token": "new-token-5555"}


def test_unknown_credential_key_is_refused_with_its_name(admin_client):
    response = _add(admin_client, credentials_input="auth_id=MA1\napi_key=oops")
    assert response.status_code == 200
    assert "unknown: api_key" in response.content.decode()
    assert not Sender.objects.exists()


def test_credentials_are_encrypted_at_rest(db):
    from django.db import connection

    sender = Sender.objects.create(name="x", provider="plivo", credentials={"auth_id": "MA1", "auth_token": "plain-9"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM messaging_sender WHERE id = %s", [sender.pk])
        stored = cursor.fetchone()[0]
    assert "plain-9" not in stored and "MA1" not in stored
    assert Sender.objects.get(pk=sender.pk).credentials["auth_token"] == "plain-9"
