"""Sendblue's error codes, in send answers, status lookups and status callbacks (``error_code``, a number;
"any code besides 0 or null is a failure"); docs/providers.md, Sendblue: Errors, and Error causes.

Opt-outs have no numeric code: Sendblue reports them with the ``opted_out: true`` field, whatever ``error_code``
says. The adapter reports such an answer or callback with the code ``opted_out`` (below), so the opt-out is acted on
like any other provider's opt-out code.
Third-party code also mentions ``5509`` and ``SMS_LIMIT_REACHED``; Sendblue documents neither, so they are left
out and get the unknown cause.
"""

from __future__ import annotations

from ..base import ErrorCode
from ..base.causes import CONTENT, INVALID_NUMBER, OPTED_OUT, RATE_LIMITED, UNREACHABLE

ERRORS: dict[str, ErrorCode] = {
    # The request failed validation; only `error_message` says which field. Taken as the message's content
    # (text, media URL). The adapter also reads the text and takes it as the recipient's fault when it names
    # the number, which a table entry cannot express.
    "4000": ErrorCode(CONTENT, "Validation error"),
    "4001": ErrorCode(RATE_LIMITED, "Rate limit exceeded"),
    # A number that may not be messaged at all, such as 911. Not an opt-out.
    "4002": ErrorCode(INVALID_NUMBER, "Blacklisted number"),
    "5000": ErrorCode(UNREACHABLE, "Internal error"),
    "5003": ErrorCode(RATE_LIMITED, "Server rate exceeded"),
    # No reason is given. Taken as a provider-side failure worth trying later; a send answered with it is not
    # retried automatically (the adapter makes it a permanent error), so trying again is a person's decision.
    "10001": ErrorCode(UNREACHABLE, "Message failed to send"),
    # Sendblue may have the message: the adapter treats the outcome as ambiguous and looks for the message
    # before anything is sent again.
    "10002": ErrorCode(UNREACHABLE, "Failed to resolve message status"),
    # Not a Sendblue code: the adapter's name for an answer or callback carrying `opted_out: true`.
    "opted_out": ErrorCode(OPTED_OUT, "The recipient opted out"),
}
