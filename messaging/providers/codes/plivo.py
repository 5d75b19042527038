"""Plivo's message error codes, as they come in status callbacks (``ErrorCode``) and message records
(``error_code``); docs/providers.md, Plivo: Errors, and Error causes.

Plivo's REST answers carry free text (``{"api_id", "error"}``), not a code: a refused request gets its cause from
its HTTP status (``codes.error_cause(..., http_status=...)``).

Plivo's current error page lists more codes (media 130, 140 and 150, dispatch failure 300, 450 and 451,
insufficient credit 900, 10DLC codes 2xxx) whose exact text we could not read: they are left out rather than
guessed, and get the unknown cause until their meaning is documented here.
"""

from __future__ import annotations

from ..base import ErrorCode
from ..base.causes import (
    ACCOUNT,
    CARRIER_FILTERED,
    CONTENT,
    EXPIRED,
    INVALID_NUMBER,
    OPTED_OUT,
    UNKNOWN,
    UNREACHABLE,
)

ERRORS: dict[str, ErrorCode] = {
    # The carrier refused the content: blank, invalid or too long for it.
    "10": ErrorCode(CONTENT, "Invalid message"),
    # A carrier's network error: temporary.
    "20": ErrorCode(UNREACHABLE, "Network error"),
    # A carrier's spam filter, including filtering of A2P volume on long codes.
    "30": ErrorCode(CARRIER_FILTERED, "Spam detected"),
    # Our sender (`src`) is not valid: our configuration.
    "40": ErrorCode(ACCOUNT, "Invalid source number"),
    # Plivo's description includes landlines, which it does not tell apart: we call it an invalid number.
    "50": ErrorCode(INVALID_NUMBER, "Invalid destination number"),
    # A messaging loop was detected and the message stopped: taken as a filter's doing (our reading, Plivo gives
    # no more). The adapter counts it as the recipient's side: another sender would not help.
    "60": ErrorCode(CARRIER_FILTERED, "Loop detected"),
    # Permanently unavailable: a number no longer in service.
    "70": ErrorCode(INVALID_NUMBER, "Destination permanently unavailable"),
    "80": ErrorCode(UNREACHABLE, "Destination temporarily unavailable"),
    # Uncertain: Plivo found no route to the destination at the time; whether a later try succeeds is not
    # documented ("maybe" in our notes), so it is taken as temporary.
    "90": ErrorCode(UNREACHABLE, "No route available"),
    "100": ErrorCode(CARRIER_FILTERED, "Prohibited by carrier"),
    "110": ErrorCode(CONTENT, "Message too long"),
    # The whole MMS is over 5 MB.
    "120": ErrorCode(CONTENT, "MMS too large"),
    # The recipient replied STOP to this sender: an opt-out.
    "200": ErrorCode(OPTED_OUT, "Source number blocked by STOP from destination"),
    # A toll-free sender may not reach Canadian numbers: another sender would.
    "201": ErrorCode(ACCOUNT, "US toll-free to Canadian destination blocked"),
    # Still queued after 3 hours: failed, and not charged.
    "420": ErrorCode(EXPIRED, "Message expired in queue"),
    "1000": ErrorCode(UNKNOWN, "Unknown error"),
}
