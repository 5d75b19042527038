"""Bandwidth v1 "Catapult" messaging as the emulator plays it (docs/providers.md, Bandwidth v1).

POST /v1/users/{userId}/messages             one message (JSON object) -> 201, empty body, Location header;
                                             or up to 50 (JSON array) -> 202, array aligned with the request of
                                             {"result": "accepted", "location"} / {"result": "error", "error"}
GET  /v1/users/{userId}/messages/{id}        the message resource
GET  /v1/users/{userId}/messages             list: from, to, fromDateTime, toDateTime (yyyy-MM-dd hh:mm:ss[.sss]),
                                             direction, state, deliveryState, sortOrder, size (25, max 1000),
                                             page; JSON array, Link rel="next" when there is more (never
                                             under the `bandwidth_omit_next_link` option)
Auth: HTTP Basic api_token:api_secret. Errors: {"category", "code", "message", "details": [{"name", "value"}]}.
Rate limit (the 429 fault and the per-sender limit): 403 {"category": "limit", "code": "message-rate-limit"},
with no Retry-After header (the documentation names none) unless the `undocumented_retry_after` option is on.
Message events: JSON POST (or GET with the fields in the query, callbackHttpMethod=GET) to callbackUrl,
User-Agent BandwidthAPI/v1: state "sent" (deliveryState "waiting" when a receipt was requested), then the receipt
(state "sent" with deliveryState "delivered" / "not-delivered", deliveryCode, deliveryDescription) when
receiptRequested asked for it (no receipt for MMS, which cannot request one); state "error" when it never left.
`tag` is echoed in every event. Nothing is signed; credentials embedded in callbackUrl (user:pass@host) are sent
as HTTP Basic auth, as the documentation describes.
Inbound (POST /sandbox/inbound, `inbound_callback` builds it): the message event with direction "in", state
"received", from, to, text, applicationId, and for MMS (with `media`) eventType "mms" and the `media` list, posted
as JSON to `url` (its embedded credentials as Basic auth); optional `user_id` names the user in messageUri.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from .core import Inbound, Sandbox, basic_credentials, split_url_credentials

CODE = "bandwidth"
BULK_MAX = 50
TEXT_MAX = 2048
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
NOT_DELIVERED_CODES = {
    "720": "Invalid destination number",
    "750": "Destination Rejected Message",
    "770": "Destination Rejected due to SPAM",
    "775": "Rejected due to user opt out",
    "902": "Message Expired",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _message_id() -> str:
    return "m-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(25))


def _error(category: str, code: str, message: str, details: list | None = None) -> dict:
    return {"category": category, "code": code, "message": message, "details": details or []}


def _answer(status: int, error: dict, headers: dict | None = None) -> web.Response:
    return web.json_response(error, status=status, headers=headers)


def _parse_time(value: str) -> str | None:
    """The list filters' yyyy-MM-dd hh:mm:ss.sss (parts may be left out) as a sortable ISO string."""
    value = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        except ValueError:
            continue
    return None


def validate(message: object) -> dict | None:
    """The documented constraints of one message; an error object or None."""
    if not isinstance(message, dict):
        return _error("bad-request", "invalid-body", "Each message must be a JSON object")
    for name in ("from", "to"):
        value = message.get(name)
        if value is None:
            return _error("bad-request", "missing-property",
                          f"The 'message' resource property '{name}' is required but was not specified")
        if not str(value).strip():
            return _error("bad-request", "blank-property",
                          f"The 'message' resource property '{name}' must contain at least one non-whitespace character")
        if not E164.match(str(value)):
            return _error("bad-request", "validation-error",
                          f"The 'message' resource property '{name}' must be in E.164 format, like +19195551212",
                          [{"name": name, "value": str(value)}])
    media = message.get("media")
    if isinstance(media, str):
        media = [media]
    text = message.get("text")
    if not text and not media:
        return _error("bad-request", "missing-property",
                      "The 'message' resource property 'text' is required but was not specified")
    if text and len(str(text)) > TEXT_MAX:
        return _error("bad-request", "validation-error", "The message text must be 2,048 characters or less")
    receipt = message.get("receiptRequested")
    if receipt not in (None, "none", "all", "error"):
        return _error("bad-request", "validation-error", "receiptRequested must be one of none, all, error")
    if media and receipt in ("all", "error"):
        return _error("bad-request", "validation-error", "Can not send media and receiptRequested in the same request")
    method = str(message.get("callbackHttpMethod") or "post").lower()
    if method not in ("get", "post"):
        return _error("bad-request", "validation-error", "callbackHttpMethod must be get or post")
    return None


def inbound_callback(asked: Inbound, message_id: str) -> dict:
    """The message event Bandwidth posts to the application's callback for an inbound message: JSON with
    `direction` "in" and `state` "received"; an MMS (with media) has `eventType` "mms" and its `media` list.
    Nothing is signed: Basic credentials in the URL go in an Authorization header."""
    user_id = str(asked.data.get("user_id") or "u-sandbox")
    event = {
        "eventType": "mms" if asked.media else "sms",
        "direction": "in",
        "messageId": message_id,
        "messageUri": f"https://api.catapult.inetwork.com/v1/users/{user_id}/messages/{message_id}",
        "from": asked.sender,
        "to": asked.to,
        "text": asked.text,
        "applicationId": "a-sandbox",
        "time": _now(),
        "state": "received",
        "segmentCount": 1 if asked.media or len(asked.text) <= 160 else -(-len(asked.text) // 153),
    }
    if asked.media:
        event["media"] = list(asked.media)
    url, headers = split_url_credentials(asked.url)
    headers["User-Agent"] = "BandwidthAPI/v1 (emulator)"
    return {"url": url, "method": "POST", "json": event, "headers": headers}


def setup(app: web.Application, sandbox: Sandbox) -> None:
    store = sandbox.messages[CODE]

    def authorized(request: web.Request) -> tuple[str, str] | None:
        creds = basic_credentials(request)
        if creds is None or sandbox.is_rejected_secret(*creds, request.match_info["user_id"]):
            return None
        return creds

    def unauthorized() -> web.Response:
        return _answer(401, _error("authorization", "access-denied",
                                   "The authenticated user does not have sufficient permissions to access this resource"))

    def resource(record: dict) -> dict:
        keys = ("id", "messageId", "from", "to", "direction", "text", "media", "state", "time", "callbackUrl",
                "callbackTimeout", "fallbackUrl", "tag", "receiptRequested", "deliveryState", "deliveryCode",
                "deliveryDescription", "segmentCount", "skipMMSCarrierValidation")
        return {k: record[k] for k in keys if record.get(k) is not None}

    def event_builder(record: dict, state: str, delivery_state: str | None = None, code: str | None = None):
        def build() -> dict:
            record["state"] = state
            if delivery_state:
                record["deliveryState"] = delivery_state
                record["deliveryCode"] = code or "0"
                record["deliveryDescription"] = (
                    NOT_DELIVERED_CODES.get(code or "", "Unknown error")
                    if delivery_state == "not-delivered" else "Message delivered to carrier"
                )
            if not record.get("callbackUrl"):
                return {}
            event = {
                "eventType": "mms" if record.get("media") else "sms",
                "direction": "out",
                "messageId": record["id"],
                "messageUri": record["uri"],
                "from": record["from"],
                "to": record["to"],
                "text": record.get("text") or "",
                "time": record["time"],
                "state": state,
                "segmentCount": record["segmentCount"],
            }
            if record.get("media"):
                event["media"] = record["media"]
            if record.get("receiptRequested") in ("all", "error") and state == "sent":
                event["deliveryState"] = record.get("deliveryState") or "waiting"
                if record.get("deliveryCode") is not None:
                    event["deliveryCode"] = record["deliveryCode"]
                    event["deliveryDescription"] = record["deliveryDescription"]
            if record.get("tag") is not None:
                event["tag"] = record["tag"]
            url, headers = split_url_credentials(record["callbackUrl"])
            headers["User-Agent"] = "BandwidthAPI/v1 (emulator)"
            if record["callbackMethod"] == "get":
                data = {k: (",".join(v) if isinstance(v, list) else str(v)) for k, v in event.items()}
                return {"url": url, "method": "GET", "data": data, "headers": headers}
            return {"url": url, "method": "POST", "json": event, "headers": headers}

        return build

    def accept(request: web.Request, user_id: str, body: dict) -> dict:
        media = body.get("media")
        media = [media] if isinstance(media, str) else list(media or [])
        message_id = _message_id()
        text = str(body.get("text") or "")
        host = f"{request.scheme}://{request.host}"
        record = {
            "id": message_id,
            "messageId": message_id,
            "userId": user_id,
            "uri": f"{host}/v1/users/{user_id}/messages/{message_id}",
            "from": body["from"],
            "to": body["to"],
            "direction": "out",
            "text": text,
            "media": media,
            "state": "queued",
            "time": _now(),
            "callbackUrl": body.get("callbackUrl") or None,
            "callbackMethod": str(body.get("callbackHttpMethod") or "post").lower(),
            "callbackTimeout": body.get("callbackTimeout"),
            "fallbackUrl": body.get("fallbackUrl"),
            "tag": body.get("tag"),
            "receiptRequested": body.get("receiptRequested") or "none",
            "segmentCount": 1 if media or len(text) <= 160 else -(-len(text) // 153),
            "skipMMSCarrierValidation": False,
        }
        store[message_id] = record
        accepted = sandbox.ledger.accept(CODE, f"{user_id}:{record['from']}", record["to"],
                                         str(record["tag"] or message_id), text, message_id)
        outcome = sandbox.outcome(record["to"], accepted)
        receipt = record["receiptRequested"]
        if outcome == "failed":
            steps = [event_builder(record, "error")]
        else:
            steps = [event_builder(record, "sent")]
            if outcome == "delivered" and receipt == "all":
                steps.append(event_builder(record, "sent", "delivered", "0"))
            elif outcome == "undelivered" and receipt in ("all", "error"):
                steps.append(event_builder(record, "sent", "not-delivered",
                                           sandbox.rng.choice(list(NOT_DELIVERED_CODES))))
        sandbox.post_callbacks(steps)
        return record

    def fault_answer(fault: str, retry_after: float) -> web.Response | None:
        if fault == "5xx":
            return _answer(500, _error("internal-server-error", "internal-error", "An internal server error occurred"))
        if fault == "429":
            return _answer(403, _error("limit", "message-rate-limit", "You have exceeded your message rate limit"),
                           headers=sandbox.retry_after_headers(retry_after))
        return None

    async def send(request: web.Request) -> web.StreamResponse:
        await sandbox.delay()
        creds = authorized(request)
        if creds is None:
            return unauthorized()
        user_id = request.match_info["user_id"]
        try:
            body = await request.json()
        except ValueError:
            return _answer(400, _error("bad-request", "invalid-body", "The request body is not valid JSON"))
        if isinstance(body, list):
            return await send_many(request, user_id, body)
        problem = validate(body)
        if problem:
            return _answer(400, problem)
        fault, retry_after = sandbox.fault(CODE, f"{user_id}:{body['from']}")
        answer = fault_answer(fault, retry_after) if fault in ("5xx", "429") else None
        if answer is not None:
            return answer
        record = accept(request, user_id, body)
        if fault == "ambiguous":
            sandbox.ledger.counts["ambiguous"] += 1
            return await sandbox.drop_connection(request)
        return web.Response(status=201, headers={"Location": record["uri"]})

    async def send_many(request: web.Request, user_id: str, body: list) -> web.StreamResponse:
        if not body or len(body) > BULK_MAX:
            return _answer(400, _error("bad-request", "validation-error",
                                       f"There is a maximum limit of {BULK_MAX} messages per multiple messages request"))
        sandbox.ledger.counts["bandwidth_bulk_requests"] += 1
        sandbox.ledger.counts[f"bandwidth_bulk_size_{len(body)}"] += 1
        first_from = next((m.get("from") for m in body if isinstance(m, dict) and m.get("from")), "")
        fault, retry_after = sandbox.fault(CODE, f"{user_id}:{first_from}")
        answer = fault_answer(fault, retry_after) if fault in ("5xx", "429") else None
        if answer is not None:
            return answer
        results = []
        for message in body:
            problem = validate(message)
            if problem:
                results.append({"result": "error", "error": problem})
            else:
                results.append({"result": "accepted", "location": accept(request, user_id, message)["uri"]})
        if fault == "ambiguous":
            sandbox.ledger.counts["ambiguous"] += 1
            return await sandbox.drop_connection(request)
        return web.json_response(results, status=202)

    async def get_one(request: web.Request) -> web.Response:
        await sandbox.delay()
        if authorized(request) is None:
            return unauthorized()
        record = store.get(request.match_info["message_id"])
        if record is None or record["userId"] != request.match_info["user_id"]:
            message_id = request.match_info["message_id"]
            return _answer(404, _error("not-found", "message-not-found", f"The message '{message_id}' could not be found",
                                       [{"name": "messageId", "value": message_id}]))
        return web.json_response(resource(record))

    async def list_messages(request: web.Request) -> web.Response:
        await sandbox.delay()
        if authorized(request) is None:
            return unauthorized()
        q = request.query
        try:
            size = min(1000, max(1, int(q.get("size", 25))))
            page = max(0, int(q.get("page", 0)))
        except ValueError:
            return _answer(400, _error("bad-request", "validation-error", "size and page must be numbers"))
        rows = [r for r in store.values() if r["userId"] == request.match_info["user_id"]]
        for name in ("from", "to", "direction", "state", "deliveryState"):
            if q.get(name):
                rows = [r for r in rows if str(r.get(name) or "") == q[name]]
        for name, keep in (("fromDateTime", lambda t, b: t >= b), ("toDateTime", lambda t, b: t <= b)):
            if q.get(name):
                bound = _parse_time(q[name])
                if bound is None:
                    return _answer(400, _error("bad-request", "validation-error",
                                               f"{name} must be in yyyy-MM-dd hh:mm:ss.sss format"))
                rows = [r for r in rows if keep(r["time"], bound)]
        rows.sort(key=lambda r: r["time"], reverse=q.get("sortOrder", "asc") == "desc")
        chunk = rows[page * size: (page + 1) * size]
        headers = {}
        if (page + 1) * size < len(rows) and not sandbox.options.bandwidth_omit_next_link:
            query = urlencode({**q, "page": page + 1, "size": size})
            headers["Link"] = f'<{request.scheme}://{request.host}{request.path}?{query}>; rel="next"'
        return web.json_response([resource(r) for r in chunk], headers=headers)

    async def inbound(asked: Inbound) -> tuple[str, str, bool]:
        message_id = _message_id()
        if asked.url:
            callback = inbound_callback(asked, message_id)
            sandbox.post_callbacks([lambda: callback])
        return message_id, "messageId", bool(asked.url)

    async def force(message_id: str, data: dict) -> dict:
        record = store[message_id]
        status = data["status"]
        if status in ("waiting", "delivered", "not-delivered"):
            record["receiptRequested"] = record.get("receiptRequested") if record.get("receiptRequested") != "none" \
                else "all"
            builder = event_builder(record, "sent", None if status == "waiting" else status,
                                    data.get("error_code") or ("0" if status == "delivered" else "999"))
        else:
            builder = event_builder(record, status)
        sandbox.post_callbacks([builder])
        return {"queued": True}

    sandbox.inbound_handlers[CODE] = inbound
    sandbox.force_handlers[CODE] = force
    app.router.add_post("/v1/users/{user_id}/messages", send)
    app.router.add_get("/v1/users/{user_id}/messages", list_messages)
    app.router.add_get("/v1/users/{user_id}/messages/{message_id}", get_one)
