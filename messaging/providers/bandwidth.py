"""Bandwidth v1 ("Catapult") messaging: single and bulk send, message resource, message events.

The facts relied on here, and what is assumed, are in docs/providers.md, Bandwidth v1 (not the v2 API).

Documented: Basic auth api_token:api_secret with the user id in paths; POST /v1/users/{userId}/messages with a JSON
object -> 201, empty body, Location ending in the message id; the same URL with a JSON array of at most 50 -> 202
with an aligned array of {"result": "accepted", "location"} or {"result": "error", "error": {category, code,
message, details}}; the send fields (from, to, text <= 2048, media, receiptRequested none|all|error which may not
be combined with media, callbackUrl, callbackHttpMethod, tag); error bodies {category, code, message, details}; rate
limits answered 403 with category "limit" (message-rate-limit, -overall, -per-tn, multi-message-limit) and 400
message-delay-limit; GET of one message and the list filters from, to, fromDateTime, toDateTime, direction, size;
the message event fields and the states queued / sending / sent / error / received with deliveryState waiting /
delivered / not-delivered and the delivery code table.

Assumed: no Retry-After is documented on a rate-limit error, so we wait 1 s (the documented default rate is
1 message per second) unless the answer carries one; the error code for an invalid ``to`` is not documented, so
an error that names the ``to`` property is taken as the recipient's fault. Callback security: Bandwidth v1 signs
nothing, so the unguessable sender uuid in our callback URL is the credential; optional HTTP Basic credentials
(the sender option ``callback_username`` and the encrypted ``Sender.callback_password``) are embedded in the
callbackUrl (https://user:pass@host/..., the only mechanism the documentation offers) and required back on every
callback.

Inbound messages (the application's callback): the same event with ``direction`` "in" and ``state`` "received";
``from`` wrote it to ``to`` (our number), ``text`` its text, ``media`` its media URLs (MMS).

Reconciliation (``find``): the list filtered by from, to, direction=out and the window (fromDateTime /
toDateTime), matched on ``tag`` (our message id) plus to, from and ``time``; pages are followed through the
``Link: rel="next"`` header (how v1 lists page, assumed). A full page with no next link, more pages than the cap,
or an answer that is not a list is inconclusive, never "not sent".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .base import (
    DELIVERED,
    FAILED,
    QUEUED,
    RECEIVED,
    SENDING,
    SENT,
    UNDELIVERED,
    AmbiguousError,
    BasicAuthCallbackProvider,
    CallbackRequest,
    HttpCall,
    LookupInconclusiveError,
    OutboundMessage,
    PermanentError,
    ProviderError,
    SendResult,
    StatusEvent,
    callback_items,
    clean_error_code,
    first_of,
    in_window,
    lookup_event_id,
    our_message_id,
    parse_datetime_utc,
    string_values,
    transient_for,
)
from .codes import error_meaning

RATE_LIMIT_CODES = {
    "message-rate-limit",
    "message-rate-limit-overall",
    "message-rate-limit-per-tn",
    "multi-message-limit",
    "message-delay-limit",  # queue full: try again later
}
DEFAULT_RETRY_AFTER = 1.0
FIND_PAGE_SIZE = 1000  # the documented maximum
FIND_MAX_PAGES = 10



def _id_from_location(location: str) -> str:
    return str(location or "").rstrip("/").rpartition("/")[2]


def _next_link(header: str) -> str:
    """The URL of a ``Link`` header's rel="next" part (how the v1 list pages), or ""."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return target.strip().strip("<>")
    return ""


class BandwidthProvider(BasicAuthCallbackProvider):
    code = "bandwidth"
    name = "Bandwidth"
    default_base_url = "https://api.catapult.inetwork.com"
    credential_keys = ("user_id", "api_token", "api_secret")
    # state values, then deliveryState values (a callback's raw status is its deliveryState once it has one).
    status_map = {
        "queued": QUEUED,
        "sending": SENDING,
        "sent": SENT,
        "error": FAILED,
        "received": RECEIVED,
        "waiting": SENT,
        "delivered": DELIVERED,
        "not-delivered": UNDELIVERED,
    }
    max_body_chars = 2048
    media_types = None  # media count, size and types are not documented for v1
    default_mps = 1.0  # documented default: 1 message per second account-wide and per number
    supports_lookup = True
    bulk_size = 50
    # Delivery code 775 "Rejected due to user opt out" (docs/providers.md, Bandwidth v1: Errors).

    def _auth(self) -> tuple[str, str]:
        return (self.credential("api_token"), self.credential("api_secret"))

    def _messages_path(self) -> str:
        return f"/v1/users/{self.credential('user_id')}/messages"

    # ---- send ----

    def _payload(self, message: OutboundMessage) -> dict:
        payload: dict[str, Any] = {"from": self.sender.address, "to": message.to}
        if message.body:
            payload["text"] = message.body
        if message.media_urls:
            payload["media"] = list(message.media_urls)
            # receiptRequested "can not" be sent together with media: MMS gets no delivery receipt.
        else:
            payload["receiptRequested"] = "all"
        if message.status_callback_url:
            payload["callbackUrl"] = self.callback_url(message.status_callback_url)
            payload["callbackHttpMethod"] = "POST"
        payload["tag"] = str(message.id)
        return payload

    def build_send(self, message: OutboundMessage) -> HttpCall:
        return HttpCall("POST", self._messages_path(), json=self._payload(message), auth=self._auth())

    def parse_send(self, message, status, data, headers) -> SendResult:
        message_id = _id_from_location(headers.get("location", ""))
        if not message_id:
            # Accepted (2xx) but no Location: it may be sent. Reconciliation finds it by tag.
            raise AmbiguousError("Bandwidth answered without a Location header", http_status=status)
        return SendResult(provider_message_id=message_id, status=QUEUED, raw={"location": headers.get("location")},
                          message_id=message.id)

    def build_send_bulk(self, messages: list[OutboundMessage]) -> HttpCall:
        if len(messages) > self.bulk_size:
            raise ValueError(f"Bandwidth takes at most {self.bulk_size} messages per request")
        return HttpCall("POST", self._messages_path(), json=[self._payload(m) for m in messages], auth=self._auth())

    def parse_send_bulk(self, messages, status, data, headers) -> list:
        if not isinstance(data, list) or len(data) != len(messages):
            # We cannot tell which were accepted: all of them may have been.
            return [
                AmbiguousError("Bandwidth's bulk answer does not line up with the request", provider=self.code,
                               http_status=status)
                for _ in messages
            ]
        out: list[SendResult | ProviderError] = []
        for message, item in zip(messages, data, strict=False):
            item = item if isinstance(item, dict) else {}
            message_id = _id_from_location(item.get("location", "")) or str(item.get("id") or "")
            if item.get("result") == "accepted" and message_id:
                out.append(SendResult(provider_message_id=message_id, status=QUEUED, raw=item, message_id=message.id))
                continue
            if item.get("result") == "accepted":
                out.append(AmbiguousError("accepted without a location", provider=self.code, http_status=status))
                continue
            error = self._classify(None, item.get("error") if isinstance(item.get("error"), dict) else {}, {})
            out.append(self.with_context(error, item))
        return out

    def error_text(self, data: Any) -> str:
        if isinstance(data, dict) and (data.get("message") or data.get("code")):
            return str(data.get("message") or data.get("code"))
        return super().error_text(data)

    def error_for(self, status, data, headers):
        return self._classify(status, data if isinstance(data, dict) else {}, headers)

    def _classify(self, status: int | None, error: dict, headers: dict) -> ProviderError:
        code = str(error.get("code") or "")
        category = str(error.get("category") or "")
        text = self.error_text(error) if error else (self.error_text(None) if status is None else f"HTTP {status}")
        transient = transient_for(status, text, headers, code=code,
                                  rate_limited=category == "limit" or code in RATE_LIMIT_CODES,
                                  default_retry_after=DEFAULT_RETRY_AFTER)
        if transient is not None:
            return transient
        names = {str(d.get("name", "")).lower() for d in error.get("details") or [] if isinstance(d, dict)}
        lowered = text.lower()
        recipient = "to" in names or "property 'to'" in lowered or "'to'" in lowered
        return PermanentError(text, http_status=status, code=code, recipient_side=recipient)

    # ---- lookup and reconciliation ----

    def build_lookup(self, provider_message_id: str) -> HttpCall:
        return HttpCall("GET", f"{self._messages_path()}/{provider_message_id}", auth=self._auth())

    def parse_lookup(self, data) -> StatusEvent | None:
        if not isinstance(data, dict) or not first_of(data, "id", "messageId"):
            return None
        return self._event(data, source="lookup")

    def find(self, message: OutboundMessage, since: datetime, until: datetime | None = None) -> StatusEvent | None:
        """The message whose ``tag`` is our message id, among this sender's outbound messages to this recipient
        in the window, following the list's ``Link: <...>; rel="next"`` pages (at most FIND_MAX_PAGES)."""
        window_end = until or datetime.now(UTC) + timedelta(hours=1)  # open-ended: a little ahead, for skew
        params = {
            "from": self.sender.address,
            "to": message.to,
            "fromDateTime": since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "toDateTime": window_end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "direction": "out",
            "size": FIND_PAGE_SIZE,
        }

        def matches(item: dict) -> bool:
            if str(item.get("tag") or "") != str(message.id):
                return False
            if item.get("to") and str(item["to"]) != message.to:
                return False
            if item.get("from") and str(item["from"]) != self.sender.address:
                return False
            return not item.get("time") or in_window(parse_datetime_utc(item["time"]), since, until)

        def items(data: Any) -> list | None:
            return data if isinstance(data, list) else None

        def next_call(call: HttpCall, data: Any, headers: dict, rows: list) -> HttpCall | None:
            link = _next_link(headers.get("link", ""))
            if link:
                return HttpCall("GET", link, auth=self._auth())
            if len(rows) >= FIND_PAGE_SIZE:
                # A full page and no link to the next: we cannot know what the rest of the window holds.
                raise LookupInconclusiveError("Bandwidth's list filled a page without a link to the next",
                                              provider=self.code)
            return None

        first = HttpCall("GET", self._messages_path(), params=params, auth=self._auth())
        return self.find_in_pages(first, items=items, matches=matches, next_call=next_call,
                                  max_pages=FIND_MAX_PAGES, unique=False)

    def build_check(self) -> HttpCall:
        return HttpCall("GET", self._messages_path(), params={"size": 1}, auth=self._auth())

    # ---- callbacks (verified by BasicAuthCallbackProvider) ----

    def parse_callback(self, request: CallbackRequest) -> list[StatusEvent]:
        # callbackHttpMethod=GET puts the event's fields in the query string: callback_items reads them too.
        return [self._event(item, source="callback") for item in callback_items(request) if self._message_id(item)]

    # ---- mapping ----

    @staticmethod
    def _message_id(item: dict) -> str:
        return str(first_of(item, "messageId", "id") or _id_from_location(item.get("messageUri", "")))

    def _event(self, item: dict, *, source: str) -> StatusEvent:
        state = str(item.get("state") or "").strip()
        delivery_state = str(item.get("deliveryState") or "").strip()
        inbound = str(item.get("direction") or "").lower() == "in" or state.lower() == "received"
        if inbound:
            raw_status, status = state or "received", RECEIVED
        elif state.lower() in ("error", "queued", "sending") or not delivery_state:
            raw_status, status = state, self.map_status(state)
        else:  # sent (or absent) with a delivery state: the receipt decides
            raw_status, status = delivery_state, self.map_status(delivery_state)
        code = clean_error_code(item.get("deliveryCode"))
        description = str(item.get("deliveryDescription") or "")
        message_id = self._message_id(item)
        # `time` is when the message resource was created, not when this event happened.
        occurred = parse_datetime_utc(item.get("time")) if source == "lookup" or status in (QUEUED, RECEIVED) \
            else datetime.now(UTC)
        return StatusEvent(
            provider_message_id=message_id,
            status=status,
            raw_status=raw_status,
            occurred_at=occurred,
            error_code=code,
            error_message=(description or error_meaning(self.code, code)) if code else "",
            event_id=lookup_event_id(message_id, raw_status) if source == "lookup" else "",
            our_message_id=None if inbound else our_message_id(item.get("tag")),
            # A reply: `from` wrote it to `to` (our number); an outbound message's recipient is its `to`.
            recipient=str(item.get("from" if inbound else "to") or ""),
            direction="inbound" if inbound else "outbound",
            body=str(item.get("text") or "") if inbound else "",
            raw=self.scrub(dict(item)),
            media_urls=string_values(item.get("media")) if inbound else (),
            to_address=str(item.get("to") or "") if inbound else "",
        )
