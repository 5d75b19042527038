"""CloudVNO's error codes, from its errors reference: the ``code`` of a REST error body
``{"error": {"code", "message", "param", "doc_url"}}``; docs/providers.md, CloudVNO: Errors, and Error causes.

CloudVNO documents the codes' names and nothing more, so each meaning is the name in words. Which HTTP status
comes with which code is not documented. Whether status callbacks carry these codes (or numeric ones) is not
documented either: the table is used for both, and a code it does not hold gets the unknown cause.
"""

from __future__ import annotations

from ..base import ErrorCode
from ..base.causes import (
    ACCOUNT,
    CARRIER_FILTERED,
    CONTENT,
    INVALID_NUMBER,
    NOT_SMS_CAPABLE,
    OPTED_OUT,
    RATE_LIMITED,
)

ERRORS: dict[str, ErrorCode] = {
    # Authentication and authorization.
    "unauthorized": ErrorCode(ACCOUNT, "Unauthorized: the API key was not accepted"),
    "api_key_revoked": ErrorCode(ACCOUNT, "The API key has been revoked"),
    "insufficient_permissions": ErrorCode(ACCOUNT, "The API key lacks the permission (scope) needed"),
    # Messaging.
    "invalid_phone_number": ErrorCode(INVALID_NUMBER, "Invalid phone number"),
    # The error's `param` says which number: `to` is the recipient's (this cause); `from` would be our own
    # number, an account matter, which a table entry cannot express (the adapter reads `param`).
    "number_not_sms_capable": ErrorCode(NOT_SMS_CAPABLE, "The number cannot send or receive SMS"),
    # The maximum length is not documented.
    "message_too_long": ErrorCode(CONTENT, "Message too long"),
    "from_number_not_owned": ErrorCode(ACCOUNT, "The sending number does not belong to the account"),
    # The recipient unsubscribed from this sender: an opt-out.
    "unsubscribed": ErrorCode(OPTED_OUT, "The recipient has unsubscribed"),
    "carrier_blocked": ErrorCode(CARRIER_FILTERED, "Blocked by the carrier"),
    # Rate limits: the 429 body also carries `retry_after` (seconds).
    "rate_limit_exceeded": ErrorCode(RATE_LIMITED, "Rate limit exceeded"),
}
