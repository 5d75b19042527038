"""Plivo as the emulator plays it (docs/providers.md, Plivo).

POST /v1/Account/{auth_id}/Message/        send (JSON or form), 202 {"message", "message_uuid": [...], "api_id"}
GET  /v1/Account/{auth_id}/Message/{uuid}/ one MDR
GET  /v1/Account/{auth_id}/Message/        list (message_direction, message_state, message_time__gte/gt/lte/lt,
                                           limit 1-20, offset)
GET  /v1/Account/{auth_id}/                account details (credential check)
Callbacks: form-encoded to `url` (or GET with `method=GET`), statuses queued -> sent -> final, with `Sequence`,
signed X-Plivo-Signature-V2 (+ Ma-V2) and X-Plivo-Signature-V3, each with its nonce.
Inbound (POST /sandbox/inbound, signed the same way with `auth_token`, which it requires): form fields
MessageUUID, From, To (numbers without "+", a sender ID as given), Type, Units, TotalRate, TotalAmount,
MessageIntent (`optout` for STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT; `optin` for START, UNSTOP, YES; `help`
for HELP, INFO: the whole text, case aside; else empty), PowerpackUUID; an SMS carries its text in Text, an MMS
(with `media`) in Body, with MediaCount and Media1...MediaN. `inbound_callback` builds it.

Text limits (Plivo's `text` field): GSM 03.38 text at most 1600 characters, split into 153-character units beyond
160; text with any other (UCS-2) character at most 737, split into 67-character units beyond 70; longer text
is refused with 400. Multi-unit messages (Plivo's support pages): the split parts are reported part by part,
each with its own MessageUUID, ParentMessageUUID the first part's uuid (the one the send returns), PartInfo
"1 of N" ... "N of N", and their own Sequence 1, 2, 3. `Units` carries N in every part's callbacks, and the MDR
(GET one, list) is the message's, with `units` N and the combined state (our reading: the docs define `Units` as
"the number of units into which a long SMS was split"). Outcomes: all parts delivered; undelivered = the last
part undelivered, the others delivered; failed = every part failed.

Rate limit: 429 {"api_id", "error"}; no Retry-After header (none documented) unless `undocumented_retry_after`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from .core import Inbound, InboundError, Sandbox, basic_credentials

CODE = "plivo"
UNDELIVERED_CODES = ["20", "30", "50", "70", "80"]
FAILED_CODES = ["10", "40", "90", "120", "420"]
GSM_MAX, GSM_SINGLE, GSM_UNIT = 1600, 160, 153
UCS2_MAX, UCS2_SINGLE, UCS2_UNIT = 737, 70, 67
# GSM 03.38 basic character set and its extension table (3GPP TS 23.038).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = set("^{}\\[~]|€\f")
NUMBER_LIKE = re.compile(r"^\+?[0-9][0-9 ()\-.]*$")
# The standard keywords behind an inbound message's MessageIntent (the whole text, case aside).
INTENTS = {
    "optout": {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"},
    "optin": {"start", "unstop", "yes"},
    "help": {"help", "info"},
}


def units_of(text: str) -> tuple[str, int]:
    """("gsm" or "ucs2", number of units) of a text, as Plivo documents `text`."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text):
        return "gsm", 1 if len(text) <= GSM_SINGLE else -(-len(text) // GSM_UNIT)
    return "ucs2", 1 if len(text) <= UCS2_SINGLE else -(-len(text) // UCS2_UNIT)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _api_id() -> str:
    return str(uuid.uuid4())


def _sign(key: str, text: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


def _v3_signed_text(method: str, url: str, params: dict[str, str], nonce: str) -> str:
    split = urlsplit(url)
    base = f"{split.scheme}://{split.netloc}{split.path}"
    url_query = sorted(parse_qsl(split.query, keep_blank_values=True))
    if method == "GET":
        everything = sorted(url_query + list(params.items()))
        text = base + ("?" + "&".join(f"{k}={v}" for k, v in everything) if everything else "")
    else:
        text = base
        if url_query:
            text += "?" + "&".join(f"{k}={v}" for k, v in url_query)
        if params:
            text += ("." if url_query else "?") + "".join(f"{k}{v}" for k, v in sorted(params.items()))
    return text + "." + nonce


def _signature_headers(token: str, method: str, url: str, params: dict[str, str]) -> dict[str, str]:
    nonce2 = str(10**19 + secrets.randbelow(9 * 10**19))
    nonce3 = str(10**19 + secrets.randbelow(9 * 10**19))
    split = urlsplit(url)
    v2 = _sign(token, f"{split.scheme}://{split.netloc}{split.path}{nonce2}")
    return {
        "X-Plivo-Signature-V2": v2,
        "X-Plivo-Signature-Ma-V2": v2,
        "X-Plivo-Signature-V2-Nonce": nonce2,
        "X-Plivo-Signature-V3": _sign(token, _v3_signed_text(method, url, params, nonce3)),
        "X-Plivo-Signature-V3-Nonce": nonce3,
    }


def _clean(number: str) -> str:
    return "".join(ch for ch in str(number) if ch.isalnum())


def _address(value: str) -> str:
    """An address as Plivo writes it in a callback: a number without "+" or punctuation; anything else (a sender
    ID) as it is."""
    return _clean(value) if NUMBER_LIKE.match(value) else value


def message_intent(text: str) -> str:
    """``MessageIntent`` of an inbound text: ``optout``, ``optin`` or ``help`` when the whole text is a standard
    keyword (case aside), else ""."""
    word = text.strip().lower()
    for intent, words in INTENTS.items():
        if word in words:
            return intent
    return ""


def inbound_callback(asked: Inbound, message_uuid: str, token: str) -> dict:
    """What Plivo posts to the application's ``message_url`` for an inbound message, signed with ``token``: form
    fields, an SMS's text in ``Text``, an MMS's in ``Body`` beside ``MediaCount`` and ``Media1``...; no Status."""
    params = {"MessageUUID": message_uuid, "From": _address(asked.sender), "To": _address(asked.to)}
    if asked.media:
        params.update({"Type": "mms", "Body": asked.text, "Units": "1", "MediaCount": str(len(asked.media))})
        params.update({f"Media{n}": url for n, url in enumerate(asked.media, start=1)})
    else:
        params.update({"Type": "sms", "Text": asked.text, "Units": str(units_of(asked.text)[1])})
    params.update({"TotalRate": "0.00000", "TotalAmount": "0.00000", "MessageIntent": message_intent(asked.text),
                   "PowerpackUUID": ""})
    return {"url": asked.url, "method": "POST", "data": params,
            "headers": _signature_headers(token, "POST", asked.url, params)}


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"api_id": _api_id(), "error": text}, status=status)


def setup(app: web.Application, sandbox: Sandbox) -> None:
    store = sandbox.messages[CODE]

    def authorized(request: web.Request) -> tuple[str, str] | None:
        creds = basic_credentials(request)
        if creds is None or creds[0] != request.match_info["auth_id"] or sandbox.is_rejected_secret(*creds):
            return None
        return creds

    def mdr(record: dict) -> dict:
        return {
            "api_id": _api_id(),
            "message_uuid": record["uuid"],
            "message_time": record["time"],
            "message_direction": "outbound",
            "message_state": record["state"],
            "message_type": record["type"],
            "from_number": record["src"],
            "to_number": record["dst"],
            "units": record["units"],
            "total_rate": "0.00500",
            "total_amount": f"{0.005 * record['units']:.5f}",
            "error_code": record["error_code"] if record["error_code"] else "",
            "error_message": "",
            "message_sent_time": record.get("sent_time", ""),
            "message_updated_time": record["updated"],
            "resource_uri": f"/v1/Account/{record['auth_id']}/Message/{record['uuid']}/",
        }

    def combined_state(record: dict) -> str:
        """The message's state from its parts' states: undelivered or failed as soon as one part is, delivered
        once all are, else the least advanced part's."""
        states = [part["state"] for part in record["parts"]]
        for final in ("undelivered", "failed"):
            if final in states:
                return final
        if all(state == "delivered" for state in states):
            return "delivered"
        return "queued" if "queued" in states else "sent"

    def callback_builder(record: dict, state: str, sequence: int, error_code: str = "", part: int = 1):
        def build() -> dict:
            piece = record["parts"][part - 1]
            piece["state"] = state
            record["state"] = combined_state(record)
            record["updated"] = _now()
            if state == "sent":
                record["sent_time"] = record.get("sent_time") or record["updated"]
            if error_code:
                record["error_code"] = error_code
            units = len(record["parts"])
            params = {
                "MessageUUID": piece["uuid"],
                "To": record["dst"],
                "From": record["src"],
                "Type": record["type"],
                "Status": state,
                "Units": str(units),
                "TotalRate": "0.00500",
                "TotalAmount": f"{0.005 * units:.5f}",
                "MCC": "310",
                "MNC": "260",
                "ParentMessageUUID": record["uuid"],
                "PartInfo": f"{part} of {units}",
                "Sequence": str(sequence),
                "MessageTime": record["time"],
                "QueuedTime": record["time"],
                "SentTime": record.get("sent_time", ""),
                "DeliveryReportTime": record["updated"] if state in ("delivered", "undelivered") else "",
                "PowerpackUUID": record.get("powerpack_uuid", ""),
                "ErrorCode": error_code if state in ("failed", "undelivered") else "000",
            }
            if not record.get("url"):
                return {}
            method = record.get("method", "POST")
            return {
                "url": record["url"],
                "method": method,
                "data": params,
                "headers": _signature_headers(record["token"], method, record["url"], params),
            }

        return build

    async def send(request: web.Request) -> web.StreamResponse:
        await sandbox.delay()
        creds = authorized(request)
        if creds is None:
            return _error(401, "Authentication failed")
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "invalid JSON body")
        else:
            body = dict(await request.post())
        if not isinstance(body, dict):
            return _error(400, "invalid request body")
        src, powerpack = body.get("src"), body.get("powerpack_uuid")
        if bool(src) == bool(powerpack):
            return _error(400, "exactly one of src and powerpack_uuid must be given")
        dst = body.get("dst")
        if not dst:
            return _error(400, "dst parameter is required")
        kind = body.get("type") or "sms"
        if kind not in ("sms", "mms", "whatsapp"):
            return _error(400, "type must be sms or mms")
        media = body.get("media_urls") or []
        if isinstance(media, str):
            media = [m for m in media.split(",") if m]
        if kind == "mms" and not media:
            return _error(400, "media_urls is required for mms")
        if len(media) > 10:
            return _error(400, "at most 10 media_urls are allowed")
        text = body.get("text")
        if kind == "sms" and not text:
            return _error(400, "text parameter is required")
        encoding, units = units_of(str(text or ""))
        if encoding == "gsm" and len(text or "") > GSM_MAX:
            return _error(400, f"text exceeds the limit of {GSM_MAX} characters for GSM 03.38 text")
        if encoding == "ucs2" and len(text or "") > UCS2_MAX:
            return _error(400, f"text exceeds the limit of {UCS2_MAX} characters for unicode text")
        if kind != "sms":
            units = 1
        destinations = [_clean(d) for d in str(dst).split("<")]
        for d in destinations:
            if not d.isdigit() or not 8 <= len(d) <= 14:
                return _error(400, f"dst {d!r} is not a valid destination number")
        sender_key = f"{creds[0]}:{powerpack or _clean(src)}"
        fault, retry_after = sandbox.fault(CODE, sender_key)
        if fault == "5xx":
            return _error(500, "internal server error")
        if fault == "429":
            return web.json_response(
                {"api_id": _api_id(), "error": "too many requests"},
                status=429,
                headers=sandbox.retry_after_headers(retry_after),
            )
        uuids = []
        for destination in destinations:
            record = {
                "uuid": str(uuid.uuid4()),
                "auth_id": creds[0],
                "token": creds[1],
                "src": _clean(src) if src else "",
                "powerpack_uuid": powerpack or "",
                "dst": destination,
                "type": kind,
                "text": text or "",
                "media": media,
                "url": body.get("url", ""),
                "method": (body.get("method") or "POST").upper(),
                "state": "queued",
                "error_code": "",
                "time": _now(),
                "updated": _now(),
                "units": units,
            }
            # part 1 is the message itself: its uuid is the one the send returns
            record["parts"] = [{"uuid": record["uuid"] if n == 0 else str(uuid.uuid4()), "state": "queued"}
                               for n in range(units)]
            store[record["uuid"]] = record
            uuids.append(record["uuid"])
            accepted = sandbox.ledger.accept(CODE, sender_key, destination, record["url"] or record["text"],
                                             record["text"], record["uuid"])
            outcome = sandbox.outcome("+" + destination, accepted)
            parts = range(1, units + 1)
            steps = [callback_builder(record, "queued", 1, part=n) for n in parts]
            if outcome == "failed":
                code = sandbox.rng.choice(FAILED_CODES)
                steps += [callback_builder(record, "failed", 2, code, part=n) for n in parts]
            else:
                steps += [callback_builder(record, "sent", 2, part=n) for n in parts]
                code = sandbox.rng.choice(UNDELIVERED_CODES) if outcome == "undelivered" else ""
                for n in parts:  # an undelivered message: its last part is the one that did not arrive
                    final = "undelivered" if outcome == "undelivered" and n == units else "delivered"
                    steps.append(callback_builder(record, final, 3, code if final == "undelivered" else "", part=n))
            sandbox.post_callbacks(steps)
        if fault == "ambiguous":
            sandbox.ledger.counts["ambiguous"] += 1
            return await sandbox.drop_connection(request)
        return web.json_response(
            {"message": "message(s) queued", "message_uuid": uuids, "api_id": _api_id()}, status=202
        )

    async def get_one(request: web.Request) -> web.Response:
        await sandbox.delay()
        if authorized(request) is None:
            return _error(401, "Authentication failed")
        record = store.get(request.match_info["uuid"])
        if record is None or record["auth_id"] != request.match_info["auth_id"]:
            return _error(404, "not found")
        return web.json_response(mdr(record))

    async def list_messages(request: web.Request) -> web.Response:
        await sandbox.delay()
        if authorized(request) is None:
            return _error(401, "Authentication failed")
        q = request.query
        try:
            limit = min(20, max(1, int(q.get("limit", 20))))
            offset = max(0, int(q.get("offset", 0)))
        except ValueError:
            return _error(400, "limit and offset must be numbers")
        rows = [r for r in store.values() if r["auth_id"] == request.match_info["auth_id"]]
        if q.get("message_state"):
            rows = [r for r in rows if r["state"] == q["message_state"]]
        if q.get("message_direction") and q["message_direction"] != "outbound":
            rows = []
        for op, test in (("gte", str.__ge__), ("gt", str.__gt__), ("lte", str.__le__), ("lt", str.__lt__)):
            bound = q.get(f"message_time__{op}")
            if bound:
                rows = [r for r in rows if test(r["time"], bound)]
        rows.sort(key=lambda r: r["time"], reverse=True)
        page = rows[offset : offset + limit]
        base = f"/v1/Account/{request.match_info['auth_id']}/Message/"
        nxt = f"{base}?limit={limit}&offset={offset + limit}" if offset + limit < len(rows) else None
        return web.json_response(
            {
                "api_id": _api_id(),
                "meta": {"limit": limit, "offset": offset, "next": nxt, "previous": None, "total_count": len(rows)},
                "objects": [mdr(r) for r in page],
            }
        )

    async def account(request: web.Request) -> web.Response:
        await sandbox.delay()
        creds = authorized(request)
        if creds is None:
            return _error(401, "Authentication failed")
        return web.json_response(
            {"api_id": _api_id(), "account_type": "standard", "auth_id": creds[0], "cash_credits": "100.00000",
             "name": "Sandbox account", "resource_uri": f"/v1/Account/{creds[0]}/"}
        )

    async def inbound(asked: Inbound) -> tuple[str, str, bool]:
        token = asked.secret("auth_token")
        if not token:
            raise InboundError("auth_token is required: Plivo signs inbound messages with it")
        message_uuid = str(uuid.uuid4())
        if asked.url:
            callback = inbound_callback(asked, message_uuid, token)
            sandbox.post_callbacks([lambda: callback])
        return message_uuid, "message_uuid", bool(asked.url)

    async def force(message_uuid: str, data: dict) -> dict:
        record = store[message_uuid]
        sequence = int(data.get("sequence", 99))
        sandbox.post_callbacks([callback_builder(record, data["status"], sequence, data.get("error_code", ""),
                                                 part=int(data.get("part", 1)))])
        return {"queued": True}

    sandbox.inbound_handlers[CODE] = inbound
    sandbox.force_handlers[CODE] = force
    app.router.add_post("/v1/Account/{auth_id}/Message/", send)
    app.router.add_get("/v1/Account/{auth_id}/Message/", list_messages)
    app.router.add_get("/v1/Account/{auth_id}/Message/{uuid}/", get_one)
    app.router.add_get("/v1/Account/{auth_id}/", account)
