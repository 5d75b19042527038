"""Shared plumbing for provider adapters.

A provider module only maps fields: it builds a request, reads the reply, parses a callback and verifies a
signature. Everything else lives here once, one concern per module:

  normalized.py     the normalized statuses and the frozen dataclasses the rest of the app sees
  errors.py         transient, permanent and ambiguous errors, and the other errors of a provider call
  causes.py         the error causes (why a message was refused or failed, whichever the provider) and
                    ``ErrorCode``, an entry of a provider's error table (the tables are in ``providers/codes/``)
  parsing.py        helpers adapters share to read answers and callbacks (codes, timestamps, signing primitives)
  http.py           the pooled HTTP session, the call deadline watchdog, and performing one call
  outbound.py       connections to public addresses only (checked, pinned), OUTBOUND_ALLOWED_HOSTS
  provider.py       ``Provider``, the base class: attributes, hooks, and the send / lookup flows
  media.py          ``MediaFile`` and the media checks before queueing: count, size, type (mixed into ``Provider``)
  paging.py         ``find`` over a list endpoint read page by page (mixed into ``Provider``)
  callback_auth.py  HTTP Basic credentials on callbacks, and ``BasicAuthCallbackProvider``

Import from the package (``from messaging.providers.base import X``); the module layout is not an interface.
The cause constants are reached through the exported ``causes`` namespace (``causes.OPTED_OUT``), since
``UNKNOWN`` here is already the normalized status.
The facts about each provider that the adapters rely on are in docs/providers.md.
"""

from . import causes
from .callback_auth import BasicAuthCallbackProvider, check_basic_auth, url_for_console, url_with_basic_auth
from .causes import CAUSE_CHOICES, CAUSES, Cause, ErrorCode, cause_info
from .errors import (
    AmbiguousError,
    ConfigurationError,
    LookupInconclusiveError,
    PermanentError,
    ProviderError,
    SignatureError,
    TransientError,
)
from .http import http_session
from .media import MediaFile
from .normalized import (
    DELIVERED,
    FAILED,
    NORMALIZED_STATUSES,
    QUEUED,
    RECEIVED,
    SENDING,
    SENT,
    UNDELIVERED,
    UNKNOWN,
    CallbackRequest,
    HttpCall,
    OutboundMessage,
    SenderConfig,
    SendResult,
    StatusEvent,
)
from .outbound import OutboundRefusedError
from .parsing import (
    NO_ERROR_CODES,
    TOLL_FREE_PREFIXES,
    b64,
    callback_items,
    clean_error_code,
    constant_time_equal,
    first_of,
    form_pairs,
    hmac_sha256,
    in_window,
    lookup_event_id,
    numbered_values,
    our_message_id,
    parse_datetime_utc,
    parse_retry_after,
    sender_type,
    string_values,
    transient_for,
    url_without_query,
)
from .provider import Provider

__all__ = [
    "AmbiguousError",
    "BasicAuthCallbackProvider",
    "CAUSES",
    "CAUSE_CHOICES",
    "CallbackRequest",
    "Cause",
    "ConfigurationError",
    "DELIVERED",
    "ErrorCode",
    "FAILED",
    "HttpCall",
    "LookupInconclusiveError",
    "MediaFile",
    "NORMALIZED_STATUSES",
    "NO_ERROR_CODES",
    "OutboundMessage",
    "OutboundRefusedError",
    "PermanentError",
    "Provider",
    "ProviderError",
    "QUEUED",
    "RECEIVED",
    "SENDING",
    "SENT",
    "SendResult",
    "SenderConfig",
    "SignatureError",
    "StatusEvent",
    "TOLL_FREE_PREFIXES",
    "TransientError",
    "UNDELIVERED",
    "UNKNOWN",
    "b64",
    "callback_items",
    "cause_info",
    "causes",
    "check_basic_auth",
    "clean_error_code",
    "constant_time_equal",
    "first_of",
    "form_pairs",
    "hmac_sha256",
    "http_session",
    "in_window",
    "lookup_event_id",
    "numbered_values",
    "our_message_id",
    "parse_datetime_utc",
    "parse_retry_after",
    "sender_type",
    "string_values",
    "transient_for",
    "url_for_console",
    "url_with_basic_auth",
    "url_without_query",
]
