"""Phone numbers as the rest of the code keeps them: E.164, parsed by phonenumbers."""

from __future__ import annotations

import phonenumbers
from django.conf import settings


def phone_e164(value: str, region: str | None = None) -> str:
    """``value`` in E.164 (``+14155550100``), read with ``region`` (default: DEFAULT_REGION) when it has no
    country code. Raises ValueError, in plain words, when it is not a valid phone number."""
    text = str(value or "").strip()
    if not text:
        raise ValueError("No phone number given.")
    try:
        parsed = phonenumbers.parse(text, region or settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{text!r} is not a phone number ({exc}).") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_as_received(value: str) -> str:
    """A number a provider reports (a reply's sender): E.164 when phonenumbers reads it as valid, else
    ``+`` and its digits (at most 15, as E.164 allows), so that a number of a range the library does not know
    yet is still kept; "" when it has no digits or too many to be a phone number."""
    try:
        return phone_e164(value)
    except ValueError:
        digits = "".join(ch for ch in str(value or "") if ch.isascii() and ch.isdigit())
        return "+" + digits if 1 <= len(digits) <= 15 else ""
