"""Helpers adapters share to read what a provider says: error codes, timestamps, field names that vary, numbered
and listed fields (media URLs), our own id echoed back, callback bodies of several shapes, rate-limit hints, the kind of sender an address is, and the
small signing primitives (HMAC, base64, constant-time comparison)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .errors import TransientError

if TYPE_CHECKING:
    from .normalized import CallbackRequest

NO_ERROR_CODES = {None, "", "0", "000"}


def clean_error_code(value: Any) -> str:
    """Providers write "no error" as null, "", "0" or "000"; all of them mean no error."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text in NO_ERROR_CODES else text


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
    except (ValueError, TypeError, OverflowError, OSError):  # OSError: a timestamp the platform cannot hold
        return fallback


def first_of(params: dict, *names: str, default: Any = "") -> Any:
    """The first present, non-empty value among several possible field names."""
    for name in names:
        value = params.get(name)
        if value not in (None, ""):
            return value
    return default


# Our message ids are positive 64-bit integers (BigAutoField): anything larger is not one of ours.
MAX_MESSAGE_ID = 2**63 - 1


def numbered_values(params: dict, prefix: str) -> tuple[str, ...]:
    """The non-empty values of the fields ``<prefix><n>`` (media URLs: ``MediaUrl0``..., ``Media1``...), in the
    order of n. A count field beside them is not trusted: every numbered field present is read."""
    numbered = []
    for name, value in params.items():
        number = name[len(prefix):] if isinstance(name, str) and name.startswith(prefix) else ""
        if number.isascii() and number.isdigit() and len(number) <= 4 and value not in (None, ""):
            numbered.append((int(number), str(value)))
    return tuple(value for _, value in sorted(numbered))


def string_values(value: Any) -> tuple[str, ...]:
    """A field that holds one string or a list of them (media URLs), as the non-empty strings it holds."""
    values = value if isinstance(value, list) else [value]
    return tuple(item for item in values if isinstance(item, str) and item)


def our_message_id(value: Any) -> int | None:
    """Our message id as a provider echoes it back (ExternalId, tag); None when absent or not ours."""
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    number = int(text)
    return number if 0 < number <= MAX_MESSAGE_ID else None


def lookup_event_id(provider_message_id: str, raw_status: str) -> str:
    """The event id of a status read by lookup or list: one event per (message, status) however often read."""
    return f"lookup:{provider_message_id}:{raw_status}"


def callback_items(request: CallbackRequest) -> list[dict]:
    """The resource a callback carries: a JSON object, form fields, or (callback method GET) query fields beside
    our own ``m`` parameter. (The webhook refuses JSON that is not an object before adapters see it.)"""
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


def in_window(when: datetime, since: datetime, until: datetime | None) -> bool:
    """``when`` within [since, until] (until None = open-ended), all aware."""
    return when >= since and (until is None or when <= until)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)

