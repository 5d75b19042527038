"""Shared plumbing for provider adapters.

A provider module only maps fields: it builds a request, reads the reply, parses a callback and verifies
a signature. Everything else lives here once: the pooled HTTP session, timeouts, classification of
transport failures, JSON decoding, redacted call logging and the normalized types the rest of the app sees.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

logger = logging.getLogger("messaging.providers")

# --- normalized vocabulary -----------------------------------------------------------------------

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
RECEIVED = "received"
UNKNOWN = "unknown"

NORMALIZED_STATUSES = (QUEUED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, RECEIVED, UNKNOWN)
NO_ERROR_CODES = {None, "", "0", "000"}


def clean_error_code(value: Any) -> str:
    """Providers write "no error" as null, "", "0" or "000"; all of them mean no error."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text in NO_ERROR_CODES else text


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
    """One normalized status report about one message (from a callback or a lookup)."""

    provider_message_id: str
    status: str  # normalized, one of NORMALIZED_STATUSES
    raw_status: str
    occurred_at: datetime  # aware UTC
    error_code: str = ""
    error_message: str = ""
    event_id: str = ""  # provider's own event id when it has one; otherwise derived from the payload
    sequence: int | None = None  # provider ordering (Plivo `Sequence`)
    our_message_id: int | None = None  # from ExternalId / tag when the provider echoes it
    recipient: str = ""
    direction: str = "outbound"
    body: str = ""
    raw: dict | list = field(default_factory=dict)

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
    """A request as an adapter describes it; base.py performs it."""

    method: str
    path: str  # appended to the base URL, or an absolute URL
    json: Any = None
    data: Any = None
    params: dict | None = None
    headers: dict = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    allow_redirects: bool = False  # provider API calls never follow redirects; media checks do


# --- errors --------------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider call did not succeed. Carries context, never secrets."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        http_status: int | None = None,
        code: str = "",
        response: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.http_status = http_status
        self.code = code
        self.response = response  # redacted, truncated

    def __str__(self) -> str:
        parts = [self.provider or "provider", self.kind]
        if self.http_status:
            parts.append(f"HTTP {self.http_status}")
        if self.code:
            parts.append(f"code {self.code}")
        return f"{' '.join(parts)}: {self.message}"


class TransientError(ProviderError):
    """Try again later: 429 (with its hint), 5xx, connection refused before the request was written.

    ``rate_limited`` marks the provider asking us to slow down (429, or a provider's own rate-limit code):
    the sender is slowed for every worker, and the attempt does not count against the message."""

    kind = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, rate_limited: bool | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.rate_limited = (self.http_status == 429) if rate_limited is None else rate_limited


class PermanentError(ProviderError):
    """Fail now: invalid number, opted out, content rejected, bad credentials."""

    kind = "permanent"

    def __init__(self, message: str, *, recipient_side: bool = False, **kwargs):
        super().__init__(message, **kwargs)
        # True when the fault is the recipient's (invalid number, opted out): failover won't help.
        self.recipient_side = recipient_side


class AmbiguousError(ProviderError):
    """The provider may have accepted the message: timeout or connection lost after the request was written."""

    kind = "ambiguous"


class LookupInconclusiveError(ProviderError):
    """``find`` cannot tell whether the provider has the message: the list ran past its page cap, did not cover
    the whole time window, was unreadable, or several of its messages match. Never a reason to send again:
    retry the lookup later or flag the message for staff."""

    kind = "inconclusive"


class SignatureError(Exception):
    """A callback's signature is missing or wrong."""


class ConfigurationError(Exception):
    """The sender lacks something the provider needs (credential key, address)."""


# --- helpers adapters share ----------------------------------------------------------------------


def hmac_sha256(key: str | bytes, msg: str | bytes) -> bytes:
    key = key.encode() if isinstance(key, str) else key
    msg = msg.encode() if isinstance(msg, str) else msg
    return hmac.new(key, msg, hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest((a or "").encode(), (b or "").encode())


def url_without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def parse_datetime_utc(value: Any, default: datetime | None = None) -> datetime:
    """Read a provider timestamp (ISO 8601, 'YYYY-mm-dd HH:MM:SS[.ffffff]', unix seconds, RFC 2822)
    as an aware UTC datetime. Timestamps without a zone are taken as UTC. Unreadable -> default or now."""
    fallback = default or datetime.now(UTC)
    if value in (None, ""):
        return fallback
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
            number = float(value)
            if number > 1e12:  # milliseconds
                number /= 1000
            return datetime.fromtimestamp(number, tz=UTC)
        text = str(value).strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = parsedate_to_datetime(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, TypeError, OverflowError):
        return fallback


def first_of(params: dict, *names: str, default: Any = "") -> Any:
    """The first present, non-empty value among several possible field names."""
    for name in names:
        value = params.get(name)
        if value not in (None, ""):
            return value
    return default


def our_message_id(value: Any) -> int | None:
    """Our message id as a provider echoes it back (ExternalId, tag); None when absent or not ours."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def lookup_event_id(provider_message_id: str, raw_status: str) -> str:
    """The event id of a status read by lookup or list: one event per (message, status) however often read."""
    return f"lookup:{provider_message_id}:{raw_status}"


def callback_items(request: CallbackRequest) -> list[dict]:
    """The resources a callback carries, for providers that post one resource or a list of them: a JSON
    list or object, form fields, or (callback method GET) query fields beside our own ``m`` parameter."""
    if isinstance(request.json, list):
        return [item for item in request.json if isinstance(item, dict)]
    if isinstance(request.json, dict):
        return [request.json]
    if request.form:
        return [dict(request.form)]
    return [{k: v for k, v in request.query if k != "m"}]


def parse_retry_after(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        try:
            when = parsedate_to_datetime(str(value))
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def transient_for(
    status: int | None,
    text: str,
    headers: dict,
    *,
    code: str = "",
    rate_limited: bool = False,
    transient: bool = False,
    retry_after: float | None = None,
    default_retry_after: float | None = None,
) -> TransientError | None:
    """The part of error classification every provider shares. A 429, or a provider's own rate-limit answer
    (``rate_limited``), is a TransientError that slows the sender down, with the hint ``retry_after``, else the
    Retry-After header, else ``default_retry_after``. A 5xx, or a provider's own transient answer
    (``transient``), is a TransientError. Anything else is None: the provider decides the permanent error."""
    if status == 429 or rate_limited:
        hint = retry_after if retry_after is not None else parse_retry_after(headers.get("retry-after"))
        if default_retry_after is not None:
            hint = hint or default_retry_after
        return TransientError(text, http_status=status, code=code, retry_after=hint, rate_limited=True)
    if transient or (status is not None and status >= 500):
        return TransientError(text, http_status=status, code=code)
    return None


TOLL_FREE_PREFIXES = ("+1800", "+1833", "+1844", "+1855", "+1866", "+1877", "+1888")


def sender_type(address: str) -> str:
    """long_code, toll_free, short_code, alphanumeric or leased (blank: the provider picks the number)."""
    address = (address or "").strip()
    if not address:
        return "leased"
    digits = address.lstrip("+")
    if not digits.isdigit():
        return "alphanumeric"
    if len(digits) <= 6:
        return "short_code"
    if address.startswith(TOLL_FREE_PREFIXES):
        return "toll_free"
    return "long_code"


# --- HTTP session: one pooled keep-alive session per worker process ----------------------------

_session_lock = threading.Lock()
_session: requests.Session | None = None
_session_pid: int | None = None

# The connection a thread's provider call is using, so that a watchdog can cut it at the call's deadline.
_in_flight = threading.local()


class _CallWatch:
    """One provider call's deadline. ``requests``' read timeout applies to each socket read, so an answer that
    trickles in a byte at a time could outlast it indefinitely; at the deadline the watchdog shuts the call's
    socket down, which ends whatever read is blocked, and the call is reported as expired."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = 0.0
        self.connection: HTTPConnection | None = None
        self.expired = False
        self._done = False
        self._lock = threading.Lock()

    def __enter__(self) -> _CallWatch:
        _in_flight.watch = self
        self.deadline = time.monotonic() + self.seconds
        _watchdog.watch(self)
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._done = True  # from here the watchdog leaves the (pooled, reusable) connection alone
        _in_flight.watch = None

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Watchdog:
    """One thread per process that cuts the calls still running at their deadline. Written by hand because it
    is a heap and a condition variable; a timer thread per call cost more CPU than the rest of a send's
    bookkeeping. Calls that finish in time stay in the heap until their deadline and are then dropped."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker starts its own thread, clean lock

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _CallWatch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: _CallWatch) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="provider-call-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._heap[0][2] is call:
                self._cond.notify()  # an earlier deadline than the one being waited for

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                due = heapq.heappop(self._heap)[2]
            due.expire()


_watchdog = _Watchdog()


class _WatchedConnectionMixin:
    def request(self, *args, **kwargs):
        watch = getattr(_in_flight, "watch", None)
        if watch is not None:
            watch.connection = self
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections tell the calling thread's watchdog which socket to cut."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


def http_session() -> requests.Session:
    """One keep-alive connection pool per process, created again after a fork."""
    global _session, _session_pid
    pid = os.getpid()
    if _session is None or _session_pid != pid:
        with _session_lock:
            if _session is None or _session_pid != pid:
                from django.conf import settings

                pool = max(10, getattr(settings, "SEND_THREADS", 16) * 2)
                session = requests.Session()
                # No automatic retries: a retried send could be sent twice. We decide what to retry.
                adapter = _WatchedAdapter(pool_connections=20, pool_maxsize=pool, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = "campaign-messaging/0.1"
                _session, _session_pid = session, pid
    return _session


def _refused_before_sending(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the provider cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, (NewConnectionError, ConnectTimeoutError))


# --- the base class ------------------------------------------------------------------------------


class Provider:
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
    media_allowed: ClassVar[bool] = True
    # Default messages per second for a new sender of this provider (CONTRACTS.md rate limits).
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
    # Error codes (in callbacks or send answers) that mean "this recipient opted out", from the documentation.
    opt_out_error_codes: ClassVar[frozenset[str]] = frozenset()
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

    def verify_callback(self, request: CallbackRequest) -> None:
        """Raise SignatureError unless the request is authentic."""
        raise NotImplementedError

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        raise NotImplementedError

    def build_send_bulk(self, messages: list[OutboundMessage]) -> HttpCall:
        raise NotImplementedError

    def parse_send_bulk(self, messages: list[OutboundMessage], status: int, data: Any, headers: dict) -> list:
        """One SendResult or ProviderError per message, aligned with ``messages``."""
        raise NotImplementedError

    # ---- shared behaviour ----

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
        if media_urls and not self.media_allowed:
            problems.append(f"{self.name} does not send media with this sender.")
        if self.max_media is not None and len(media_urls) > self.max_media:
            problems.append(f"{self.name} accepts at most {self.max_media} media files; this message has {len(media_urls)}.")
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
        from django.conf import settings

        url = self.url(call.path)
        read_timeout = timeout or settings.PROVIDER_TIMEOUT
        connect = connect_timeout or settings.PROVIDER_CONNECT_TIMEOUT
        started = time.monotonic()
        watch = _CallWatch(connect + read_timeout)
        try:
            with watch:
                response = http_session().request(
                    call.method,
                    url,
                    json=call.json,
                    data=call.data,
                    params=call.params,
                    headers=call.headers,
                    auth=call.auth,
                    timeout=(connect, read_timeout),
                    allow_redirects=call.allow_redirects,
                )
        except requests.RequestException as exc:
            elapsed = (time.monotonic() - started) * 1000
            if watch.expired:
                logger.warning("%s %s %s -> cut at the %.3g s deadline (%.0f ms)", self.code, call.method,
                               self.redact(url), watch.seconds, elapsed)
                raise AmbiguousError(f"no complete answer within {watch.seconds:g} s", provider=self.code) from None
            if isinstance(exc, requests.ConnectionError) and _refused_before_sending(exc):
                logger.warning("%s %s %s -> not connected (%.0f ms)", self.code, call.method, self.redact(url), elapsed)
                raise TransientError("could not connect to the provider", provider=self.code) from None
            if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
                logger.warning("%s %s %s -> connection lost (%.0f ms)", self.code, call.method, self.redact(url),
                               elapsed)
                raise AmbiguousError("connection lost after the request was sent", provider=self.code) from None
            if isinstance(exc, requests.Timeout):
                logger.warning("%s %s %s -> timed out (%.0f ms)", self.code, call.method, self.redact(url), elapsed)
                raise AmbiguousError("no answer within the timeout", provider=self.code) from None
            raise TransientError(f"request error: {type(exc).__name__}", provider=self.code) from None
        elapsed = (time.monotonic() - started) * 1000
        headers = {k.lower(): v for k, v in response.headers.items()}
        data: Any
        if not response.content:
            data = None
        else:
            try:
                data = response.json()
            except ValueError:
                data = response.text
        level = logging.INFO if response.status_code < 400 else logging.WARNING
        if logger.isEnabledFor(level):
            body = response.text[:500] if response.status_code >= 400 else ""
            logger.log(
                level,
                "%s %s %s -> %s (%.0f ms) %s",
                self.code,
                call.method,
                self.redact(url),
                response.status_code,
                elapsed,
                self.redact(body),
            )
        return response.status_code, data, headers

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

    def find_in_pages(
        self,
        first: HttpCall,
        *,
        items: Callable[[Any], list | None],
        matches: Callable[[dict], bool],
        next_call: Callable[[HttpCall, Any, dict, list], HttpCall | None],
        max_pages: int,
        unique: bool,
    ) -> StatusEvent | None:
        """``find`` over a list endpoint read page by page.

        ``items(data)`` is a page's list of resources (None when the answer is not a list we can read);
        ``matches(item)`` says whether a resource is the message we look for; ``next_call(call, data, headers,
        rows)`` is the request for the following page, or None once the provider says the window is exhausted.
        ``unique``: the match is on recipient, sender and time only (no id of ours), so two candidates mean we
        cannot tell which one is ours. Returns ``parse_lookup`` of the match, or None when every page of the
        window was read without one."""
        found: list[dict] = []
        call: HttpCall | None = first
        pages = 0
        while call is not None:
            if pages >= max_pages:
                raise LookupInconclusiveError(
                    f"read {max_pages} pages of {self.name}'s message list without covering the whole window",
                    provider=self.code,
                )
            status, data, headers = self.request(call)
            self._raise_for(status, data, headers)
            pages += 1
            rows = items(data)
            if rows is None:
                raise LookupInconclusiveError(f"{self.name}'s message list answer is not readable",
                                              provider=self.code, http_status=status)
            found += [row for row in rows if isinstance(row, dict) and matches(row)]
            if found and not unique:
                break
            if len(found) > 1:
                break
            call = next_call(call, data, headers, rows)
        if len(found) > 1 and unique:
            raise LookupInconclusiveError(
                f"{len(found)} messages to this recipient from this sender in the window: cannot tell which is ours",
                provider=self.code,
            )
        if not found:
            return None
        event = self.parse_lookup(found[0])
        if event is None:
            raise LookupInconclusiveError(f"{self.name} listed a matching message we cannot read", provider=self.code)
        return event

    # ---- media checked before queueing ----

    media_check_timeout: ClassVar[float] = 3.0  # seconds for each HEAD request (connection included)

    def check_media(self, urls: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Ask each media URL its size (HEAD, through this HTTP layer, short timeout) and compare it with the
        provider's documented ``max_media_bytes`` (per file, or for the whole message when
        ``media_limit_is_total``). Returns (problems, warnings): a problem blocks queueing (a file, or the
        total, over the limit: named with its size and the limit); a warning does not (unreachable URL, error
        answer, no Content-Length). Nothing is asked when the provider documents no size limit."""
        problems: list[str] = []
        warnings: list[str] = []
        limit = self.max_media_bytes
        if not urls or not limit:
            return problems, warnings
        sizes: dict[str, int] = {}
        for url in urls:
            if urlsplit(str(url)).scheme not in ("http", "https"):
                warnings.append(f"{url} is not an http(s) URL; its size could not be checked.")
                continue
            try:
                status, _, headers = self.request(
                    HttpCall("HEAD", str(url), allow_redirects=True),
                    timeout=self.media_check_timeout / 2,
                    connect_timeout=self.media_check_timeout / 2,
                )
            except ProviderError as exc:
                warnings.append(f"{url} could not be reached to check its size ({exc.message}).")
                continue
            if status >= 400:
                warnings.append(f"{url} answered HTTP {status}; its size could not be checked.")
                continue
            length = str(headers.get("content-length") or "").strip()
            if not length.isdigit():
                warnings.append(f"{url} did not say its size (no Content-Length); {self.name} accepts at most "
                                f"{_size(limit)}.")
                continue
            sizes[str(url)] = int(length)
            if not self.media_limit_is_total and int(length) > limit:
                problems.append(f"{url} is {_size(int(length))}; {self.name} accepts at most {_size(limit)} per "
                                "media file.")
        if self.media_limit_is_total and sum(sizes.values()) > limit:
            listed = ", ".join(f"{url} {_size(size)}" for url, size in sizes.items())
            problems.append(f"The media files total {_size(sum(sizes.values()))} ({listed}); {self.name} accepts at "
                            f"most {_size(limit)} in one message.")
        return problems, warnings

    # ---- callbacks that report on parts of one message ----

    def combine_parts(self, events: list[StatusEvent], history: Callable[[str], list[dict]]) -> list[StatusEvent]:
        """Events of a provider that reports each part of a long message separately, combined into the
        message's own status. ``history(provider_message_id)`` returns the raw payloads already stored for
        that message. Providers that report whole messages return ``events`` unchanged."""
        return events

    def check_credentials(self) -> str:
        """One harmless authenticated call. Returns a short human answer; raises ProviderError."""
        status, data, headers = self.request(self.build_check())
        self._raise_for(status, data, headers)
        return f"{self.name} accepted the credentials (HTTP {status})."


def _size(n: int) -> str:
    """Bytes in words: exact, plus MB when large."""
    return f"{n:,} bytes ({n / (1024 * 1024):.1f} MB)" if n >= 1024 * 1024 else f"{n:,} bytes"


def in_window(when: datetime, since: datetime, until: datetime | None) -> bool:
    """``when`` within [since, until] (until None = open-ended), all aware."""
    return when >= since and (until is None or when <= until)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


# --- optional HTTP Basic auth on callbacks of providers that sign nothing (Fone Dynamics, Bandwidth v1) ---


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
    """Raise SignatureError unless the callback carries exactly these HTTP Basic credentials.
    Nothing is required when neither is configured."""
    if not (username or password):
        return
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
    """Base of providers that sign nothing (Fone Dynamics, Bandwidth v1): the unguessable sender uuid in the
    callback URL is the credential. Optional HTTP Basic credentials (the sender option ``callback_username`` and
    the sender's encrypted ``callback_password`` field) are embedded in the callback URL we hand the provider
    and required back on every callback; the password never reaches logs, admin pages or stored payloads."""

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
        # Nothing is signed: the sender uuid in the URL is the credential, plus optional Basic auth.
        check_basic_auth(request, *self.callback_credentials())

    def scrub(self, data: Any) -> Any:
        """A resource may echo our callback URL, which may embed the callback password: never store it."""
        if not self.callback_credentials()[1]:
            return data
        return json.loads(self.redact(json.dumps(data, default=str)))
