"""``Provider``, the base of every adapter: the class attributes a provider module sets (status map, documented
limits, pace), the hooks it implements (build a request, read the answer, parse a callback, verify a signature),
and the flows built on them once for all providers (send, bulk send, lookup, error context, credential check)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, ClassVar

from .errors import ConfigurationError, PermanentError, ProviderError, TransientError
from .http import perform
from .media import MediaChecks, MediaFile
from .normalized import (
    UNKNOWN,
    CallbackRequest,
    HttpCall,
    OutboundMessage,
    SenderConfig,
    SendResult,
    StatusEvent,
)
from .paging import PagedFind
from .parsing import sender_type, transient_for


class Provider(PagedFind, MediaChecks):
    """Base of every adapter. Subclasses set the class attributes and implement the mapping hooks."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    credential_keys: ClassVar[tuple[str, ...]] = ()
    # Provider status value -> normalized status. Unknown values map to UNKNOWN and never raise.
    status_map: ClassVar[dict[str, str]] = {}
    # Documented limits, checked before a message is queued. None = not documented / no limit.
    max_body_chars: ClassVar[int | None] = None
    max_media: ClassVar[int | None] = None
    max_media_bytes: ClassVar[int | None] = None
    # MIME types the provider documents as accepted for MMS; an entry may name a whole kind (``audio/*``).
    media_types: ClassVar[frozenset[str] | None] = None
    media_allowed: ClassVar[bool] = True
    # Default messages per second for a new sender of this provider (the pace each section of docs/providers.md
    # gives).
    default_mps: ClassVar[float] = 1.0
    # Documented pace by kind of sender (see ``sender_type``); kinds not listed use ``default_mps``.
    mps_by_sender_type: ClassVar[dict[str, float]] = {}
    supports_lookup: ClassVar[bool] = False
    bulk_size: ClassVar[int] = 1  # >1 when the provider has a bulk endpoint
    # True when the documented media limit is on the total of one message's media, not on each file.
    media_limit_is_total: ClassVar[bool] = False
    # Header names whose values are signatures/secrets and must never be logged.
    secret_headers: ClassVar[tuple[str, ...]] = ()
    signs_callbacks: ClassVar[bool] = True
    # True for providers whose callbacks can carry HTTP Basic credentials embedded in the URL we give them.
    callback_basic_auth: ClassVar[bool] = False
    # True when the provider itself handles STOP/START/HELP on its numbers (blocks a number after its STOP, so a
    # confirmation from us could not reach it): we record the consent change and send no keyword answer.
    answers_keywords: ClassVar[bool] = False
    # Seconds to wait after a rate-limit answer that carries no hint of its own (no Retry-After, no body field).
    # One second: the slowest pace any of our providers documents is one message per second per sender.
    default_retry_after: ClassVar[float] = 1.0

    def __init__(self, sender: SenderConfig):
        self.sender = sender
        self.credentials = sender.credentials or {}
        self.base_url = (sender.base_url or self.default_base_url).rstrip("/")

    # ---- hooks a provider module implements ----

    def build_send(self, message: OutboundMessage) -> HttpCall:
        raise NotImplementedError

    def parse_send(self, message: OutboundMessage, status: int, data: Any, headers: dict) -> SendResult:
        raise NotImplementedError

    def error_for(self, status: int, data: Any, headers: dict) -> ProviderError:
        """Classify a non-2xx answer. The default: 429 and 5xx transient, other 4xx permanent."""
        text = self.error_text(data)
        transient = transient_for(status, text, headers)
        return transient if transient is not None else PermanentError(text, http_status=status)

    def error_text(self, data: Any) -> str:
        if isinstance(data, dict):
            for key in ("error", "message", "error_message", "description"):
                value = data.get(key)
                if isinstance(value, dict):
                    value = value.get("message") or json.dumps(value)
                if value:
                    return str(value)
        if isinstance(data, str) and data:
            return data[:300]
        return "request refused"

    def build_lookup(self, provider_message_id: str) -> HttpCall:
        raise NotImplementedError

    def parse_lookup(self, data: Any) -> StatusEvent | None:
        raise NotImplementedError

    def build_check(self) -> HttpCall:
        """One harmless authenticated call for the "check credentials" action."""
        raise NotImplementedError

    def verify_callback(self, request: CallbackRequest) -> str | None:
        """Raise SignatureError unless the request is authentic. None when what proves it covers what the
        callback says (the body and the URL with its message reference), or when the proof is a secret only the
        provider holds (Basic credentials, a shared secret). A scheme that covers less (Plivo V2: the URL
        without its query, and a nonce) returns that nonce, prefixed with the scheme's name: the caller accepts
        the request only if the nonce was not seen before within CALLBACK_REPLAY_WINDOW_SECONDS."""
        raise NotImplementedError

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        raise NotImplementedError

    def build_send_bulk(self, messages: list[OutboundMessage]) -> HttpCall:
        raise NotImplementedError

    def parse_send_bulk(self, messages: list[OutboundMessage], status: int, data: Any, headers: dict) -> list:
        """One SendResult or ProviderError per message, aligned with ``messages``."""
        raise NotImplementedError

    # ---- shared behaviour ----

    def callback_url(self, url: str) -> str:
        """A callback URL of ours as the provider is given it: with the credentials it must send back, for the
        providers whose callbacks carry HTTP Basic credentials."""
        return url

    @classmethod
    def callback_password_needed(cls, options: dict) -> bool:
        """Whether a sender of this provider with these options needs a callback password (HTTP Basic
        credentials required on its callbacks): its callbacks are refused without one."""
        return cls.callback_basic_auth

    @classmethod
    def credentials_optional(cls, options: dict) -> frozenset[str]:
        """The credential keys a sender of this provider with these options may leave out (the rest are needed
        to send or to prove its callbacks)."""
        return frozenset()

    @classmethod
    def default_mps_for(cls, address: str) -> float:
        """The documented messages-per-second for a new sender with this address."""
        return cls.mps_by_sender_type.get(sender_type(address), cls.default_mps)

    @classmethod
    def map_status(cls, value: Any, default: str = UNKNOWN) -> str:
        """The normalized status of a provider value; ``default`` (UNKNOWN) when absent or not in the map."""
        if value is None:
            return default
        return cls.status_map.get(str(value).strip(), cls.status_map.get(str(value).strip().lower(), default))

    def credential(self, key: str) -> str:
        value = self.credentials.get(key)
        if not value:
            raise ConfigurationError(f"{self.name} sender is missing the credential '{key}'")
        return str(value)

    def secrets(self) -> list[str]:
        return [str(v) for v in self.credentials.values() if v and len(str(v)) >= 4]

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
            # secrets can also appear inside Basic auth headers or base64 payloads
            text = text.replace(base64.b64encode(secret.encode()).decode(), "***")
        return text

    def check_limits(self, body: str, media_urls: list[str] | tuple[str, ...]) -> list[str]:
        """Problems with a message against this provider's documented limits, in plain words."""
        problems = []
        if self.max_body_chars and len(body) > self.max_body_chars:
            problems.append(
                f"{self.name} accepts at most {self.max_body_chars} characters; this message has {len(body)}."
            )
        # Media allowed at all and how many (the sizes and types of URLs are learned by ``check_media``).
        problems += self.check_media_files([MediaFile(str(url), None) for url in media_urls])
        if not body and not media_urls:
            problems.append("The message has neither text nor media.")
        return problems

    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return f"{self.base_url}{path}"

    def request(
        self, call: HttpCall, *, timeout: float | None = None, connect_timeout: float | None = None
    ) -> tuple[int, Any, dict]:
        """Perform one call. Returns (status, decoded body, lower-cased headers) for any HTTP answer;
        raises TransientError or AmbiguousError when there is no answer.

        The whole call, connection to last byte, never lasts longer than the connect timeout plus the read
        timeout (PROVIDER_CONNECT_TIMEOUT + PROVIDER_TIMEOUT by default): past that deadline the connection is
        cut and the outcome is ambiguous, however slowly the answer was still arriving."""
        return perform(call, self.url(call.path), provider=self.code, redact=self.redact, timeout=timeout,
                       connect_timeout=connect_timeout)

    def with_context(self, error: ProviderError, data: Any, status: int | None = None) -> ProviderError:
        """The error, naming this provider, with the (redacted, truncated) answer it came from. A rate-limit
        answer without a hint of its own gets the provider's ``default_retry_after``."""
        error.provider = self.code
        error.http_status = error.http_status or status
        if isinstance(error, TransientError) and error.rate_limited and error.retry_after is None:
            error.retry_after = self.default_retry_after
        raw = data if isinstance(data, str) else json.dumps(data, default=str)
        error.response = self.redact((raw or "")[:1000])
        error.message = self.redact(error.message)
        return error

    def _raise_for(self, status: int, data: Any, headers: dict) -> None:
        if status < 400:
            return
        raise self.with_context(self.error_for(status, data, headers), data, status)

    def send(self, message: OutboundMessage) -> SendResult:
        call = self.build_send(message)
        status, data, headers = self.request(call)
        self._raise_for(status, data, headers)
        return self.parse_send(message, status, data, headers)

    def send_bulk(self, messages: list[OutboundMessage]) -> list:
        """Send several messages in one request. Returns one SendResult or ProviderError per message.
        A failure of the whole request raises like ``send``."""
        if self.bulk_size <= 1 or len(messages) == 1:
            out = []
            for message in messages:
                try:
                    out.append(self.send(message))
                except (TransientError, PermanentError) as exc:
                    out.append(exc)
            return out
        call = self.build_send_bulk(messages)
        status, data, headers = self.request(call)
        self._raise_for(status, data, headers)
        return self.parse_send_bulk(messages, status, data, headers)

    def lookup(self, provider_message_id: str) -> StatusEvent | None:
        """The provider's current view of one message, or None if it does not know it."""
        if not self.supports_lookup:
            raise NotImplementedError(f"{self.name} has no status lookup")
        status, data, headers = self.request(self.build_lookup(provider_message_id))
        if status == 404:
            return None
        self._raise_for(status, data, headers)
        return self.parse_lookup(data)

    def find(self, message: OutboundMessage, since: datetime, until: datetime | None = None) -> StatusEvent | None:
        """Did the provider accept this message (ambiguous outcome)? Looks for it among the messages the
        provider lists between ``since`` and ``until`` (default: now).

        Returns an event when found; None only when the provider's answer proves the message is absent (the
        whole window was read and nothing matched), because None makes the reconciler send it again. Raises
        LookupInconclusiveError when the answer cannot tell (page cap reached, unreadable list, several
        candidates), and NotImplementedError when the provider cannot be asked at all."""
        raise NotImplementedError(f"{self.name} cannot be asked about a message without its id")

    def check_credentials(self) -> str:
        """One harmless authenticated call. Returns a short human answer; raises ProviderError."""
        status, data, headers = self.request(self.build_check())
        self._raise_for(status, data, headers)
        return f"{self.name} accepted the credentials (HTTP {status})."

