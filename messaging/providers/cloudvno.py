"""CloudVNO: REST send (`POST /v1/messages`), Twilio-like status callbacks, `X-CloudVNO-Signature`.

The facts relied on here, and what is assumed, are in docs/providers.md, CloudVNO. In short:

- Send: Bearer API key; JSON `from`, `to`, `body`, `media_url` (array), `status_callback`, and `validity_period`
  only when the sender's options set it. The answer carries `sid` and `status: queued`.
- Errors: `{"error": {"code", "message", "param", "doc_url"}}`; 429 bodies add `retry_after` seconds; every answer
  carries `X-RateLimit-Reset` (unix time). We classify on the `code`, not the HTTP status, because the
  documentation does not say which status goes with which code.
- Status callbacks (assumed, CloudVNO specifies none): parsed as Twilio's (form-encoded, `MessageSid`,
  `MessageStatus`, `ErrorCode`) with the other spellings listed there, JSON accepted too.
- Inbound messages (documented): form fields `MessageSid`, `From` (who wrote), `To` (our number), `Body`,
  `NumMedia` and `MediaUrl0`...; a callback carrying `Body` or `NumMedia` and no outbound status is one.
- Signature: hex HMAC-SHA256 keyed with the `webhook_secret` credential (the docs call the key `auth_token`) over
  the full callback URL followed directly (no `?`) by `urlencode(sorted(params))`. For a JSON body, where the
  documented scheme is undefined, we take URL + raw body as the signed string.
- Statuses: Twilio's list. `partially_delivered` is mapped to `undelivered` (final): a carrier told the provider
  that part of the message did not arrive, so the recipient did not get the message as sent; claiming `delivered`
  would overstate it, and `failed` is kept for messages that never reached a carrier. The raw value is kept.
- Status lookup: not documented, so ``supports_lookup`` is False and ``find`` is not possible: an ambiguous send
  is left for staff to decide.
- Opt-out: the REST error code `unsubscribed`.
- Credential check: `GET /v1/messages?limit=1` (a list exists, since a `messages:read` scope does; its path is
  assumed). A send-only key (403 `insufficient_permissions`) passes with a note.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from .base import (
    DELIVERED,
    FAILED,
    QUEUED,
    RECEIVED,
    SENDING,
    SENT,
    UNDELIVERED,
    CallbackRequest,
    HttpCall,
    OutboundMessage,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    SignatureError,
    StatusEvent,
    clean_error_code,
    constant_time_equal,
    first_of,
    hmac_sha256,
    numbered_values,
    parse_datetime_utc,
    parse_retry_after,
    transient_for,
)

SIGNATURE_HEADER = "X-CloudVNO-Signature"

# Error codes from the errors reference (docs/providers.md, CloudVNO: Errors), by what they mean for the message.
AUTH_CODES = {"unauthorized", "api_key_revoked", "insufficient_permissions"}
RECIPIENT_CODES = {"invalid_phone_number", "unsubscribed"}  # failover to another sender will not help
RATE_CODES = {"rate_limit_exceeded"}
# number_not_sms_capable is about the recipient when `param` is `to`, about our number when `from`.
CONTENT_OR_SENDER_CODES = {"message_too_long", "from_number_not_owned", "carrier_blocked", "number_not_sms_capable"}


def signed_string(url: str, params: list[tuple[str, str]] | dict) -> str:
    """What CloudVNO signs for a form-encoded callback: the URL, then the sorted, URL-encoded parameters
    appended with no `?` (the documented snippet's quirk)."""
    pairs = sorted(params.items()) if isinstance(params, dict) else sorted(params)
    return url + urlencode(pairs)


def signature(secret: str, text: str | bytes) -> str:
    return hmac_sha256(secret, text).hex()


class CloudvnoProvider(Provider):
    code = "cloudvno"
    name = "CloudVNO"
    default_base_url = "https://api.cloudvno.com"
    credential_keys = ("api_key", "webhook_secret")
    # Twilio's vocabulary, assumed (docs/providers.md, CloudVNO: Statuses). Expiry of `validity_period` is not
    # documented; `expired` is mapped as failed should it appear.
    status_map = {
        "accepted": QUEUED,
        "scheduled": QUEUED,
        "queued": QUEUED,
        "sending": SENDING,
        "sent": SENT,
        "delivered": DELIVERED,
        "read": DELIVERED,
        "undelivered": UNDELIVERED,
        "partially_delivered": UNDELIVERED,  # see the module docstring
        "failed": FAILED,
        "canceled": FAILED,
        "expired": FAILED,
        "receiving": RECEIVED,
        "received": RECEIVED,
    }
    # Body length, media count and size are not documented (only an error `message_too_long` exists).
    max_body_chars = None
    max_media = None
    max_media_bytes = None
    media_types = None  # "an image or other media": no list of types
    default_mps = 1.0  # long-code throughput, 1 msg/s per sender (rate-limits page)
    mps_by_sender_type = {"toll_free": 3.0, "short_code": 500.0}
    supports_lookup = False
    secret_headers = ("x-cloudvno-signature",)
    # A STOP to a CloudVNO number unsubscribes the pair at CloudVNO: later sends answer 422 `unsubscribed`
    # (docs/providers.md), so its keywords are CloudVNO's to answer.
    answers_keywords = True

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.credential('api_key')}", "Accept": "application/json"}

    # ---- send ----

    def build_send(self, message: OutboundMessage) -> HttpCall:
        payload: dict[str, Any] = {"from": self.sender.address, "to": message.to}
        if message.body:
            payload["body"] = message.body
        if message.media_urls:
            payload["media_url"] = list(message.media_urls)
        if message.status_callback_url:
            payload["status_callback"] = message.status_callback_url
        # Sent only when the sender sets it: left out, CloudVNO applies its documented default (14400 s),
        # and sending the default ourselves would pin it if CloudVNO ever changes it.
        validity = self.sender.options.get("validity_period")
        if validity not in (None, ""):
            payload["validity_period"] = int(validity)
        return HttpCall("POST", "/v1/messages", json=payload, headers=self._headers())

    def parse_send(self, message, status, data, headers) -> SendResult:
        sid = data.get("sid") if isinstance(data, dict) else None
        if not sid:
            raise PermanentError("CloudVNO accepted the request but returned no sid", http_status=status)
        raw_status = str(data.get("status") or "queued")
        return SendResult(provider_message_id=str(sid), status=self.map_status(raw_status, default=QUEUED), raw=data)

    def error_for(self, status: int, data: Any, headers: dict) -> ProviderError:
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "")
        text = str(error.get("message") or "") or self.error_text(data)
        if code and error.get("param"):
            text = f"{text} (param {error['param']})"
        rate_limited = status == 429 or code in RATE_CODES
        transient = transient_for(status, text, headers, code=code, rate_limited=rate_limited,
                                  retry_after=self._retry_after(data, headers) if rate_limited else None)
        if transient is not None:
            return transient
        recipient = code in RECIPIENT_CODES or (code == "number_not_sms_capable" and error.get("param") == "to")
        return PermanentError(text, http_status=status, code=code, recipient_side=recipient)

    @staticmethod
    def _retry_after(data: Any, headers: dict) -> float | None:
        """The 429 body's `retry_after` (documented), else a Retry-After header, else X-RateLimit-Reset."""
        hint = None
        if isinstance(data, dict):
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            hint = parse_retry_after(first_of(data, "retry_after", default=None) or error.get("retry_after"))
        if hint is None:
            hint = parse_retry_after(headers.get("retry-after"))
        if hint is None and headers.get("x-ratelimit-reset"):
            try:
                hint = max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
            except ValueError:
                hint = None
        return hint

    def build_check(self) -> HttpCall:
        return HttpCall("GET", "/v1/messages", params={"limit": 1}, headers=self._headers())

    def check_credentials(self) -> str:
        status, data, headers = self.request(self.build_check())
        if status == 403 and isinstance(data, dict) and (data.get("error") or {}).get("code") == "insufficient_permissions":
            # A send-only key is a valid set-up: sending needs messages:write, reading needs messages:read.
            return f"{self.name} accepted the API key, but it lacks the messages:read scope (sending only needs messages:write)."
        self._raise_for(status, data, headers)
        return f"{self.name} accepted the credentials (HTTP {status})."

    # ---- callbacks ----

    def verify_callback(self, request: CallbackRequest) -> None:
        secret = self.credential("webhook_secret")
        given = request.header(SIGNATURE_HEADER).strip().lower()
        if not given:
            raise SignatureError(f"{SIGNATURE_HEADER} is missing")
        if request.json is not None:
            text: str | bytes = request.url.encode() + request.body
        else:
            text = signed_string(request.url, request.form)
        if not constant_time_equal(signature(secret, text), given):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match")

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        params = request.params()
        if not isinstance(params, dict):
            return []
        sid = str(first_of(params, "MessageSid", "SmsSid", "sid"))
        if not sid:
            return []
        raw_status = str(first_of(params, "MessageStatus", "SmsStatus", "status"))
        body = str(first_of(params, "Body", "body"))
        # An inbound message (documented: MessageSid, From, To, Body, NumMedia) has a body and no outbound
        # status; a status callback that merely says "received" is stored as such, not taken as a message.
        carries_message = any(name in params for name in ("Body", "body", "NumMedia"))
        inbound = carries_message and raw_status.lower() in ("", "received", "receiving")
        code = clean_error_code(first_of(params, "ErrorCode", "error_code", default=None))
        message = str(first_of(params, "ErrorMessage", "error_message")) if code else ""
        # A reply: who wrote it and to which of our numbers, as CloudVNO gives them.
        recipient = str(first_of(params, "From", "from")) if inbound else str(first_of(params, "To", "to"))
        return [
            StatusEvent(
                provider_message_id=sid,
                status=RECEIVED if inbound else self.map_status(raw_status),
                raw_status=raw_status or ("received" if inbound else ""),
                # Twilio-like callbacks carry no event time; JSON ones may carry the message's dates.
                occurred_at=parse_datetime_utc(first_of(params, "date_updated", "DateUpdated", "date_sent")),
                error_code=code,
                error_message=message,
                recipient=recipient,
                direction="inbound" if inbound else "outbound",
                body=body if inbound else "",
                raw=dict(params),
                media_urls=numbered_values(params, "MediaUrl") if inbound else (),
                to_address=str(first_of(params, "To", "to")) if inbound else "",
            )
        ]
