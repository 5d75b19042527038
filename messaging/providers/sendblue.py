"""Sendblue: iMessage (with SMS/RCS fallback) through `POST /api/send-message`, JSON status callbacks,
`sb-signing-secret` shared secret.

The facts relied on here, and what is assumed, are in docs/providers.md, Sendblue. In short:

- Send: headers `sb-api-key-id` / `sb-api-secret-key`; JSON `number`, `from_number` (one of our lines: the
  sender's address), `content` (< 18,996 characters), `media_url` (one URL), `send_style`, `status_callback`. The
  answer is a message: `message_handle` is the provider id.
- Errors: "any code besides 0 or null is a failure": 4000 validation, 4001 rate limit, 4002 blacklisted number,
  5000 internal, 5003 server rate exceeded, 10001 failed to send, 10002 failed to resolve status. The error body's
  schema is not documented (assumed): we read `error_code` and `error_message`, and also `message`/`error`, and
  treat a 2xx answer whose `status` is `ERROR` (or which carries an error code) as the error it names.
- Status lookup: `GET /api/status?handle=`; reconciliation of an ambiguous send: `GET /api/v2/messages` filtered
  by `to_number`, `sendblue_number`, `is_outbound`, `created_at_gte` / `created_at_lte`, read with `limit` /
  `offset` until a short page. The list does not echo any id of ours, so a message is matched on recipient, line,
  content and creation time within the window; two candidates, an unreadable answer or more pages than the cap
  are inconclusive, never "not sent".
- Inbound messages (the `receive` webhook): the same JSON with `is_outbound: false`, `status: RECEIVED`; who wrote is
  `number` (also `from_number`), our line `to_number` (also `sendblue_number`), the text `content`, the media one
  `media_url`.
- Callbacks: JSON with `message_handle`, `status`, `error_code`, `error_message`, `was_downgraded`, `opted_out`...
  Statuses REGISTERED, PENDING, DECLINED, ACCEPTED, SUCCESS are listed but not explained (their mapping is
  assumed). SMS downgrades (`was_downgraded: true`) may never get past SENT: that is kept in the raw payload, not
  taken as a failure. `opted_out: true` is reported as the error code `opted_out`, whatever code came with it.
- Signature: not an HMAC; Sendblue sends the secret we configured verbatim in `sb-signing-secret`, compared in
  constant time with the `signing_secret` credential. Whether per-message `status_callback` requests carry the
  header is not documented. Our choice: when the header is present it must match (constant time), whatever the
  sender's options; when it is absent the callback is refused, unless the sender's options say
  ``"callback_verification": "url_token"``: the `status_callback` URL then carries HTTP Basic credentials (the
  sender's ``callback_username`` option and its encrypted callback password), required back on every callback
  without the header. Staff choose that only once they have seen Sendblue post status callbacks without the
  header. The sender uuid in the URL alone is never enough.
- Opt-out: no error code of Sendblue's means "opted out" (4002 is a blacklisted number such as 911); the signal
  is the `opted_out: true` field, reported as the error code `opted_out`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .base import (
    DELIVERED,
    FAILED,
    QUEUED,
    RECEIVED,
    SENDING,
    SENT,
    AmbiguousError,
    CallbackRequest,
    HttpCall,
    OutboundMessage,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    SignatureError,
    StatusEvent,
    check_basic_auth,
    clean_error_code,
    constant_time_equal,
    first_of,
    in_window,
    lookup_event_id,
    parse_datetime_utc,
    string_values,
    transient_for,
    url_with_basic_auth,
)
from .codes import error_meaning

SIGNATURE_HEADER = "sb-signing-secret"
# The sender option value that puts Basic credentials in status-callback URLs (its historical name).
URL_CREDENTIALS = "url_token"
FIND_PAGE = 100
FIND_MAX_PAGES = 20

OPTED_OUT_CODE = "opted_out"  # our code for an answer or callback with `opted_out: true` (codes.sendblue)
TRANSIENT_CODES = {"4001", "5000", "5003"}
RATE_CODES = {"4001", "5003"}
RECIPIENT_CODES = {"4002", OPTED_OUT_CODE}
SEND_STYLES = {"celebration", "shooting_star", "fireworks", "lasers", "love", "confetti", "balloons", "spotlight",
               "echo", "invisible", "gentle", "loud", "slam"}


def _is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


class SendblueProvider(Provider):
    code = "sendblue"
    name = "Sendblue"
    default_base_url = "https://api.sendblue.co"
    credential_keys = ("api_key_id", "api_secret_key", "signing_secret")
    status_map = {
        "REGISTERED": QUEUED,
        "PENDING": QUEUED,
        "QUEUED": QUEUED,
        "ACCEPTED": SENDING,
        "SENT": SENT,
        "SUCCESS": SENT,
        "DELIVERED": DELIVERED,
        "READ": DELIVERED,
        "ERROR": FAILED,
        "DECLINED": FAILED,
        "RECEIVED": RECEIVED,
    }
    max_body_chars = 18_995  # `content` must be < 18,996 characters
    max_media = 1  # `media_url` is a single URL
    # iMessage takes up to 100 MB, but a message downgraded to SMS takes 5 MB (older docs: 5 MB for all):
    # 5 MB is the size that is safe whatever service the recipient ends up on.
    max_media_bytes = 5 * 1024 * 1024
    media_types = None  # no list of types is documented (only a URL "ending in a proper file extension")
    # Per line: burst 10 msg/s on current plans, 1 msg/s on an older page, and the daily/hourly new-contact
    # caps (50/day, 15/hour) bind long before either. 1 msg/s is the rate every documented plan allows.
    default_mps = 1.0
    supports_lookup = True
    secret_headers = (SIGNATURE_HEADER, "sb-api-secret-key")

    def _headers(self) -> dict:
        return {
            "sb-api-key-id": self.credential("api_key_id"),
            "sb-api-secret-key": self.credential("api_secret_key"),
            "Accept": "application/json",
        }

    # ---- send ----

    def build_send(self, message: OutboundMessage) -> HttpCall:
        payload: dict[str, Any] = {"number": message.to, "from_number": self.sender.address}
        if message.body:
            payload["content"] = message.body
        if message.media_urls:
            payload["media_url"] = message.media_urls[0]
        style = self.sender.options.get("send_style")
        if style:
            payload["send_style"] = style
        if message.status_callback_url:
            payload["status_callback"] = self.callback_url(message.status_callback_url)
        return HttpCall("POST", "/api/send-message", json=payload, headers=self._headers())

    def check_limits(self, body: str, media_urls) -> list[str]:
        problems = super().check_limits(body, media_urls)
        style = self.sender.options.get("send_style") if getattr(self, "sender", None) else None
        if style and style not in SEND_STYLES:
            problems.append(f"Sendblue does not know the send_style {style!r}.")
        return problems

    def parse_send(self, message, status, data, headers) -> SendResult:
        if not isinstance(data, dict):
            raise PermanentError("Sendblue answered without a message", http_status=status, provider=self.code)
        code = clean_error_code(data.get("error_code"))
        if code or str(data.get("status", "")).upper() == "ERROR":
            raise self.with_context(self.error_for(status, data, headers), data, status)
        handle = data.get("message_handle")
        if not handle:
            raise PermanentError("Sendblue accepted the request but returned no message_handle",
                                 http_status=status, provider=self.code)
        return SendResult(provider_message_id=str(handle), status=self.map_status(data.get("status"), default=QUEUED),
                          raw=data)

    def error_for(self, status: int, data: Any, headers: dict) -> ProviderError:
        body = data if isinstance(data, dict) else {}
        code = clean_error_code(body.get("error_code"))
        text = str(first_of(body, "error_message", "message", "error_reason", "error", default="")) or (
            error_meaning(self.code, code) or self.error_text(data)
        )
        transient = transient_for(status, text, headers, code=code, rate_limited=code in RATE_CODES,
                                  transient=code in TRANSIENT_CODES)
        if transient is not None:
            return transient
        if code == "10002":
            # "Failed to resolve message status": Sendblue may have the message; reconcile, don't resend.
            return AmbiguousError(text, http_status=status, code=code)
        if _is_true(body.get("opted_out")):  # whatever its code says (docs/providers.md, Sendblue: Errors)
            return PermanentError(text, http_status=status, code=OPTED_OUT_CODE, recipient_side=True)
        lowered = text.lower()
        invalid_number = code == "4000" and "number" in lowered and "from_number" not in lowered
        return PermanentError(text, http_status=status, code=code,
                              recipient_side=code in RECIPIENT_CODES or invalid_number)

    # ---- lookup and reconciliation ----

    def build_lookup(self, provider_message_id: str) -> HttpCall:
        return HttpCall("GET", "/api/status", params={"handle": provider_message_id}, headers=self._headers())

    def parse_lookup(self, data: Any) -> StatusEvent | None:
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]  # GET /api/v2/messages/{id} wraps the message in `data`
        if not isinstance(data, dict) or not data.get("message_handle"):
            return None
        event = self._event(data)
        return replace(event, event_id=lookup_event_id(event.provider_message_id, event.raw_status))

    def find(self, message: OutboundMessage, since: datetime, until: datetime | None = None) -> StatusEvent | None:
        """Page through this line's outbound messages to this recipient created in the window."""
        params: dict[str, Any] = {
            "is_outbound": "true",
            "to_number": message.to,
            "sendblue_number": self.sender.address,
            "created_at_gte": since.isoformat(),
            "order_by": "createdAt",
            "order_direction": "desc",
            "limit": FIND_PAGE,
            "offset": 0,
        }
        if until is not None:
            params["created_at_lte"] = until.isoformat()

        def matches(item: dict) -> bool:
            if not item.get("message_handle") or first_of(item, "to_number", "number") != message.to:
                return False
            ours = first_of(item, "sendblue_number", "from_number")
            if ours and ours != self.sender.address:
                return False
            if item.get("content") not in (None, "") and message.body and item["content"] != message.body:
                return False
            created = first_of(item, "date_created", "date_sent", default=None)
            return created is None or in_window(parse_datetime_utc(created), since, until)

        def items(data: Any) -> list | None:
            rows = data.get("data") if isinstance(data, dict) else None
            return rows if isinstance(rows, list) else None

        def next_call(call: HttpCall, data: Any, headers: dict, rows: list) -> HttpCall | None:
            if len(rows) < FIND_PAGE:
                return None  # a short page: the window is exhausted
            offset = int((call.params or {}).get("offset", 0)) + FIND_PAGE
            return replace(call, params={**(call.params or {}), "offset": offset})

        first = HttpCall("GET", "/api/v2/messages", params=params, headers=self._headers())
        return self.find_in_pages(first, items=items, matches=matches, next_call=next_call,
                                  max_pages=FIND_MAX_PAGES, unique=True)

    def build_check(self) -> HttpCall:
        return HttpCall("GET", "/api/v2/messages", params={"limit": 1}, headers=self._headers())

    # ---- callbacks ----

    @classmethod
    def callback_password_needed(cls, options: dict) -> bool:
        return (options or {}).get("callback_verification") == URL_CREDENTIALS

    @classmethod
    def credentials_optional(cls, options: dict) -> frozenset[str]:
        # With url_token verification, a callback without sb-signing-secret is proven by the callback password.
        return frozenset({"signing_secret"}) if cls.callback_password_needed(options) else frozenset()

    def _url_credentials(self) -> tuple[str, str] | None:
        """The Basic credentials status callbacks carry in their URL, for a sender that asked for them."""
        if not self.callback_password_needed(self.sender.options):
            return None
        return str(self.sender.options.get("callback_username") or ""), str(self.sender.callback_password or "")

    def callback_url(self, url: str) -> str:
        credentials = self._url_credentials()
        return url_with_basic_auth(url, *credentials) if credentials else url

    def secrets(self) -> list[str]:
        out = super().secrets()
        credentials = self._url_credentials()
        if credentials and len(credentials[1]) >= 4:
            out += [credentials[1], quote(credentials[1], safe="")]
        return out

    def _scrub(self, data: dict) -> dict:
        """A payload that echoes our callback URL would carry the callback password: never store it."""
        credentials = self._url_credentials()
        if not (credentials and credentials[1]):
            return data
        return json.loads(self.redact(json.dumps(data, default=str)))

    def verify_callback(self, request: CallbackRequest) -> None:
        """Header present: it must equal the signing secret. Header absent: refused, unless the sender asked for
        Basic credentials in its callback URLs, which must then be there (see the module docstring)."""
        given = request.header(SIGNATURE_HEADER)
        if not given:
            credentials = self._url_credentials()
            if credentials is None:
                raise SignatureError(f"{SIGNATURE_HEADER} is missing")
            check_basic_auth(request, *credentials)
            return None
        if not constant_time_equal(self.credential("signing_secret"), given):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match")
        return None

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        params = request.params()
        if not isinstance(params, dict) or not params.get("message_handle"):
            return []
        return [self._event(params)]

    def _event(self, params: dict) -> StatusEvent:
        raw_status = str(params.get("status") or "")
        inbound = "is_outbound" in params and not _is_true(params.get("is_outbound"))
        code = clean_error_code(params.get("error_code"))
        if _is_true(params.get("opted_out")) and not inbound:
            code = OPTED_OUT_CODE  # the recipient opted out, whatever the code says: acted on as such
        message = ""
        if code:
            message = str(first_of(params, "error_message", "error_reason", "error_detail", default="")) or (
                error_meaning(self.code, code)
            )
        return StatusEvent(
            provider_message_id=str(params["message_handle"]),
            status=RECEIVED if inbound else self.map_status(raw_status.upper()),
            raw_status=raw_status or ("RECEIVED" if inbound else ""),
            occurred_at=parse_datetime_utc(first_of(params, "date_updated", "date_sent", "date_created")),
            error_code=code,
            error_message=message,
            # `number` is the other party: the recipient of ours, or who wrote a reply (also its `from_number`).
            recipient=str(first_of(params, "number", "from_number" if inbound else "to_number")),
            direction="inbound" if inbound else "outbound",
            body=str(params.get("content") or "") if inbound else "",
            raw=self._scrub(dict(params)),
            media_urls=string_values(params.get("media_url")) if inbound else (),
            to_address=str(first_of(params, "to_number", "sendblue_number")) if inbound else "",
        )
