"""CloudVNO as the emulator plays it (docs/providers.md, CloudVNO).

POST /v1/messages          send (JSON), Bearer API key; 201 with the documented message object
GET  /v1/messages          list, newest first (`limit`, `to`, `from`): not documented, assumed (needs the
                           messages:read scope the authentication page mentions); serves credential checks.
                           A key listed in the `cloudvno_send_only_keys` option has messages:write only: it
                           sends, and the list answers 403 `insufficient_permissions`
Errors: {"error": {"code", "message", "param", "doc_url"}} with the documented codes; 429 bodies add
`retry_after` (seconds); every answer carries X-RateLimit-Limit / -Remaining / -Reset.

Status callbacks (not specified by CloudVNO; Twilio-like, as docs/providers.md assumes): form-encoded POST to
`status_callback` with MessageSid, SmsSid, MessageStatus, SmsStatus, From, To, ApiVersion and, on
failed/undelivered, ErrorCode (the REST error codes) and ErrorMessage. No callback for the initial `queued`
(as Twilio); then `sent` and the final status. Signed `X-CloudVNO-Signature` = hex HMAC-SHA256 over the
callback URL + urlencode(sorted(params)) (no `?`).

Which secret signs is not documented. The emulator signs with the webhook secret registered for the API key
(`POST /sandbox/cloudvno/webhook-secret {"api_key", "webhook_secret"}`); unregistered keys use the sandbox
convention: the API key with `api_key` replaced by `webhook_secret` (test senders' credentials are
`test-api_key-value` / `test-webhook_secret-value`), or the API key itself when it has no `api_key` in it.

Inbound (POST /sandbox/inbound): form-encoded POST with MessageSid, SmsSid, From, To, Body, NumMedia and
MediaUrl0..MediaUrlN-1 (`inbound_callback` builds it), signed the same way with `webhook_secret`, else the secret
the `api_key` signs with. An inbound STOP (or UNSUBSCRIBE ...) marks the pair unsubscribed, with or without a
`url` to post to: later sends answer 422 `unsubscribed`; START lifts it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from .core import Inbound, InboundError, Sandbox

CODE = "cloudvno"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
DOC_URL = "https://cloudvno.com/docs/errors"
UNDELIVERED_CODES = ["carrier_blocked"]
FAILED_CODES = ["number_not_sms_capable", "carrier_blocked"]
ERROR_TEXT = {
    "carrier_blocked": "The carrier blocked this message.",
    "number_not_sms_capable": "The destination number cannot receive SMS.",
    "invalid_phone_number": "The phone number is not valid.",
    "unsubscribed": "The recipient has unsubscribed from messages from this number.",
}
STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"}
START_WORDS = {"start", "unstop", "yes"}
LIMIT_PER_MINUTE = 3000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


def _rate_headers() -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(LIMIT_PER_MINUTE),
        "X-RateLimit-Remaining": str(LIMIT_PER_MINUTE - 1),
        "X-RateLimit-Reset": str(int(time.time()) + 60),
    }


def _error(status: int, code: str, message: str, param: str | None = None, headers: dict | None = None,
           **extra) -> web.Response:
    body = {"error": {"code": code, "message": message, "param": param, "doc_url": f"{DOC_URL}#{code}"}}
    body.update(extra)
    return web.json_response(body, status=status, headers={**_rate_headers(), **(headers or {})})


def sign(secret: str, url: str, params: dict[str, str]) -> str:
    text = url + urlencode(sorted(params.items()))
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def inbound_callback(asked: Inbound, sid: str, secret: str) -> dict:
    """What CloudVNO posts to a number's ``sms_url`` for an inbound message, signed with ``secret``: form fields
    MessageSid (and SmsSid), From, To, Body, NumMedia and MediaUrl0..MediaUrlN-1."""
    params = {"MessageSid": sid, "SmsSid": sid, "From": asked.sender, "To": asked.to, "Body": asked.text,
              "NumMedia": str(len(asked.media))}
    params.update({f"MediaUrl{n}": url for n, url in enumerate(asked.media)})
    return {"url": asked.url, "method": "POST", "data": params,
            "headers": {"X-CloudVNO-Signature": sign(secret, asked.url, params)}}


def setup(app: web.Application, sandbox: Sandbox) -> None:
    def store() -> dict:
        return sandbox.messages[CODE]

    def unsubscribed() -> dict:
        return sandbox.messages[CODE + ":unsubscribed"]  # (our number, their number) -> True; reset with the rest

    def secrets() -> dict:
        return sandbox.messages[CODE + ":webhook-secrets"]  # api key -> registered webhook secret

    def webhook_secret(api_key: str) -> str:
        if api_key in secrets():
            return secrets()[api_key]
        return api_key.replace("api_key", "webhook_secret") if "api_key" in api_key else api_key

    def api_key(request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        key = header[len("Bearer "):].strip()
        if not key or sandbox.is_rejected_secret(key):
            return None
        return key

    def callback_builder(record: dict, state: str, error_code: str = ""):
        def build() -> dict:
            record["status"] = state
            record["date_updated"] = _now()
            if state == "sent":
                record["date_sent"] = record["date_updated"]
            if error_code and state in ("failed", "undelivered"):
                record["error_code"] = error_code  # the message's outcome, whether or not anyone is told
            if not record.get("status_callback"):
                return {}
            params = {
                "MessageSid": record["sid"],
                "SmsSid": record["sid"],
                "AccountSid": record["account_sid"],
                "MessageStatus": state,
                "SmsStatus": state,
                "From": record["from"],
                "To": record["to"],
                "ApiVersion": "v1",
            }
            if error_code and state in ("failed", "undelivered"):
                record["error_code"] = error_code
                params["ErrorCode"] = error_code
                params["ErrorMessage"] = ERROR_TEXT.get(error_code, "Message could not be delivered.")
            url = record["status_callback"]
            return {
                "url": url,
                "method": "POST",
                "data": params,
                "headers": {"X-CloudVNO-Signature": sign(record["secret"], url, params)},
            }

        return build

    def resource(record: dict) -> dict:
        return {
            "sid": record["sid"],
            "status": record["status"],
            "from": record["from"],
            "to": record["to"],
            "body": record["body"],
            "media_url": record["media_url"],
            "direction": "outbound-api",
            "date_created": record["date_created"],
            "date_sent": record.get("date_sent"),
            "price": None,
            "price_unit": "USD",
            "error_code": record.get("error_code") or None,
        }

    async def send(request: web.Request) -> web.StreamResponse:
        await sandbox.delay()
        key = api_key(request)
        if key is None:
            return _error(401, "unauthorized", "Invalid or missing API key.")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_request", "The request body must be JSON.")
        if not isinstance(body, dict):
            return _error(400, "invalid_request", "The request body must be a JSON object.")
        sender, to = str(body.get("from") or ""), str(body.get("to") or "")
        if not E164.match(sender):
            return _error(400, "invalid_phone_number", "The 'from' number must be E.164.", "from")
        if not E164.match(to):
            return _error(400, "invalid_phone_number", f"'{to}' is not a valid E.164 phone number.", "to")
        media = body.get("media_url") or []
        if not isinstance(media, list) or not all(isinstance(m, str) and m.startswith("http") for m in media):
            return _error(400, "invalid_request", "media_url must be an array of URLs.", "media_url")
        text = body.get("body") or ""
        if not text and not media:
            return _error(400, "invalid_request", "body is required unless media_url is provided.", "body")
        validity = body.get("validity_period")
        if validity is not None and (not isinstance(validity, int) or validity <= 0):
            return _error(400, "invalid_request", "validity_period must be a positive integer.", "validity_period")
        if unsubscribed().get((sender, to)):
            return _error(422, "unsubscribed", ERROR_TEXT["unsubscribed"], "to")
        fault, retry_after = sandbox.fault(CODE, f"{key}:{sender}")
        if fault == "5xx":
            return _error(503, "service_unavailable", "The service is temporarily unavailable.")
        if fault == "429":
            wait = max(1, round(retry_after))
            # `retry_after` in the body is documented; a Retry-After header is not (only with the option).
            return _error(429, "rate_limit_exceeded", "Too many requests.", retry_after=wait,
                          headers=sandbox.retry_after_headers(wait))
        record = {
            "sid": _sid(),
            "account_sid": "AC" + hashlib.sha256(key.encode()).hexdigest()[:32],
            "api_key": key,
            "secret": webhook_secret(key),
            "from": sender,
            "to": to,
            "body": text,
            "media_url": media,
            "status": "queued",
            "status_callback": body.get("status_callback") or "",
            "validity_period": validity or 14400,
            "date_created": _now(),
        }
        store()[record["sid"]] = record
        accepted = sandbox.ledger.accept(CODE, f"{key}:{sender}", to, record["status_callback"] or text, text,
                                         record["sid"])
        outcome = sandbox.outcome(to, accepted)
        if outcome == "failed":
            steps = [callback_builder(record, "failed", sandbox.rng.choice(FAILED_CODES))]
        else:
            code = sandbox.rng.choice(UNDELIVERED_CODES) if outcome == "undelivered" else ""
            steps = [callback_builder(record, "sent"), callback_builder(record, outcome, code)]
        sandbox.post_callbacks(steps)
        if fault == "ambiguous":
            sandbox.ledger.counts["ambiguous"] += 1
            return await sandbox.drop_connection(request)
        return web.json_response(resource(record), status=201, headers=_rate_headers())

    async def list_messages(request: web.Request) -> web.Response:
        await sandbox.delay()
        key = api_key(request)
        if key is None:
            return _error(401, "unauthorized", "Invalid or missing API key.")
        if key in sandbox.options.cloudvno_send_only_keys:
            return _error(403, "insufficient_permissions", "This API key lacks the messages:read scope.")
        try:
            limit = min(100, max(1, int(request.query.get("limit", 20))))
        except ValueError:
            return _error(400, "invalid_request", "limit must be a number.", "limit")
        rows = [r for r in store().values() if r["api_key"] == key]
        for name in ("to", "from"):
            if request.query.get(name):
                rows = [r for r in rows if r[name] == request.query[name]]
        rows.sort(key=lambda r: r["date_created"], reverse=True)
        return web.json_response({"messages": [resource(r) for r in rows[:limit]]}, headers=_rate_headers())

    async def register_secret(request: web.Request) -> web.Response:
        data = await request.json()
        secrets()[str(data["api_key"])] = str(data["webhook_secret"])
        return web.json_response({"registered": True})

    async def inbound(asked: Inbound) -> tuple[str, str, bool]:
        word = asked.text.strip().lower()
        if word in STOP_WORDS:
            unsubscribed()[(asked.to, asked.sender)] = True
        elif word in START_WORDS:
            unsubscribed().pop((asked.to, asked.sender), None)
        sid = _sid()
        if not asked.url:
            return sid, "sid", False
        secret = asked.secret("webhook_secret") or webhook_secret(asked.secret("api_key"))
        if not secret:
            raise InboundError("webhook_secret (or api_key) is required: CloudVNO signs inbound messages")
        callback = inbound_callback(asked, sid, secret)
        sandbox.post_callbacks([lambda: callback])
        return sid, "sid", True

    async def force(sid: str, data: dict) -> dict:
        record = store()[sid]
        sandbox.post_callbacks([callback_builder(record, data["status"], data.get("error_code", ""))])
        return {"queued": True}

    sandbox.inbound_handlers[CODE] = inbound
    sandbox.force_handlers[CODE] = force
    app.router.add_post("/v1/messages", send)
    app.router.add_get("/v1/messages", list_messages)
    app.router.add_post("/sandbox/cloudvno/webhook-secret", register_secret)
