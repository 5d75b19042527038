"""Fone Dynamics: REST API v2 (Properties/{PropertySid}/Messages), delivery-receipt webhooks.

The facts relied on here, and what is assumed, are in docs/providers.md, Fone Dynamics. In short:

- Documented: Basic auth AccountSid:Token, the send fields (From as E.164, alphanumeric or blank for a leased
  sender; To; Text; DeliveryReceipt; DeliveryReceiptWebhookUri/-Method; ExternalId), the 200 answer
  {"Message": {...MessageSid...}}, GET /v2/Messages/{MessageSid}, the status enum
  Processing/Submitted/Delivered/Failed/Received and Direction Transmit/Receive.
- Assumed: the delivery-receipt webhook body is the Message resource, as JSON (maybe wrapped in {"Message": ...})
  or as form/query fields, parsed tolerantly; ``Failed`` with a ``Submitted`` time means the carrier refused it
  (undelivered), without one it never left (failed): a heuristic; the 400 body is ServiceStack's
  {"ResponseStatus": {"ErrorCode", "Message", "Errors": [{"FieldName", ...}]}} and, the error-code list being
  unknown, an error naming the ``To`` field is the recipient's fault; the list endpoint answers
  {"Messages": [...]} and echoes ``ExternalId``, which is how an ambiguous send is found again (matched on
  ExternalId, To and the time window); an answer of another shape, or more pages than the cap, is inconclusive,
  never "not sent".
- Leased sender (``From`` blank): replies to the message reach us only through the lease's ``WebhookUri``, so it
  is set to this sender's inbound webhook (with the callback Basic credentials when configured) and
  ``WebhookMethod`` to POST; the reply body is assumed to be the Message resource with ``Direction: Receive``:
  ``From`` wrote it to ``To`` (our number), ``Text`` its text. The API documents SMS only: a reply has no media.
- Rate limits are not documented: 429 and 5xx are transient like everywhere else.
- Callback Basic auth: nothing is signed; the unguessable sender uuid in our URL is the credential. With a
  ``callback_username`` option and an (encrypted) ``callback_password``, both are embedded in the webhook URIs
  (https://user:pass@host/...) and required back as HTTP Basic auth; whether FD honours credentials in a URI is
  unverified.
- MMS: the API documents SMS only, so media is refused before queueing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .base import (
    DELIVERED,
    FAILED,
    QUEUED,
    RECEIVED,
    SENT,
    UNDELIVERED,
    AmbiguousError,
    BasicAuthCallbackProvider,
    CallbackRequest,
    HttpCall,
    OutboundMessage,
    PermanentError,
    SendResult,
    StatusEvent,
    callback_items,
    clean_error_code,
    first_of,
    in_window,
    lookup_event_id,
    our_message_id,
    parse_datetime_utc,
    transient_for,
)

FIND_PAGE = 100
FIND_MAX_PAGES = 20


def _resource(data: Any) -> dict:
    """The Message resource, whether wrapped in {"Message": ...} or not."""
    if isinstance(data, dict) and isinstance(data.get("Message"), dict):
        return data["Message"]
    return data if isinstance(data, dict) else {}


def _is_set(value: Any) -> bool:
    """A timestamp field is set when it is present and not empty / zero / null."""
    return value not in (None, "", 0, "0", "null")


class FonedynamicsProvider(BasicAuthCallbackProvider):
    code = "fonedynamics"
    name = "Fone Dynamics"
    default_base_url = "https://api.fonedynamics.com"
    credential_keys = ("account_sid", "token", "property_sid")
    # Lower-case keys: map_status falls back to the lower-cased value, so "Delivered" and "delivered" both map.
    status_map = {
        "processing": QUEUED,
        "submitted": SENT,
        "delivered": DELIVERED,
        "failed": FAILED,  # refined to UNDELIVERED when Submitted is set (see _status)
        "received": RECEIVED,
    }
    # Body length and segment rules are not documented; media is not documented at all (SMS only).
    max_body_chars = None
    media_allowed = False
    max_media = 0
    media_types = None  # SMS only: any media is refused
    # No rate limit is documented: start at a conservative 1 message per second; staff can raise it per sender.
    default_mps = 1.0
    supports_lookup = True

    def _auth(self) -> tuple[str, str]:
        return (self.credential("account_sid"), self.credential("token"))

    def _property_path(self) -> str:
        return f"/v2/Properties/{self.credential('property_sid')}/Messages"

    # ---- send ----

    def build_send(self, message: OutboundMessage) -> HttpCall:
        payload: dict[str, Any] = {"To": message.to, "Text": message.body}
        leased = not self.sender.address.strip()
        if not leased:
            payload["From"] = self.sender.address.strip()
        # else: From omitted -> Fone Dynamics sends from a leased number (docs/providers.md, Fone Dynamics: Sending)
        payload["DeliveryReceipt"] = True
        if message.status_callback_url:
            payload["DeliveryReceiptWebhookUri"] = self.callback_url(message.status_callback_url)
            payload["DeliveryReceiptWebhookMethod"] = "POST"
        if leased and self.sender.inbound_url:
            # A reply to a leased number is only forwarded where the message says: without these, it is lost.
            payload["WebhookUri"] = self.callback_url(self.sender.inbound_url)
            payload["WebhookMethod"] = "POST"
        payload["ExternalId"] = str(message.id)
        return HttpCall("POST", self._property_path(), json=payload, auth=self._auth())

    def parse_send(self, message, status, data, headers) -> SendResult:
        resource = _resource(data)
        sid = resource.get("MessageSid")
        if not sid:
            # A 200 without an id: it may well have been accepted. Reconciliation finds it by ExternalId.
            raise AmbiguousError("Fone Dynamics answered without a MessageSid", http_status=status)
        raw_status = str(resource.get("Status") or "")
        normalized = self._status(resource) if raw_status else QUEUED
        return SendResult(provider_message_id=str(sid), status=normalized, raw=self.scrub(data))

    def error_text(self, data: Any) -> str:
        status = data.get("ResponseStatus") if isinstance(data, dict) else None
        if isinstance(status, dict):
            text = str(status.get("Message") or status.get("ErrorCode") or "")
            details = [
                f"{e.get('FieldName')}: {e.get('Message') or e.get('ErrorCode')}"
                for e in status.get("Errors") or []
                if isinstance(e, dict) and e.get("FieldName")
            ]
            return "; ".join([text, *details]) if details else (text or "request refused")
        return super().error_text(data)

    def error_for(self, status, data, headers):
        text = self.error_text(data)
        response_status = data.get("ResponseStatus") if isinstance(data, dict) else None
        response_status = response_status if isinstance(response_status, dict) else {}
        code = str(response_status.get("ErrorCode") or "")
        transient = transient_for(status, text, headers, code=code, default_retry_after=1.0)
        if transient is not None:
            return transient
        fields = {str(e.get("FieldName", "")).lower() for e in response_status.get("Errors") or [] if isinstance(e, dict)}
        recipient = status == 400 and ("to" in fields or "'to'" in text.lower() or "recipient" in text.lower())
        return PermanentError(text, http_status=status, code=code, recipient_side=recipient)

    # ---- lookup and reconciliation ----

    def build_lookup(self, provider_message_id: str) -> HttpCall:
        return HttpCall("GET", f"/v2/Messages/{provider_message_id}", auth=self._auth())

    def parse_lookup(self, data) -> StatusEvent | None:
        resource = _resource(data)
        if not resource.get("MessageSid"):
            return None
        return self._event(resource, source="lookup")

    def find(self, message: OutboundMessage, since: datetime, until: datetime | None = None) -> StatusEvent | None:
        """Page through the property's messages of the window for the one carrying our ExternalId."""
        window_end = until or datetime.now(UTC)
        params = {
            "Date_From": int(since.timestamp()),
            "Date_To": int(window_end.timestamp()) + (0 if until else 3600),  # open-ended: a little ahead, for skew
            "Results_Count": FIND_PAGE,
            "Results_Skip": 0,
        }

        def matches(item: dict) -> bool:
            resource = _resource(item)
            if str(resource.get("ExternalId") or "") != str(message.id) or not resource.get("MessageSid"):
                return False
            if resource.get("To") and str(resource["To"]) != message.to:
                return False
            created = resource.get("Created")
            return not _is_set(created) or in_window(parse_datetime_utc(created), since, until)

        def items(data: Any) -> list | None:
            return _list_items(data)

        def next_call(call: HttpCall, data: Any, headers: dict, rows: list) -> HttpCall | None:
            if len(rows) < FIND_PAGE:
                return None  # a short page: the window is exhausted
            skip = int((call.params or {}).get("Results_Skip", 0)) + FIND_PAGE
            return replace(call, params={**(call.params or {}), "Results_Skip": skip})

        first = HttpCall("GET", self._property_path(), params=params, auth=self._auth())
        return self.find_in_pages(first, items=items, matches=matches, next_call=next_call,
                                  max_pages=FIND_MAX_PAGES, unique=False)

    def build_check(self) -> HttpCall:
        return HttpCall("GET", self._property_path(), params={"Results_Count": 1}, auth=self._auth())

    # ---- callbacks (verified by BasicAuthCallbackProvider) ----

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        resources = [_resource(item) for item in callback_items(request)]
        return [self._event(resource, source="callback") for resource in resources if resource.get("MessageSid")]

    # ---- mapping ----

    def _status(self, resource: dict) -> str:
        raw = str(resource.get("Status") or "").strip()
        direction = str(resource.get("Direction") or "").strip().lower()
        if direction == "receive" and raw.lower() in ("", "received"):
            return RECEIVED
        normalized = self.map_status(raw)
        if normalized == FAILED and _is_set(resource.get("Submitted")):
            return UNDELIVERED  # it reached the SMSC, then failed: a carrier refusal (assumed, a heuristic)
        return normalized

    def _event(self, resource: dict, *, source: str) -> StatusEvent:
        status = self._status(resource)
        raw_status = str(resource.get("Status") or ("Received" if status == RECEIVED else ""))
        inbound = status == RECEIVED
        code = clean_error_code(resource.get("ErrorCode"))
        when = first_of(resource, "Delivered", "Received", "Submitted", "Created", default=None)
        if when in (0, "0"):
            when = None
        sid = str(resource["MessageSid"])
        return StatusEvent(
            provider_message_id=sid,
            status=status,
            raw_status=raw_status,
            occurred_at=parse_datetime_utc(when),
            error_code=code,
            error_message=str(first_of(resource, "ErrorMessage", "ErrorDescription")) if code else "",
            event_id=lookup_event_id(sid, raw_status) if source == "lookup" else "",
            our_message_id=None if inbound else our_message_id(resource.get("ExternalId")),
            # A reply: `From` wrote it to `To` (our number); SMS only, so it has no media.
            recipient=str(resource.get("From" if inbound else "To") or ""),
            direction="inbound" if inbound else "outbound",
            body=str(resource.get("Text") or "") if inbound else "",
            raw=self.scrub(dict(resource)),
            to_address=str(resource.get("To") or "") if inbound else "",
        )


def _list_items(data: Any) -> list | None:
    """The resources of a list answer; None when the answer is not a list we can read (never "no messages")."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("Messages", "Results", "Items"):
            if isinstance(data.get(key), list):
                return data[key]
    return None
