"""Bandwidth v1's error codes: the delivery codes of message events and records (``deliveryCode``, numeric) and
the ``code`` of REST error bodies ``{"category", "code", "message", "details"}`` (slugs); docs/providers.md,
Bandwidth v1: Errors, and Error causes. The two kinds never collide (numbers against words), so one table holds
both.

Delivery code ``0`` ("Message delivered to carrier") is not an error and is left out: ``codes.error_cause``
takes it, like every "no error" spelling, as no error.

The v2 API's codes (``4720``, ``4750``...) belong to another API and are not here.
"""

from __future__ import annotations

from ..base import ErrorCode
from ..base.causes import (
    ACCOUNT,
    CARRIER_FILTERED,
    CONTENT,
    EXPIRED,
    INVALID_NUMBER,
    NOT_SMS_CAPABLE,
    OPTED_OUT,
    RATE_LIMITED,
    UNKNOWN,
    UNREACHABLE,
)

ERRORS: dict[str, ErrorCode] = {
    # ---- delivery codes ----
    # Only in an older rendering of the table.
    "100": ErrorCode(UNREACHABLE, "Message not delivered to carrier"),
    "187": ErrorCode(CARRIER_FILTERED, "Spam detected (statistical)"),
    "188": ErrorCode(CARRIER_FILTERED, "Spam detected (keyword)"),
    "189": ErrorCode(CARRIER_FILTERED, "Spam detected"),
    # A messaging loop was detected and the message stopped: taken as a filter's doing, as Plivo's 60.
    "482": ErrorCode(CARRIER_FILTERED, "Loop detected"),
    # The destination carrier's queue, not ours: temporary, unrelated to our pace.
    "600": ErrorCode(UNREACHABLE, "Destination carrier queue full"),
    # The documentation says "submit_sm or submit_multi failed" (the carrier-side submission).
    "610": ErrorCode(UNREACHABLE, "Message submission failed"),
    "620": ErrorCode(UNREACHABLE, "Destination application error"),
    # The documentation says "NACK", a negative acknowledgement without a reason.
    "630": ErrorCode(UNREACHABLE, "Message not acknowledged"),
    "650": ErrorCode(UNREACHABLE, "Destination failure"),
    # Uncertain: v1 gives no detail. Taken to mean the destination does not take this kind of message.
    "700": ErrorCode(NOT_SMS_CAPABLE, "Invalid service type"),
    "720": ErrorCode(INVALID_NUMBER, "Invalid destination address"),
    # Our sender (`from`) is not valid: our configuration.
    "740": ErrorCode(ACCOUNT, "Invalid source address"),
    # Refused by the destination carrier without a reason: taken as its filter (our reading).
    "750": ErrorCode(CARRIER_FILTERED, "Destination rejected message"),
    "751": ErrorCode(CONTENT, "Destination rejected message too large"),
    "770": ErrorCode(CARRIER_FILTERED, "Destination rejected due to spam"),
    # An opt-out.
    "775": ErrorCode(OPTED_OUT, "Rejected due to user opt out"),
    "902": ErrorCode(EXPIRED, "Message expired"),
    "999": ErrorCode(UNKNOWN, "Unknown error"),
    # ---- REST error codes ----
    # Category `bad-request`: a property of the message is blank (the documented example of a failed item in a
    # multiple-message send). Which property is in `details`; taken as the message's content.
    "blank-property": ErrorCode(CONTENT, "A required property is blank"),
    # HTTP 403, category `limit`. Past the default 1 message per second, account-wide or per number. The
    # meanings of the -overall, -per-tn and multi-message codes are read from their names (uncertain).
    "message-rate-limit": ErrorCode(RATE_LIMITED, "Message rate limit exceeded"),
    "message-rate-limit-overall": ErrorCode(RATE_LIMITED, "Account-wide message rate limit exceeded"),
    "message-rate-limit-per-tn": ErrorCode(RATE_LIMITED, "Per-number message rate limit exceeded"),
    "multi-message-limit": ErrorCode(RATE_LIMITED, "Multiple-message request limit exceeded"),
    # HTTP 400: the queue is full, the message would wait longer than allowed.
    "message-delay-limit": ErrorCode(RATE_LIMITED, "Message queue full: the delay limit would be exceeded"),
}
