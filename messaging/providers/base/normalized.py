"""The normalized vocabulary the rest of the app sees: the status values and the frozen dataclasses that cross
between the services and an adapter (a message to send, a send result, a status event, the sender's settings, a
callback request, an HTTP call). The meaning of each status is in docs/providers.md, "Normalized statuses"."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
RECEIVED = "received"
UNKNOWN = "unknown"

NORMALIZED_STATUSES = (QUEUED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, RECEIVED, UNKNOWN)


@dataclass(frozen=True)
class OutboundMessage:
    """What an adapter needs to send one message."""

    id: int  # our message id, echoed where the provider allows (ExternalId, tag)
    to: str  # E.164
    body: str
    media_urls: tuple[str, ...] = ()
    status_callback_url: str = ""


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str  # normalized
    raw: dict | list | None = None
    message_id: int | None = None  # our id, filled by bulk sends to align results


@dataclass(frozen=True)
class StatusEvent:
    """One normalized status report about one message (from a callback or a lookup), or one inbound message (a
    reply: ``direction`` "inbound", ``status`` RECEIVED).

    The addresses are the provider's own strings, never normalized or checked here: a reply may come from a
    number with or without ``+``, a short code (``898287``), an alphanumeric sender (``ACME``) or a number of a
    range no library knows; what is stored is the inbound service's decision.

    - ``recipient``: outbound, the message's recipient; inbound, the address that wrote the reply (the
      counterpart: Plivo and CloudVNO ``From``, Sendblue ``number`` or ``from_number``, Bandwidth ``from``,
      Fone Dynamics ``From``).
    - ``to_address``: inbound, the address the reply was sent to (our sender's line: ``To``, ``to``,
      Sendblue ``to_number``), as given; "" for outbound events.
    - ``body``: inbound, the reply's text ("" when it has none); "" for outbound events.
    - ``media_urls``: inbound, the reply's media as the provider lists them, in order (CloudVNO
      ``MediaUrl0``..., Plivo ``Media1``..., Sendblue ``media_url``, Bandwidth ``media``); () otherwise."""

    provider_message_id: str
    status: str  # normalized, one of NORMALIZED_STATUSES
    raw_status: str
    occurred_at: datetime  # aware UTC
    error_code: str = ""
    error_message: str = ""
    event_id: str = ""  # provider's own event id when it has one; otherwise derived from the payload
    sequence: int | None = None  # provider ordering (Plivo `Sequence`)
    our_message_id: int | None = None  # from ExternalId / tag when the provider echoes it
    recipient: str = ""  # see the class docstring
    direction: str = "outbound"
    body: str = ""
    raw: dict | list = field(default_factory=dict)
    # Which part of a message split into several this event reports, and of how many parts (Plivo `PartInfo`);
    # 1 of 1 for providers that report whole messages.
    part: int = 1
    parts: int = 1
    media_urls: tuple[str, ...] = ()  # see the class docstring
    to_address: str = ""  # see the class docstring

    def dedupe_key(self) -> str:
        """Same callback delivered twice -> same key. Provider event ids win; else a hash of the payload."""
        if self.event_id:
            basis = f"id:{self.event_id}"
        else:
            basis = "raw:" + json.dumps(self.raw, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(basis.encode()).hexdigest()


@dataclass(frozen=True)
class SenderConfig:
    """The sender as a provider sees it: no ORM object crosses into adapter code."""

    address: str
    credentials: dict
    uuid: str = ""
    base_url: str = ""
    options: dict = field(default_factory=dict)
    callback_password: str = ""  # HTTP Basic password required on callbacks (providers that sign nothing)
    inbound_url: str = ""  # this sender's public inbound-message webhook


@dataclass(frozen=True)
class CallbackRequest:
    """A webhook request, framework-free, as received."""

    method: str
    url: str  # absolute URL the provider called (public base URL applied behind a proxy)
    headers: dict  # lower-cased header names
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    json: Any = None
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def params(self) -> dict:
        """Flat dict of the callback's fields, from JSON body, form body or query string, in that order."""
        if isinstance(self.json, dict):
            return self.json
        if self.form:
            return dict(self.form)
        return dict(self.query)


@dataclass(frozen=True)
class HttpCall:
    """A request as an adapter describes it; ``Provider.request`` performs it."""

    method: str
    path: str  # appended to the base URL, or an absolute URL
    json: Any = None
    data: Any = None
    params: dict | None = None
    headers: dict = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    allow_redirects: bool = False  # provider API calls never follow redirects; media checks do
