"""Callback authentication for providers that sign nothing (Fone Dynamics, Bandwidth v1): HTTP Basic credentials
embedded in the callback URL we hand the provider and required back on every callback, and
``BasicAuthCallbackProvider``, the base of those adapters."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from .errors import SignatureError
from .normalized import CallbackRequest
from .parsing import constant_time_equal
from .provider import Provider


def url_with_basic_auth(url: str, username: str, password: str) -> str:
    """``https://user:pass@host/path``: the only way to have such a provider send Basic credentials."""
    if not url or not (username or password):
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_for_console(url: str, username: str) -> str:
    """``https://user:<password>@host/path``: the form a provider's console needs, with the literal placeholder
    ``<password>`` where the callback password goes (never the password itself)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}:<password>@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_basic_auth(request: CallbackRequest, username: str, password: str) -> None:
    """Raise SignatureError unless the callback carries exactly these HTTP Basic credentials. Without a
    password nothing can be checked, so everything is refused: a callback is never open."""
    if not password:
        raise SignatureError("the sender has no callback password: its callbacks are refused until one is set")
    scheme, _, value = request.header("Authorization").strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise SignatureError("HTTP Basic credentials are missing")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("HTTP Basic credentials are unreadable") from None
    user, colon, secret = decoded.partition(":")
    user_ok = constant_time_equal(user, username)
    secret_ok = constant_time_equal(secret, password)
    if not (colon and user_ok and secret_ok):
        raise SignatureError("HTTP Basic credentials do not match")


class BasicAuthCallbackProvider(Provider):
    """Base of providers that sign nothing (Fone Dynamics, Bandwidth v1). Every callback must carry HTTP Basic
    credentials: the sender option ``callback_username`` (may be empty) and the sender's encrypted
    ``callback_password``, which senders get at random when they are created. They are embedded in the callback
    URL we hand the provider and required back; a sender without a password has every callback refused. The
    password never reaches logs or stored payloads."""

    signs_callbacks = False
    callback_basic_auth = True

    def callback_credentials(self) -> tuple[str, str]:
        options = self.sender.options or {}
        return str(options.get("callback_username") or ""), str(self.sender.callback_password or "")

    def callback_url(self, url: str) -> str:
        """The status-callback URL to give the provider, carrying the Basic credentials when there are any."""
        return url_with_basic_auth(url, *self.callback_credentials())

    def secrets(self) -> list[str]:
        out = super().secrets()
        password = self.callback_credentials()[1]
        if len(password) >= 4:
            out += [password, quote(password, safe="")]
        return out

    def verify_callback(self, request: CallbackRequest) -> None:
        # Nothing is signed: the Basic credentials are the only proof, and they are required.
        check_basic_auth(request, *self.callback_credentials())

    def scrub(self, data: Any) -> Any:
        """A resource may echo our callback URL, which embeds the callback password: never store it."""
        if not self.callback_credentials()[1]:
            return data
        return json.loads(self.redact(json.dumps(data, default=str)))
