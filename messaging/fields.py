"""A JSON dict encrypted at rest (Fernet from the ``cryptography`` package)."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _fernet() -> MultiFernet:
    keys = list(settings.CREDENTIALS_KEYS)
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(("credentials:" + settings.SECRET_KEY).encode()).digest())
        keys = [derived.decode()]
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("CREDENTIALS_KEY must be Fernet keys (urlsafe base64 of 32 bytes)") from exc


class EncryptedJSONField(models.TextField):
    """Stores a dict as a Fernet token. Assign a plain dict; read back a plain dict."""

    description = "Encrypted JSON object"

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if value is None or isinstance(value, dict):
            return value if value is not None else {}
        if value == "":
            return {}
        try:
            return json.loads(_fernet().decrypt(value.encode()).decode())
        except InvalidToken:
            # Never surface the ciphertext or a key; an unreadable value is treated as no credentials.
            return {}

    def get_prep_value(self, value):
        if value is None:
            value = {}
        if isinstance(value, str):
            return value  # already a token (e.g. a queryset update with a prepared value)
        return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def value_to_string(self, obj):
        return ""  # never serialize secrets (dumpdata, fixtures)
