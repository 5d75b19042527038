"""The error causes: one vocabulary for why a provider refused or failed a message, whichever provider it was.

Each provider's documented error codes map to one of these in ``messaging/providers/codes/<provider>.py``; the
causes, and every code's mapping, are described in docs/providers.md, Error causes. A cause is written for staff:
a short label for tables, one sentence on what happened, one on what they can do.

``UNKNOWN`` is the cause of a code a provider documents as an unknown error, of a code it does not document, and
of anything that is not a cause code. Its value equals the normalized status ``unknown`` on purpose (both mean
"we cannot tell"); they are different vocabularies, so the constants are reached as ``causes.UNKNOWN``.
"""

from __future__ import annotations

from dataclasses import dataclass

INVALID_NUMBER = "invalid_number"
NOT_SMS_CAPABLE = "not_sms_capable"
OPTED_OUT = "opted_out"
CARRIER_FILTERED = "carrier_filtered"
RATE_LIMITED = "rate_limited"
ACCOUNT = "account"
CONTENT = "content"
EXPIRED = "expired"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Cause:
    """One cause: ``label`` is a short title for tables, ``explanation`` says in plain words what happened and
    ``advice`` what staff can do about it (one sentence each)."""

    code: str
    label: str
    explanation: str
    advice: str


@dataclass(frozen=True)
class ErrorCode:
    """One entry of a provider's error table: our ``cause`` and the provider's documented ``meaning``."""

    cause: str
    meaning: str


CAUSES: dict[str, Cause] = {
    cause.code: cause
    for cause in (
        Cause(
            INVALID_NUMBER,
            "Invalid number",
            "The number does not exist, is no longer in service, or cannot be used as a destination.",
            "Correct the number or remove the contact: sending to it again will fail the same way.",
        ),
        Cause(
            NOT_SMS_CAPABLE,
            "Not SMS-capable",
            "The number is a landline or another line that cannot receive text messages.",
            "Ask the contact for a mobile number or reach them another way; do not send to this number again.",
        ),
        Cause(
            OPTED_OUT,
            "Opted out",
            "The recipient asked not to receive messages from this sender, for example by replying STOP.",
            "Do not message this number again unless the recipient opts back in themselves.",
        ),
        Cause(
            CARRIER_FILTERED,
            "Carrier filtered",
            "The recipient's carrier, or the provider's own filter, blocked the message, usually as suspected "
            "spam.",
            "Review the wording and links and check the sender's registration with the provider before sending "
            "more like it.",
        ),
        Cause(
            RATE_LIMITED,
            "Rate limited",
            "The provider refused the message because we sent faster than the sender's or the account's limit "
            "allows, or its queue was full.",
            "Nothing is wrong with the message: send it again later, and lower the sender's pace if this keeps "
            "happening.",
        ),
        Cause(
            ACCOUNT,
            "Account or configuration",
            "The provider refused the request because of our account or sender set-up: credentials, "
            "permissions, or a sender number we may not use for this destination.",
            "Ask an administrator to check the sender's credentials and number with the provider; sending again "
            "will fail until that is fixed.",
        ),
        Cause(
            CONTENT,
            "Content refused",
            "The message itself was refused: too long, incomplete, or with media that is too large or of a kind "
            "the provider does not take.",
            "Shorten or correct the text or its media, then send it again.",
        ),
        Cause(
            EXPIRED,
            "Expired",
            "The message waited in the provider's queue longer than it may and was dropped without being "
            "delivered.",
            "Send it again if it is still timely; if many expire, lower the campaign's pace.",
        ),
        Cause(
            UNREACHABLE,
            "Temporarily unreachable",
            "The recipient's phone or network, or the provider itself, could not take the message at the time.",
            "Try again later; if the same number keeps failing, treat it as invalid.",
        ),
        Cause(
            UNKNOWN,
            "Unknown",
            "The provider reported an error without saying why, or with a code we do not know.",
            "Read the provider's own error text in the message history, and ask the provider's support if it "
            "keeps happening.",
        ),
    )
}

CAUSE_CHOICES: list[tuple[str, str]] = [(cause.code, cause.label) for cause in CAUSES.values()]


def cause_info(code: str | None) -> Cause:
    """The cause named by ``code``; the unknown cause for anything else (never raises)."""
    if isinstance(code, str) and code in CAUSES:
        return CAUSES[code]
    return CAUSES[UNKNOWN]
