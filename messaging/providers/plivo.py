"""Plivo: REST API v1 (Message resource), status callbacks, signatures V2 / Ma-V2 / V3.

The facts relied on here are in docs/providers.md, Plivo.

Signatures, computed with the sender's ``auth_token``: when the request carries ``X-Plivo-Signature-V3`` (with
``-V3-Nonce``), one of its comma-separated values must match, and nothing else counts: V3 covers the URL with its
query and every field. Without V3, ``X-Plivo-Signature-V2`` (with ``-V2-Nonce``) is accepted, but it covers only
the URL without its query and the nonce (not the fields, not our ``m``): ``verify_callback`` returns the nonce and
the webhook accepts each nonce once within the replay window. ``X-Plivo-Signature-Ma-V2`` is keyed with the *main
account's* token, which we do not hold for a sub-account (the credentials are auth_id and auth_token only): it is
accepted, like V2, when it matches our token (the sender *is* the main account), and is otherwise no signature.
A body that is not form fields is covered by no signature and is refused.

Replies (the application's ``message_url``): form fields without ``Status``: ``From`` wrote it to ``To`` (our
number), both as Plivo gives them (digits without "+"); its text is ``Text`` (SMS) or ``Body`` (MMS), possibly
empty; its media ``Media1``... (``MediaCount`` of them); ``MessageIntent`` names a standard keyword.

Split messages: each part is reported on its own; its event is keyed on ``ParentMessageUUID`` (the uuid the send
returned) and says which part it reports (``part``, ``parts`` from ``PartInfo``); the services combine the parts
into the whole message's status (``messaging.services.parts``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..encoding import UCS2, segment_info
from .base import (
    DELIVERED,
    FAILED,
    QUEUED,
    RECEIVED,
    SENT,
    UNDELIVERED,
    CallbackRequest,
    HttpCall,
    LookupInconclusiveError,
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
    in_window,
    lookup_event_id,
    numbered_values,
    parse_datetime_utc,
    sender_type,
    transient_for,
    url_without_query,
)
from .codes import error_meaning

# Fields only a reply carries (docs/providers.md, Plivo: Callbacks): its text (`Text` for SMS, `Body` for MMS),
# its media, and the intent of a standard keyword.
INBOUND_FIELDS = ("Text", "Body", "MediaCount", "MessageIntent")
# Callback error codes that are the recipient's fault (failover to another sender will not help).
RECIPIENT_ERROR_CODES = {"50", "70", "200", "60"}
FIND_PAGE = 20  # the list endpoint's documented maximum `limit`
FIND_MAX_PAGES = 50


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
    """The string Plivo signs for X-Plivo-Signature-V3 (docs/providers.md, Plivo: Callbacks)."""
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
    # GSM-7 text: 1600 characters; any UCS-2 character: 737 (docs/providers.md, Plivo: Limits and pace).
    max_body_chars = 1600
    max_body_chars_ucs2 = 737
    max_media = 10
    max_media_bytes = 5 * 1024 * 1024
    # gif, png and jpeg are converted for devices; "other media types (audio, video, vcards)" pass as they are
    # (docs/providers.md, Plivo: Limits and pace; the spelling of the vCard types is ours).
    media_types = frozenset({"image/jpeg", "image/png", "image/gif", "audio/*", "video/*", "text/vcard",
                             "text/x-vcard"})
    default_mps = 5.0  # the account's default SMS pace
    # US long code unregistered 1 msg/s, verified toll-free 25 msg/s, short code 100+ msg/s (docs/providers.md,
    # Plivo: Limits and pace).
    mps_by_sender_type = {"toll_free": 25.0, "short_code": 100.0}

    @classmethod
    def default_mps_for(cls, address: str) -> float:
        if sender_type(address) == "long_code" and address.startswith("+1"):
            return 1.0
        return super().default_mps_for(address)
    supports_lookup = True
    secret_headers = ("x-plivo-signature-v2", "x-plivo-signature-ma-v2", "x-plivo-signature-v3")
    media_limit_is_total = True  # at most 5 MB for the whole MMS
    # 200: "Source number blocked by STOP from destination" (docs/providers.md, Plivo: Errors).

    def _account_path(self) -> str:
        return f"/v1/Account/{self.credential('auth_id')}"

    def _auth(self) -> tuple[str, str]:
        return (self.credential("auth_id"), self.credential("auth_token"))

    def check_limits(self, body: str, media_urls) -> list[str]:
        problems = super().check_limits(body, media_urls)
        if segment_info(body).encoding == UCS2 and len(body) > self.max_body_chars_ucs2:
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

    def find(self, message: OutboundMessage, since: datetime, until: datetime | None = None) -> StatusEvent | None:
        """Page through the outbound MDRs of the window (newest first, 20 a page, at most 50 pages) for the one
        message to this recipient from this sender, of this type, in the window: nothing of ours is echoed, so
        two candidates are inconclusive (docs/providers.md, Plivo: Lookup and reconciliation)."""
        params: dict[str, Any] = {
            "message_direction": "outbound",
            "message_time__gte": since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "limit": FIND_PAGE,
            "offset": 0,
        }
        if until is not None:
            params["message_time__lte"] = until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        powerpack = self.sender.options.get("powerpack_uuid")
        if powerpack:
            params["powerpack_id"] = powerpack
        wanted_to = _digits(message.to)
        wanted_from = "" if powerpack else _digits(self.sender.address)
        wanted_type = "mms" if message.media_urls else "sms"

        def matches(item: dict) -> bool:
            if _digits(str(item.get("to_number", ""))) != wanted_to:
                return False
            if wanted_from and _digits(str(item.get("from_number", ""))) != wanted_from:
                return False
            if item.get("message_type") and str(item["message_type"]) != wanted_type:
                return False
            when = item.get("message_time")
            if not when:
                raise LookupInconclusiveError("Plivo listed a message without message_time", provider=self.code)
            return in_window(parse_datetime_utc(when), since, until)

        def items(data: Any) -> list | None:
            objects = data.get("objects") if isinstance(data, dict) else None
            return objects if isinstance(objects, list) else None

        def next_call(call: HttpCall, data: Any, headers: dict, rows: list) -> HttpCall | None:
            meta = data.get("meta") if isinstance(data, dict) else None
            if not isinstance(meta, dict) or "next" not in meta:
                # No paging information: only a short page proves there is nothing more.
                if len(rows) < FIND_PAGE:
                    return None
                raise LookupInconclusiveError("Plivo's list answer has no paging information", provider=self.code)
            if not meta.get("next"):
                return None
            offset = int((call.params or {}).get("offset", 0)) + FIND_PAGE
            return replace(call, params={**(call.params or {}), "offset": offset})

        first = HttpCall("GET", f"{self._account_path()}/Message/", params=params, auth=self._auth())
        return self.find_in_pages(first, items=items, matches=matches, next_call=next_call,
                                  max_pages=FIND_MAX_PAGES, unique=True)

    def build_check(self) -> HttpCall:
        return HttpCall("GET", f"{self._account_path()}/", auth=self._auth())

    # ---- callbacks ----

    def verify_callback(self, request: CallbackRequest) -> str | None:
        """V3 when a V3 header was sent (it covers the URL and the fields): it must match, and nothing else is
        looked at. Otherwise V2 (or Ma-V2 keyed with our token), which covers only the URL without its query
        and a nonce: accepted with that nonce returned, for the caller to accept once."""
        token = self.credential("auth_token")
        if request.body and not request.form:
            # Plivo posts form fields (or puts them in the query); a body of another kind is covered by no
            # signature of Plivo's, and would be read instead of the signed fields.
            raise SignatureError("Plivo signs form fields; this body is not a form")
        v3 = request.header("X-Plivo-Signature-V3")
        v3_nonce = request.header("X-Plivo-Signature-V3-Nonce")
        if v3 or v3_nonce:
            if not (v3 and v3_nonce):
                raise SignatureError("Plivo V3 signature without its nonce (or nonce without signature)")
            expected = b64(hmac_sha256(token, signature_v3_string(request.method, request.url, request.form, v3_nonce)))
            if any(constant_time_equal(expected, candidate.strip()) for candidate in v3.split(",")):
                return None
            raise SignatureError("X-Plivo-Signature-V3 does not match")
        v2_nonce = request.header("X-Plivo-Signature-V2-Nonce")
        v2 = request.header("X-Plivo-Signature-V2")
        ma_v2 = request.header("X-Plivo-Signature-Ma-V2")
        if not (v2_nonce and (v2 or ma_v2)):
            raise SignatureError("Plivo signature headers are missing")
        expected = b64(hmac_sha256(token, url_without_query(request.url) + v2_nonce))
        # Ma-V2 is keyed with the main account's token: it can only match here when our token is that one.
        if constant_time_equal(expected, v2) or constant_time_equal(expected, ma_v2):
            return f"plivo-v2:{v2_nonce}"
        raise SignatureError("no Plivo signature matches")

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        params = request.params()
        part_uuid = str(first_of(params, "MessageUUID", "message_uuid"))
        if not part_uuid:
            return []
        # Every part of a split message reports under its parent's uuid, the one the send returned.
        uuid = str(first_of(params, "ParentMessageUUID", default=part_uuid))
        raw_status = str(first_of(params, "Status", "status"))
        # A reply carries no Status, and its text field even when the text is empty (or only media).
        inbound = not raw_status and any(name in params for name in INBOUND_FIELDS)
        code = clean_error_code(params.get("ErrorCode"))
        part, parts = _part_info(params)
        try:
            sequence = int(params["Sequence"]) if params.get("Sequence") not in (None, "") else None
        except (TypeError, ValueError):
            sequence = None
        if parts > 1:
            sequence = None  # each part counts its own callbacks: their Sequences do not order the message
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
                error_message=error_meaning(self.code, code) if code else "",
                sequence=sequence,
                # A reply: who wrote it, as Plivo gives it (digits without "+", a short code, a sender ID).
                recipient=str(params.get("From") or "") if inbound else _as_number(params.get("To")),
                part=part,
                parts=parts,
                direction="inbound" if inbound else "outbound",
                body=str(first_of(params, "Text", "Body")) if inbound else "",
                raw=dict(params),
                media_urls=numbered_values(params, "Media") if inbound else (),
                to_address=str(params.get("To") or "") if inbound else "",
            )
        ]


def _as_number(value) -> str:
    """A number of a status callback (digits without "+") as E.164; anything else (a short code written with
    letters, a sender ID) as its letters and digits."""
    text = _digits(str(value or ""))
    return "+" + text if text.isascii() and text.isdigit() else text


def _part_info(params: dict) -> tuple[int, int]:
    """(part, parts) from PartInfo "2 of 3"; (1, 1) when absent or unreadable."""
    text = str(params.get("PartInfo") or "").lower().split(" of ")
    try:
        part, parts = int(text[0]), int(text[1])
    except (IndexError, ValueError):
        return 1, 1
    return (part, parts) if 1 <= part <= parts else (1, 1)


