"""Credentials encrypted at rest, and rotating CREDENTIALS_KEY: the first key encrypts, every key decrypts."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.urls import reverse

from messaging.fields import Undecryptable, is_undecryptable
from messaging.models import Sender
from messaging.providers import sender_problem

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
CREDENTIALS = {"auth_id": "MA-rotation", "auth_token": "Tok-Rotation-5150"}
PASSWORD = "Cb-Rotation-2077"


def _sender() -> Sender:
    return Sender.objects.create(name="Rotating line", provider="plivo", address="+14155550199",
                                 credentials=CREDENTIALS, callback_password=PASSWORD)


def _stored(sender: Sender) -> tuple[str, str]:
    """The tokens as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials, callback_password FROM messaging_sender WHERE id = %s", [sender.pk])
        return cursor.fetchone()


def _readable_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def test_a_value_written_under_one_key_is_read_after_rotation_and_re_encrypted_under_the_new_key(settings):
    settings.CREDENTIALS_KEYS = [KEY_A]
    sender = _sender()
    assert all(_readable_with(KEY_A, token) and not _readable_with(KEY_B, token) for token in _stored(sender))

    settings.CREDENTIALS_KEYS = [KEY_B, KEY_A]  # CREDENTIALS_KEY="B,A": B is new, A still decrypts
    sender = Sender.objects.get(pk=sender.pk)
    assert (sender.credentials, sender.callback_password) == (CREDENTIALS, PASSWORD)
    assert all(_readable_with(KEY_A, token) for token in _stored(sender))  # reading rewrites nothing
    sender.save()
    assert all(_readable_with(KEY_B, token) and not _readable_with(KEY_A, token) for token in _stored(sender))

    settings.CREDENTIALS_KEYS = [KEY_B]  # A retired: what was saved again is still read
    sender = Sender.objects.get(pk=sender.pk)
    assert (sender.credentials, sender.callback_password) == (CREDENTIALS, PASSWORD)


def test_without_the_old_key_a_value_is_undecryptable_shown_as_such_and_kept(settings, admin_client):
    settings.CREDENTIALS_KEYS = [KEY_A]
    sender = _sender()
    tokens = _stored(sender)

    settings.CREDENTIALS_KEYS = [KEY_B]
    sender = Sender.objects.get(pk=sender.pk)
    assert is_undecryptable(sender.credentials) and is_undecryptable(sender.callback_password)
    assert isinstance(sender.credentials, Undecryptable)
    for value in (sender.credentials, sender.callback_password):
        assert str(value) == repr(value) == "<Undecryptable>"  # never the token, never a guess at the value
    problem = sender_problem(sender)
    assert "Rotating line" in problem and "cannot be decrypted" in problem and "CREDENTIALS_KEY" in problem
    assert "Tok-Rotation-5150" not in problem
    listing = admin_client.get(reverse("admin:messaging_sender_changelist"))
    assert listing.status_code == 200
    assert "credentials cannot be decrypted with the configured key" in listing.content.decode()

    sender.name = "Renamed line"
    sender.save()  # saved again: the stored tokens stay as they were
    assert _stored(sender) == tokens
    settings.CREDENTIALS_KEYS = [KEY_B, KEY_A]  # the right key given back reads them
    sender = Sender.objects.get(pk=sender.pk)
    assert (sender.name, sender.credentials, sender.callback_password) == ("Renamed line", CREDENTIALS, PASSWORD)


@pytest.mark.parametrize("keys", [["not-a-fernet-key"], [KEY_B, "c2hvcnQ="]], ids=["only key", "second key"])
def test_an_invalid_key_is_a_configuration_error_naming_the_variable(settings, keys):
    settings.CREDENTIALS_KEYS = keys
    with pytest.raises(ImproperlyConfigured) as info, transaction.atomic():
        _sender()
    message = str(info.value)
    assert "CREDENTIALS_KEY" in message and f"key {len(keys)} of {len(keys)}" in message
    assert keys[-1] not in message  # a key is a secret, even a wrong one
    # the error stands on its own: no traceback from the cryptography package chained to it
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not Sender.objects.exists()
