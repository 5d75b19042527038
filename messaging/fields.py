"""Values encrypted at rest (Fernet from the ``cryptography`` package): a JSON dict and a plain string.

A stored value that the configured key cannot decrypt (a wrong or rotated-away ``CREDENTIALS_KEY``) is not
taken as empty: it is read back as an ``Undecryptable`` marker, which is falsy for no one, keeps the stored
token untouched when the row is saved again, and lets the admin and the senders refuse to work with it.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

UNDECRYPTABLE_MESSAGE = "credentials cannot be decrypted with the configured key"


def _fernet() -> MultiFernet:
    keys = list(settings.CREDENTIALS_KEYS)
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(("credentials:" + settings.SECRET_KEY).encode()).digest())
        keys = [derived.decode()]
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode() if isinstance(key, str) else key))
        except (ValueError, TypeError):
            # Named by position, never shown (a key is a secret), and without cryptography's own traceback.
            raise ImproperlyConfigured(
                f"CREDENTIALS_KEY: key {position} of {len(keys)} is not a Fernet key (urlsafe base64 of 32 bytes; "
                "generate one with Fernet.generate_key())"
            ) from None
    return MultiFernet(fernets)


class Undecryptable:
    """A stored secret the configured key cannot decrypt. Holds the token only to write it back unchanged;
    never shows it (``repr`` and ``str`` name the state, not the value)."""

    __slots__ = ("_token",)

    def __init__(self, token: str):
        self._token = token

    @property
    def token(self) -> str:
        return self._token

    def __bool__(self) -> bool:
        return True  # something is stored; it is not "no credentials"

    def __eq__(self, other) -> bool:
        return isinstance(other, Undecryptable) and other._token == self._token

    def __hash__(self) -> int:
        return hash(self._token)

    def __repr__(self) -> str:
        return "<Undecryptable>"

    __str__ = __repr__


def is_undecryptable(value) -> bool:
    return isinstance(value, Undecryptable)


def _decrypt(token: str):
    """The plaintext of a token, or an Undecryptable marker."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return Undecryptable(token)


class EncryptedJSONField(models.TextField):
    """Stores a dict as a Fernet token. Assign a plain dict; read back a plain dict, or ``Undecryptable``."""

    description = "Encrypted JSON object"

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if value is None or value == "":
            return {}
        if isinstance(value, (dict, Undecryptable)):
            return value
        plain = _decrypt(value)
        if isinstance(plain, Undecryptable):
            return plain
        try:
            data = json.loads(plain)
        except ValueError:
            return Undecryptable(value)
        return data if isinstance(data, dict) else Undecryptable(value)

    def get_prep_value(self, value):
        if isinstance(value, Undecryptable):
            return value.token  # saved again unchanged: a key fixed later still reads it
        if value is None:
            value = {}
        if isinstance(value, str):
            return value  # already a token (e.g. a queryset update with a prepared value)
        return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def value_to_string(self, obj):
        return ""  # never serialize secrets (dumpdata, fixtures)


class EncryptedTextField(models.TextField):
    """Stores a string as a Fernet token; the empty string is stored as is. Assign and read plain strings
    (or ``Undecryptable`` when the configured key cannot decrypt what is stored)."""

    description = "Encrypted text"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return ""
        return _decrypt(value)

    def to_python(self, value):
        # In Python the value is always the plain string (or the marker); only the database holds tokens.
        if value is None:
            return ""
        return value if isinstance(value, (str, Undecryptable)) else str(value)

    def get_prep_value(self, value):
        if isinstance(value, Undecryptable):
            return value.token
        if value in (None, ""):
            return ""
        return _fernet().encrypt(str(value).encode()).decode()

    def value_to_string(self, obj):
        return ""
