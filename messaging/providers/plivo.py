"""Plivo: REST API v1 (Message resource), status callbacks, signatures V2 / Ma-V2 / V3.

See ../shared/providers/plivo.txt and CONTRACTS.md §2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .base import (
    DELIVERED,
    FAILED,
    QUEUED,
    RECEIVED,
    SENT,
    UNDELIVERED,
    CallbackRequest,
    HttpCall,
    OutboundMessage,
    PermanentError,
    Provider,
    SendResult,
    SignatureError,
    StatusEvent,
    b64,
    clean_error_code,
    constant_time_equal,
    first_of,
    hmac_sha256,
    lookup_event_id,
    parse_datetime_utc,
    sender_type,
    transient_for,
    url_without_query,
)

# Callback error codes that are the recipient's fault (failover to another sender will not help).
RECIPIENT_ERROR_CODES = {"50", "70", "200", "60"}


def _digits(number: str) -> str:
    """Plivo strips everything but A-Z a-z 0-9 from numbers; send them that way."""
    return "".join(ch for ch in number if ch.isalnum())


def _sorted_pairs(params: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(key, value) for key in sorted(params) for value in sorted(params[key])]


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def signature_v3_string(method: str, url: str, body_params: list[tuple[str, str]], nonce: str) -> str:
    """The string Plivo signs for X-Plivo-Signature-V3 (CONTRACTS.md §2, V3 exact algorithm)."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = _multi(parse_qsl(parts.query, keep_blank_values=True))
    if method.upper() == "GET":
        merged = {k: list(v) for k, v in query.items()}
        for key, value in body_params:
            merged.setdefault(key, []).append(value)
        signed = base
        if merged:
            signed += "?" + "&".join(f"{k}={v}" for k, v in _sorted_pairs(merged))
    else:
        signed = base
        if query:
            signed += "?" + "&".join(f"{k}={v}" for k, v in _sorted_pairs(query))
        if body_params:
            signed += "." if query else "?"
            signed += "".join(f"{k}{v}" for k, v in _sorted_pairs(_multi(body_params)))
    return f"{signed}.{nonce}"


class PlivoProvider(Provider):
    code = "plivo"
    name = "Plivo"
    default_base_url = "https://api.plivo.com"
    credential_keys = ("auth_id", "auth_token")
    status_map = {
        "queued": QUEUED,
        "sent": SENT,
        "delivered": DELIVERED,
        "read": DELIVERED,
        "undelivered": UNDELIVERED,
        "failed": FAILED,
        "rejected": FAILED,
        "received": RECEIVED,
    }
    # GSM-7 text: 1600 characters; any UCS-2 character: 737 (plivo.txt, `text`).
    max_body_chars = 1600
    max_body_chars_ucs2 = 737
    max_media = 10
    max_media_bytes = 5 * 1024 * 1024
    default_mps = 5.0  # default account SMS MPS (CONTRACTS.md §2 rate limits)
    # US long code unregistered 1 msg/s, verified toll-free 25 msg/s, short code 100+ msg/s (CONTRACTS.md §2).
    mps_by_sender_type = {"toll_free": 25.0, "short_code": 100.0}

    @classmethod
    def default_mps_for(cls, address: str) -> float:
        if sender_type(address) == "long_code" and address.startswith("+1"):
            return 1.0
        return super().default_mps_for(address)
    supports_lookup = True
    secret_headers = ("x-plivo-signature-v2", "x-plivo-signature-ma-v2", "x-plivo-signature-v3")

    def _account_path(self) -> str:
        return f"/v1/Account/{self.credential('auth_id')}"

    def _auth(self) -> tuple[str, str]:
        return (self.credential("auth_id"), self.credential("auth_token"))

    def check_limits(self, body: str, media_urls) -> list[str]:
        problems = super().check_limits(body, media_urls)
        if not _is_gsm7(body) and len(body) > self.max_body_chars_ucs2:
            problems.append(
                f"Plivo accepts at most {self.max_body_chars_ucs2} characters when the text has characters "
                f"outside GSM-7 (emoji, accents); this message has {len(body)}."
            )
        return problems

    # ---- send ----

    def build_send(self, message: OutboundMessage) -> HttpCall:
        payload: dict[str, Any] = {"dst": _digits(message.to), "text": message.body}
        powerpack = self.sender.options.get("powerpack_uuid")
        if powerpack:
            payload["powerpack_uuid"] = powerpack
        else:
            payload["src"] = _digits(self.sender.address) if self.sender.address.startswith("+") else self.sender.address
        if message.media_urls:
            payload["type"] = "mms"
            payload["media_urls"] = list(message.media_urls)
        else:
            payload["type"] = "sms"
        if message.status_callback_url:
            payload["url"] = message.status_callback_url
            payload["method"] = "POST"
        return HttpCall("POST", f"{self._account_path()}/Message/", json=payload, auth=self._auth())

    def parse_send(self, message, status, data, headers) -> SendResult:
        uuids = data.get("message_uuid") if isinstance(data, dict) else None
        if not uuids:
            raise PermanentError("Plivo accepted the request but returned no message_uuid", http_status=status)
        return SendResult(provider_message_id=str(uuids[0]), status=QUEUED, raw=data)

    def error_for(self, status, data, headers):
        text = self.error_text(data)
        transient = transient_for(status, text, headers)
        if transient is not None:
            return transient
        recipient = status == 400 and any(w in text.lower() for w in ("dst", "destination"))
        return PermanentError(text, http_status=status, recipient_side=recipient)

    # ---- lookup and reconciliation ----

    def build_lookup(self, provider_message_id: str) -> HttpCall:
        return HttpCall("GET", f"{self._account_path()}/Message/{provider_message_id}/", auth=self._auth())

    def parse_lookup(self, data) -> StatusEvent | None:
        if not isinstance(data, dict) or not data.get("message_uuid"):
            return None
        raw_status = str(data.get("message_state", ""))
        code = clean_error_code(data.get("error_code"))
        return StatusEvent(
            provider_message_id=str(data["message_uuid"]),
            status=self.map_status(raw_status),
            raw_status=raw_status,
            occurred_at=parse_datetime_utc(first_of(data, "message_updated_time", "message_sent_time", "message_time")),
            error_code=code,
            error_message=str(data.get("error_message") or "") if code else "",
            event_id=lookup_event_id(data["message_uuid"], raw_status),
            recipient="+" + _digits(str(data.get("to_number", ""))) if data.get("to_number") else "",
            raw=data,
        )

    def build_find(self, message: OutboundMessage, since: datetime) -> HttpCall:
        params = {
            "message_direction": "outbound",
            "message_time__gte": since.strftime("%Y-%m-%d %H:%M:%S"),
            "limit": 20,
            "offset": 0,
        }
        return HttpCall("GET", f"{self._account_path()}/Message/", params=params, auth=self._auth())

    def parse_find(self, message: OutboundMessage, data) -> StatusEvent | None:
        objects = data.get("objects", []) if isinstance(data, dict) else []
        wanted = _digits(message.to)
        for item in objects:
            if _digits(str(item.get("to_number", ""))) == wanted:
                return self.parse_lookup(item)
        return None

    def find(self, message: OutboundMessage, since: datetime) -> StatusEvent | None:
        """Page through the outbound list since ``since`` for a message to this recipient."""
        return self.find_in_pages(message, since, pages=50, page_params=lambda page: {"offset": page * 20},
                                  more=lambda data: isinstance(data, dict) and bool(data.get("meta", {}).get("next")))

    def build_check(self) -> HttpCall:
        return HttpCall("GET", f"{self._account_path()}/", auth=self._auth())

    # ---- callbacks ----

    def verify_callback(self, request: CallbackRequest) -> None:
        token = self.credential("auth_token")
        v3 = request.header("X-Plivo-Signature-V3")
        if v3:
            nonce = request.header("X-Plivo-Signature-V3-Nonce")
            expected = b64(hmac_sha256(token, signature_v3_string(request.method, request.url, request.form, nonce)))
            if any(constant_time_equal(expected, candidate.strip()) for candidate in v3.split(",")):
                return
            raise SignatureError("X-Plivo-Signature-V3 does not match")
        nonce = request.header("X-Plivo-Signature-V2-Nonce")
        v2 = request.header("X-Plivo-Signature-V2")
        ma_v2 = request.header("X-Plivo-Signature-Ma-V2")
        if not nonce or not (v2 or ma_v2):
            raise SignatureError("Plivo signature headers are missing")
        expected = b64(hmac_sha256(token, url_without_query(request.url) + nonce))
        if constant_time_equal(expected, v2) or constant_time_equal(expected, ma_v2):
            return
        raise SignatureError("X-Plivo-Signature-V2 does not match")

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        params = request.params()
        uuid = str(first_of(params, "MessageUUID", "message_uuid"))
        if not uuid:
            return []
        raw_status = str(first_of(params, "Status", "status"))
        inbound = not raw_status and bool(first_of(params, "Text", "Body"))
        code = clean_error_code(params.get("ErrorCode"))
        try:
            sequence = int(params["Sequence"]) if params.get("Sequence") not in (None, "") else None
        except (TypeError, ValueError):
            sequence = None
        occurred = parse_datetime_utc(
            first_of(params, "DeliveryReportTime", "SentTime", "QueuedTime", "MessageTime")
        )
        return [
            StatusEvent(
                provider_message_id=uuid,
                status=RECEIVED if inbound else self.map_status(raw_status),
                raw_status=raw_status or ("received" if inbound else ""),
                occurred_at=occurred,
                error_code=code,
                error_message=ERROR_TEXT.get(code, "") if code else "",
                sequence=sequence,
                recipient=("+" + _digits(str(params.get("To", "")))) if params.get("To") else "",
                direction="inbound" if inbound else "outbound",
                body=str(first_of(params, "Text", "Body")) if inbound else "",
                raw=dict(params),
            )
        ]


def _is_gsm7(text: str) -> bool:
    return all(ch in GSM7_CHARS for ch in text)


GSM7_CHARS = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)

# Plivo message error codes (CONTRACTS.md §2, "Message error codes").
ERROR_TEXT = {
    "10": "Invalid message",
    "20": "Network error",
    "30": "Spam detected",
    "40": "Invalid source number",
    "50": "Invalid destination number",
    "60": "Loop detected",
    "70": "Destination permanently unavailable",
    "80": "Destination temporarily unavailable",
    "90": "No route available",
    "100": "Prohibited by carrier",
    "110": "Message too long",
    "120": "MMS too large",
    "200": "Source number blocked by STOP from destination",
    "201": "US toll-free to Canadian destination blocked",
    "420": "Message expired in queue",
    "1000": "Unknown error",
}
