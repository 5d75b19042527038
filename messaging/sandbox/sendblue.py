"""Sendblue as the emulator plays it (docs/providers.md, Sendblue).

POST /api/send-message          send (JSON: number, from_number, content, media_url, send_style, status_callback)
                                -> MessageResponse with `message_handle`, `status: QUEUED`
GET  /api/status?handle=        one MessageResponse (404 when unknown)
GET  /api/v2/messages           list, filters is_outbound, status, service, sendblue_number, from_number, to_number,
                                number, created_at_gte/lte, order_by, order_direction, limit, offset
                                -> {"status": "OK", "data": [...], "pagination": {...}} (paging names assumed)
GET  /api/v2/messages/{id}      {"status": "OK", "data": {...}}
GET/POST/PUT/DELETE /api/account/webhooks   webhook settings, incl. `globalSecret`
Auth: headers sb-api-key-id + sb-api-secret-key, else 401.
Errors (body schema not documented; assumed like a MessageResponse): {"status": "ERROR", "error_code": <int>,
"error_message": ...}: 4000 validation (400), 4001 rate limit (429, with Retry-After), 5000 internal (500).

Callbacks: JSON POST to `status_callback` on each status change: QUEUED -> SENT -> DELIVERED (iMessage) or
ERROR with error_code 10001. A recipient whose outcome is `downgraded` (sandbox option
`outcomes_by_suffix`, e.g. {"0002": "downgraded"}) gets SMS: `was_downgraded: true`, `service: "SMS"`, and
stays SENT. Header `sb-signing-secret` carries the account's secret verbatim: the `globalSecret` set through
/api/account/webhooks, else (sandbox convention) the API key id with `api_key_id` replaced by
`signing_secret` (test senders: `test-api_key_id-value` -> `test-signing_secret-value`); no secret, no header.

Inbound (POST /sandbox/inbound): the `receive` webhook's JSON (`inbound_callback` builds it): the callback's shape
with `is_outbound: false`, `status: RECEIVED`, `number` = `from_number` = who wrote, `to_number` =
`sendblue_number` = our line, `content`, and `media_url` (one URL at most: more is refused). Header
`sb-signing-secret`: the request's `signing_secret`, else the account's secret of `api_key_id` as above.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from aiohttp import web

from .core import Inbound, InboundError, Sandbox, split_url_credentials

CODE = "sendblue"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
MAX_CONTENT = 18_996  # content must be shorter than this
SEND_STYLES = {"celebration", "shooting_star", "fireworks", "lasers", "love", "confetti", "balloons", "spotlight",
               "echo", "invisible", "gentle", "loud", "slam"}
WEBHOOK_TYPES = ("receive", "outbound", "typing_indicator", "call_log", "line_blocked", "line_assigned",
                 "contact_created")
ACCOUNT_EMAIL = "sandbox@example.com"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> str:
    return _iso(datetime.now(UTC))


def _error(status: int, code: int | None, message: str, headers: dict | None = None) -> web.Response:
    body = {"status": "ERROR", "error_code": code, "error_message": message}
    return web.json_response(body, status=status, headers=headers)


def inbound_callback(asked: Inbound, handle: str, secret: str) -> dict:
    """What Sendblue's `receive` webhook posts for an inbound message: the status callback's JSON with
    `is_outbound: false` and `status: RECEIVED`; who wrote is `number` and `from_number`, our line `to_number` and
    `sendblue_number`; the media one `media_url`. The secret goes in `sb-signing-secret` (none: no header); Basic
    credentials in the URL go in an Authorization header."""
    now = _now()
    body = {
        "accountEmail": ACCOUNT_EMAIL, "content": asked.text, "is_outbound": False,
        "media_url": asked.media[0] if asked.media else "", "status": "RECEIVED", "error_code": None,
        "error_message": None, "message_handle": handle, "date_sent": now, "date_updated": now,
        "from_number": asked.sender, "number": asked.sender, "to_number": asked.to,
        "was_downgraded": False, "plan": "dedicated", "service": "iMessage", "opted_out": False,
        "sendblue_number": asked.to, "message_type": "message", "group_id": "", "participants": [],
    }
    url, headers = split_url_credentials(asked.url)
    if secret:
        headers["sb-signing-secret"] = secret
    return {"url": url, "method": "POST", "json": body, "headers": headers}


def setup(app: web.Application, sandbox: Sandbox) -> None:
    def store() -> dict:
        return sandbox.messages[CODE]

    def account(key_id: str) -> dict:
        # api key id -> {"globalSecret": ..., "webhooks": {type: [...]}}; emptied by a sandbox reset
        accounts = sandbox.messages[CODE + ":accounts"]
        return accounts.setdefault(key_id, {"globalSecret": None, "webhooks": {t: [] for t in WEBHOOK_TYPES}})

    def signing_secret(key_id: str) -> str:
        configured = account(key_id)["globalSecret"]
        if configured:
            return configured
        return key_id.replace("api_key_id", "signing_secret") if "api_key_id" in key_id else ""

    def key_id(request: web.Request) -> str | None:
        kid = request.headers.get("sb-api-key-id", "")
        secret = request.headers.get("sb-api-secret-key", "")
        if not kid or not secret or sandbox.is_rejected_secret(kid, secret):
            return None
        return kid

    def unauthorized() -> web.Response:
        return _error(401, None, "Unauthorized: check sb-api-key-id and sb-api-secret-key")

    def message_response(record: dict) -> dict:
        return {
            "account_email": ACCOUNT_EMAIL,
            "content": record["content"],
            "date_created": record["date_created"],
            "date_updated": record["date_updated"],
            "error_code": record.get("error_code"),
            "error_message": record.get("error_message"),
            "from_number": record["from_number"],
            "is_outbound": True,
            "media_url": record["media_url"],
            "message_handle": record["handle"],
            "number": record["number"],
            "send_style": record["send_style"],
            "status": record["status"],
        }

    def list_item(record: dict) -> dict:
        return {
            **message_response(record),
            "date_sent": record["date_created"],
            "to_number": record["number"],
            "sendblue_number": record["from_number"],
            "service": record["service"],
            "was_downgraded": record["was_downgraded"],
            "opted_out": False,
            "message_type": "message",
            "plan": "dedicated",
            "error_reason": None,
            "error_detail": None,
            "participants": [],
            "group_id": "",
            "group_display_name": None,
        }

    def callback_body(record: dict) -> dict:
        return {
            "accountEmail": ACCOUNT_EMAIL,
            "content": record["content"],
            "is_outbound": True,
            "media_url": record["media_url"],
            "status": record["status"],
            "error_code": record.get("error_code"),
            "error_message": record.get("error_message"),
            "error_reason": None,
            "error_detail": None,
            "message_handle": record["handle"],
            "date_sent": record["date_created"],
            "date_updated": record["date_updated"],
            "from_number": record["from_number"],
            "number": record["number"],
            "to_number": record["number"],
            "was_downgraded": record["was_downgraded"],
            "plan": "dedicated",
            "message_type": "message",
            "group_id": "",
            "participants": [],
            "send_style": record["send_style"],
            "opted_out": False,
            "sendblue_number": record["from_number"],
            "service": record["service"],
            "group_display_name": None,
        }

    def callback_builder(record: dict, status: str, error_code: int | None = None, downgraded: bool = False):
        def build() -> dict:
            record["status"] = status
            record["date_updated"] = _now()
            if downgraded:
                record["was_downgraded"] = True
                record["service"] = "SMS"
            if error_code:
                record["error_code"] = error_code
                record["error_message"] = "Message failed to send" if error_code == 10001 else "Error"
            if not record.get("status_callback"):
                return {}
            secret = signing_secret(record["key_id"])
            url, headers = split_url_credentials(record["status_callback"])  # Basic credentials in the URL
            return {
                "url": url,
                "method": "POST",
                "json": callback_body(record),
                "headers": {**headers, **({"sb-signing-secret": secret} if secret else {})},
            }

        return build

    async def send(request: web.Request) -> web.StreamResponse:
        await sandbox.delay()
        kid = key_id(request)
        if kid is None:
            return unauthorized()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 4000, "Validation error: the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, 4000, "Validation error: the body must be a JSON object")
        number, line = str(body.get("number") or ""), str(body.get("from_number") or "")
        if not E164.match(number):
            return _error(400, 4000, f"Validation error: number {number!r} is not a valid E.164 phone number")
        if not E164.match(line):
            return _error(400, 4000, "Validation error: from_number must be one of your Sendblue lines (E.164)")
        content, media = body.get("content") or "", body.get("media_url") or ""
        if not content and not media:
            return _error(400, 4000, "Validation error: content or media_url is required")
        if len(content) >= MAX_CONTENT:
            return _error(400, 4000, f"Validation error: content must be shorter than {MAX_CONTENT} characters")
        if media and (not isinstance(media, str) or not media.startswith("http")):
            return _error(400, 4000, "Validation error: media_url must be one public URL")
        style = body.get("send_style")
        if style and style not in SEND_STYLES:
            return _error(400, 4000, f"Validation error: unknown send_style {style!r}")
        sender_key = f"{kid}:{line}"
        fault, retry_after = sandbox.fault(CODE, sender_key)
        if fault == "5xx":
            return _error(500, 5000, "Internal error")
        if fault == "429":
            return _error(429, 4001, "Rate limit exceeded", headers=sandbox.retry_after_headers(retry_after))
        now = _now()
        record = {
            "handle": str(uuid.uuid4()).upper(),
            "key_id": kid,
            "number": number,
            "from_number": line,
            "content": content,
            "media_url": media,
            "send_style": style or None,
            "status_callback": body.get("status_callback") or "",
            "status": "QUEUED",
            "service": "iMessage",
            "was_downgraded": False,
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
        }
        store()[record["handle"]] = record
        accepted = sandbox.ledger.accept(CODE, sender_key, number, record["status_callback"] or content, content,
                                         record["handle"])
        outcome = sandbox.outcome(number, accepted)
        steps = [callback_builder(record, "QUEUED")]
        if outcome == "failed":
            steps.append(callback_builder(record, "ERROR", 10001))
        elif outcome == "downgraded":
            steps.append(callback_builder(record, "SENT", downgraded=True))
        else:
            steps.append(callback_builder(record, "SENT"))
            steps.append(callback_builder(record, "DELIVERED") if outcome == "delivered"
                         else callback_builder(record, "ERROR", 10001))
        sandbox.post_callbacks(steps)
        if fault == "ambiguous":
            sandbox.ledger.counts["ambiguous"] += 1
            return await sandbox.drop_connection(request)
        return web.json_response(message_response(record), status=200)

    async def status(request: web.Request) -> web.Response:
        await sandbox.delay()
        kid = key_id(request)
        if kid is None:
            return unauthorized()
        record = store().get(request.query.get("handle", ""))
        if record is None or record["key_id"] != kid:
            return _error(404, None, "Message not found")
        return web.json_response(message_response(record))

    async def list_messages(request: web.Request) -> web.Response:
        await sandbox.delay()
        kid = key_id(request)
        if kid is None:
            return unauthorized()
        q = request.query
        try:
            limit = min(100, max(1, int(q.get("limit", 50))))
            offset = max(0, int(q.get("offset", 0)))
        except ValueError:
            return _error(400, 4000, "Validation error: limit and offset must be numbers")
        rows = [list_item(r) for r in store().values() if r["key_id"] == kid]
        if q.get("is_outbound") == "false":
            rows = []
        for name in ("status", "service", "sendblue_number", "from_number", "to_number", "number"):
            if q.get(name):
                rows = [r for r in rows if r.get(name) == q[name]]
        for bound, test in (("gte", str.__ge__), ("lte", str.__le__)):
            value = q.get(f"created_at_{bound}")
            if value:
                try:
                    limit_at = datetime.fromisoformat(value).astimezone(UTC)
                except ValueError:
                    return _error(400, 4000, f"Validation error: created_at_{bound} must be ISO 8601")
                rows = [r for r in rows if test(r["date_sent"], _iso(limit_at))]
        key = {"createdAt": "date_sent", "updatedAt": "date_updated", "sentAt": "date_sent"}.get(
            q.get("order_by", "createdAt"), "date_sent")
        rows.sort(key=lambda r: r[key], reverse=q.get("order_direction", "desc") == "desc")
        page = rows[offset: offset + limit]
        return web.json_response({
            "status": "OK",
            "data": page,
            "pagination": {"total": len(rows), "limit": limit, "offset": offset,
                           "hasMore": offset + limit < len(rows)},
        })

    async def retrieve(request: web.Request) -> web.Response:
        await sandbox.delay()
        kid = key_id(request)
        if kid is None:
            return unauthorized()
        record = store().get(request.match_info["message_id"])
        if record is None or record["key_id"] != kid:
            return _error(404, None, "Message not found")
        return web.json_response({"status": "OK", "data": list_item(record)})

    async def webhooks(request: web.Request) -> web.Response:
        await sandbox.delay()
        kid = key_id(request)
        if kid is None:
            return unauthorized()
        settings = account(kid)
        if request.method != "GET":
            data = await request.json() if request.can_read_body else {}
            kind = data.get("type", "receive")
            if kind not in WEBHOOK_TYPES:
                return _error(400, 4000, f"Validation error: unknown webhook type {kind!r}")
            given = data.get("webhooks") or []
            if request.method == "PUT":
                settings["webhooks"][kind] = list(given)
            elif request.method == "POST":
                settings["webhooks"][kind].extend(given)
            else:  # DELETE
                urls = {w["url"] if isinstance(w, dict) else w for w in given}
                settings["webhooks"][kind] = [
                    w for w in settings["webhooks"][kind] if (w["url"] if isinstance(w, dict) else w) not in urls
                ]
            if "globalSecret" in data:
                settings["globalSecret"] = data["globalSecret"] or None
        return web.json_response({"status": "OK", "webhooks": settings["webhooks"],
                                  "globalSecret": settings["globalSecret"]})

    async def inbound(asked: Inbound) -> tuple[str, str, bool]:
        if len(asked.media) > 1:
            raise InboundError("Sendblue's media_url carries one URL")
        handle = str(uuid.uuid4()).upper()
        if not asked.url:
            return handle, "message_handle", False
        callback = inbound_callback(asked, handle, asked.secret("signing_secret")
                                    or signing_secret(asked.secret("api_key_id")))
        sandbox.post_callbacks([lambda: callback])
        return handle, "message_handle", True

    async def force(handle: str, data: dict) -> dict:
        record = store()[handle]
        code = data.get("error_code")
        sandbox.post_callbacks([callback_builder(record, data["status"], int(code) if code else None,
                                                 downgraded=bool(data.get("was_downgraded")))])
        return {"queued": True}

    sandbox.inbound_handlers[CODE] = inbound
    sandbox.force_handlers[CODE] = force
    app.router.add_post("/api/send-message", send)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/v2/messages", list_messages)
    app.router.add_get("/api/v2/messages/{message_id}", retrieve)
    for method in ("GET", "POST", "PUT", "DELETE"):
        app.router.add_route(method, "/api/account/webhooks", webhooks)
