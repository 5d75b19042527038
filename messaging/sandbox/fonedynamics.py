"""Fone Dynamics as the emulator plays it (docs/providers.md, Fone Dynamics).

POST /v2/Properties/{PropertySid}/Messages   send (JSON), 200 {"Message": {...}}; 400 ServiceStack
                                             {"ResponseStatus": {"ErrorCode", "Message", "Errors"}}
GET  /v2/Messages/{MessageSid}               one message, {"Message": {...}}
GET  /v2/Properties/{PropertySid}/Messages   list: Date_From, Date_To (unix seconds), Results_Count,
                                             Results_Skip -> {"Messages": [...]} (list shape assumed; the
                                             `fonedynamics_list_key` option names another key, or "" for a
                                             bare array)
Auth: HTTP Basic AccountSid:Token.
Delivery receipts: when DeliveryReceipt is true (the default) and DeliveryReceiptWebhookUri is set, one webhook
with the Message resource when the receipt arrives: POST JSON {"Message": {...}} or GET with the resource's fields
in the query (DeliveryReceiptWebhookMethod). No public spec exists for this body: it is our assumption. Statuses:
Delivered; Failed with Submitted set (carrier refusal); Failed without Submitted (never left). Nothing is signed;
credentials embedded in the webhook URI (user:pass@host) are sent as HTTP Basic auth, as any HTTP client does.
Leased sender (From blank): the lease-only WebhookUri / WebhookMethod (POST or GET, default POST) are accepted and
kept; a reply to the message (POST /sandbox/inbound {"provider": "fonedynamics", "reply_to": <MessageSid>,
"text": ...}) is posted there, as the Message resource of the reply (Direction Receive, Status Received, From the
recipient, To the leased number): the reply body is our assumption, like the receipt's. Without a WebhookUri the
reply reaches nobody, as documented. The other lease options (ForwardToSms, ...) are accepted and ignored.
Inbound to a number of ours (POST /sandbox/inbound with `url`, `from`, `to`, `text`; `inbound_callback` builds
it): the same reply resource, POSTed as JSON {"Message": {...}} to `url` (its embedded credentials as Basic auth);
optional `account_sid` and `property_sid` fill those fields. The API documents SMS only: `media` is refused.
No rate limit is documented: the 429 fault answers 429, with Retry-After only under `undocumented_retry_after`.
"""

from __future__ import annotations

import re
import secrets
import string
import time

from aiohttp import web

from .core import Inbound, InboundError, Sandbox, basic_credentials, split_url_credentials

CODE = "fonedynamics"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
FAILED_CODES = ["InvalidDestination", "Expired", "Rejected"]  # the real code list is not public


def _sid(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(31))


def _error(status: int, code: str, message: str, field: str = "") -> web.Response:
    errors = [{"ErrorCode": code, "FieldName": field, "Message": message}] if field else []
    return web.json_response({"ResponseStatus": {"ErrorCode": code, "Message": message, "Errors": errors}},
                             status=status)


def resource(record: dict) -> dict:
    """The Message resource of a stored record (absent fields null)."""
    keys = ("MessageSid", "AccountSid", "PropertySid", "From", "To", "Text", "ExternalId", "DeliveryReceipt",
            "DeliveryReceiptWebhookUri", "DeliveryReceiptWebhookMethod", "WebhookUri", "WebhookMethod",
            "NumSegments", "Status", "Direction", "Scheduled", "Created", "Submitted", "Delivered", "Received",
            "ErrorCode")
    return {key: record.get(key) for key in keys}


def reply_record(sid: str, *, sender: str, to: str, text: str, account_sid: str = "", property_sid: str = "") -> dict:
    """An inbound message as Fone Dynamics keeps it (assumed): Direction Receive, Status Received."""
    now = int(time.time())
    return {"MessageSid": sid, "AccountSid": account_sid, "PropertySid": property_sid, "From": sender, "To": to,
            "Text": text, "Status": "Received", "Direction": "Receive", "Created": now, "Received": now,
            "DeliveryReceipt": False}


def inbound_callback(asked: Inbound, sid: str) -> dict:
    """What the emulator posts for an inbound message to `url` (assumed, as for a lease's WebhookUri): JSON
    {"Message": <the resource>}; nothing is signed, Basic credentials in the URL go in an Authorization header."""
    record = reply_record(sid, sender=asked.sender, to=asked.to, text=asked.text,
                          account_sid=str(asked.data.get("account_sid") or ""),
                          property_sid=str(asked.data.get("property_sid") or ""))
    url, headers = split_url_credentials(asked.url)
    return {"url": url, "method": "POST", "json": {"Message": resource(record)}, "headers": headers}


def setup(app: web.Application, sandbox: Sandbox) -> None:
    store = sandbox.messages[CODE]

    def authorized(request: web.Request) -> tuple[str, str] | None:
        creds = basic_credentials(request)
        if creds is None or sandbox.is_rejected_secret(*creds):
            return None
        property_sid = request.match_info.get("property_sid")
        if property_sid is not None and sandbox.is_rejected_secret(property_sid):
            return None
        return creds

    def webhook_builder(record: dict, status: str, *, submitted: bool, error_code: str = ""):
        def build() -> dict:
            now = int(time.time())
            record["Status"] = status
            if submitted and not record.get("Submitted"):
                record["Submitted"] = now
            if status == "Delivered":
                record["Delivered"] = now
            if error_code:
                record["ErrorCode"] = error_code
            if not record.get("DeliveryReceipt") or not record.get("DeliveryReceiptWebhookUri"):
                return {}
            url, headers = split_url_credentials(record["DeliveryReceiptWebhookUri"])
            method = (record.get("DeliveryReceiptWebhookMethod") or "POST").upper()
            body = resource(record)
            if method == "GET":
                data = {k: ("" if v is None else str(v)) for k, v in body.items()}
                return {"url": url, "method": "GET", "data": data, "headers": headers}
            return {"url": url, "method": "POST", "json": {"Message": body}, "headers": headers}

        return build

    async def send(request: web.Request) -> web.StreamResponse:
        await sandbox.delay()
        creds = authorized(request)
        if creds is None:
            return _error(401, "Unauthorized", "Invalid AccountSid or Token")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "SerializationException", "The request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "SerializationException", "The request body must be a JSON object")
        to = str(body.get("To") or "")
        if not E164.match(to):
            return _error(400, "InvalidTo", "'To' must be a phone number in E164 format (including + prefix)", "To")
        sender = str(body.get("From") or "").strip()
        if sender and not (E164.match(sender) or ALPHANUMERIC.match(sender)):
            return _error(400, "InvalidFrom", "'From' must be an E164 number, an alphanumeric sender ID of 1 to 11 "
                                              "characters with at least one letter, or blank", "From")
        text = body.get("Text")
        if not text:
            return _error(400, "NotEmpty", "'Text' should not be empty", "Text")
        method = str(body.get("DeliveryReceiptWebhookMethod") or "POST").upper()
        if method not in ("POST", "GET"):
            return _error(400, "InvalidMethod", "DeliveryReceiptWebhookMethod must be POST or GET",
                          "DeliveryReceiptWebhookMethod")
        reply_method = str(body.get("WebhookMethod") or "POST").upper()
        if reply_method not in ("POST", "GET"):
            return _error(400, "InvalidMethod", "WebhookMethod must be POST or GET", "WebhookMethod")
        reply_uri = body.get("WebhookUri") or None
        if reply_uri is not None and not str(reply_uri).startswith(("http://", "https://")):
            return _error(400, "InvalidUri", "WebhookUri must be an absolute http(s) URI", "WebhookUri")
        property_sid = request.match_info["property_sid"]
        sender_key = f"{creds[0]}:{property_sid}:{sender or 'leased'}"
        fault, retry_after = sandbox.fault(CODE, sender_key)
        if fault == "5xx":
            return _error(500, "InternalServerError", "An internal error occurred")
        if fault == "429":
            return web.json_response(
                {"ResponseStatus": {"ErrorCode": "TooManyRequests", "Message": "Too many requests"}},
                status=429, headers=sandbox.retry_after_headers(retry_after),
            )
        now = int(time.time())
        record = {
            "MessageSid": _sid("M"),
            "AccountSid": creds[0],
            "PropertySid": property_sid,
            # a leased sender: an E.164 number allocated per recipient
            "From": sender or "+6148" + "".join(secrets.choice(string.digits) for _ in range(7)),
            "To": to,
            "Text": text,
            "ExternalId": body.get("ExternalId"),
            "DeliveryReceipt": body.get("DeliveryReceipt", True) is not False,
            "DeliveryReceiptWebhookUri": body.get("DeliveryReceiptWebhookUri"),
            "DeliveryReceiptWebhookMethod": method,
            # lease-only reply handling: kept only when sending from a leased number
            "WebhookUri": reply_uri if not sender else None,
            "WebhookMethod": reply_method if not sender and reply_uri else None,
            "NumSegments": max(1, -(-len(text) // 153)) if len(text) > 160 else 1,
            "Status": "Processing",
            "Direction": "Transmit",
            "Scheduled": body.get("Schedule"),
            "Created": now,
            "Submitted": None,
            "Delivered": None,
            "Received": None,
            "ErrorCode": None,
        }
        store[record["MessageSid"]] = record
        accepted = sandbox.ledger.accept(CODE, sender_key, to, str(record["ExternalId"] or record["MessageSid"]),
                                         text, record["MessageSid"])
        outcome = sandbox.outcome(to, accepted)
        if outcome == "delivered":
            step = webhook_builder(record, "Delivered", submitted=True)
        elif outcome == "undelivered":
            step = webhook_builder(record, "Failed", submitted=True, error_code=sandbox.rng.choice(FAILED_CODES))
        else:
            step = webhook_builder(record, "Failed", submitted=False, error_code=sandbox.rng.choice(FAILED_CODES))

        def submitted() -> dict:  # the SMSC takes it; no webhook (only receipts are posted)
            record["Status"] = "Submitted"
            record["Submitted"] = int(time.time())
            return {}

        sandbox.post_callbacks([submitted, step] if outcome != "failed" else [step])
        if fault == "ambiguous":
            sandbox.ledger.counts["ambiguous"] += 1
            return await sandbox.drop_connection(request)
        return web.json_response({"Message": resource(record)})

    async def get_one(request: web.Request) -> web.Response:
        await sandbox.delay()
        creds = authorized(request)
        if creds is None:
            return _error(401, "Unauthorized", "Invalid AccountSid or Token")
        record = store.get(request.match_info["sid"])
        if record is None or record["AccountSid"] != creds[0]:
            return _error(404, "NotFound", "Message not found")
        return web.json_response({"Message": resource(record)})

    async def list_messages(request: web.Request) -> web.Response:
        await sandbox.delay()
        creds = authorized(request)
        if creds is None:
            return _error(401, "Unauthorized", "Invalid AccountSid or Token")
        q = request.query
        try:
            count = min(1000, max(1, int(q.get("Results_Count", 100))))
            skip = max(0, int(q.get("Results_Skip", 0)))
            date_from = int(q["Date_From"]) if q.get("Date_From") else None
            date_to = int(q["Date_To"]) if q.get("Date_To") else None
        except ValueError:
            return _error(400, "InvalidArgument", "Date_From, Date_To, Results_Count and Results_Skip are integers")
        rows = [r for r in store.values()
                if r["AccountSid"] == creds[0] and r["PropertySid"] == request.match_info["property_sid"]]
        if date_from is not None:
            rows = [r for r in rows if r["Created"] >= date_from]
        if date_to is not None:
            rows = [r for r in rows if r["Created"] <= date_to]
        rows.sort(key=lambda r: r["Created"], reverse=True)
        page = [resource(r) for r in rows[skip: skip + count]]
        key = sandbox.options.fonedynamics_list_key
        return web.json_response({key: page} if key else page)

    async def reply(asked: Inbound) -> tuple[str, str, bool]:
        """A recipient answers a message sent from a leased number: posted to that message's WebhookUri."""
        original = store.get(str(asked.data["reply_to"]))
        if original is None:
            raise InboundError("reply_to names no message the emulator sent")
        record = reply_record(_sid("M"), sender=original["To"], to=original["From"], text=asked.text,
                              account_sid=original["AccountSid"], property_sid=original["PropertySid"])
        if not original.get("WebhookUri"):
            return record["MessageSid"], "MessageSid", False
        url, headers = split_url_credentials(original["WebhookUri"])
        if (original.get("WebhookMethod") or "POST") == "GET":
            query = {k: ("" if v is None else str(v)) for k, v in resource(record).items()}
            sandbox.post_callbacks([lambda: {"url": url, "method": "GET", "data": query, "headers": headers}])
        else:
            sandbox.post_callbacks([lambda: {"url": url, "method": "POST", "json": {"Message": resource(record)},
                                             "headers": headers}])
        return record["MessageSid"], "MessageSid", True

    async def inbound(asked: Inbound) -> tuple[str, str, bool]:
        if asked.media:
            raise InboundError("Fone Dynamics documents SMS only: an inbound message has no media")
        if asked.data.get("reply_to"):
            return await reply(asked)
        sid = _sid("M")
        if asked.url:
            callback = inbound_callback(asked, sid)
            sandbox.post_callbacks([lambda: callback])
        return sid, "MessageSid", bool(asked.url)

    async def force(sid: str, data: dict) -> dict:
        record = store[sid]
        status = data["status"]
        submitted = status in ("Submitted", "Delivered") or bool(data.get("submitted"))
        sandbox.post_callbacks(
            [webhook_builder(record, status, submitted=submitted, error_code=data.get("error_code", ""))]
        )
        return {"queued": True}

    sandbox.inbound_handlers[CODE] = inbound
    sandbox.force_handlers[CODE] = force
    app.router.add_post("/v2/Properties/{property_sid}/Messages", send)
    app.router.add_get("/v2/Properties/{property_sid}/Messages", list_messages)
    app.router.add_get("/v2/Messages/{sid}", get_one)
