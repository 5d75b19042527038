"""Phone numbers as the rest of the code keeps them: E.164, parsed by phonenumbers. Addresses that wrote to us
(replies) are kept as received when they are not such numbers: a short code, an alphanumeric sender, a number
of a range the library does not know yet."""

from __future__ import annotations

import re

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


ADDRESS_MAX = 20  # Message.to, Suppression.phone
SHORT_CODE_MAX = 8  # digits: a short code (3 to 8 digits), never written with a country code
_NUMBER_LIKE = re.compile(r"^\+?[\d\s().\-]+$")
_ALPHANUMERIC = re.compile(r"[^0-9A-Za-z &._\-]")


def phone_as_received(value: str) -> str:
    """The address a provider reports for whoever wrote a reply, as we store and match it:

    - E.164 when phonenumbers reads it as a valid number (with the default region when it has no ``+``);
    - a short code's digits as they are (``898287``): up to SHORT_CODE_MAX digits written without ``+``;
    - ``+`` and the digits of any other number (at most 15, as E.164 allows), so that a number of a range the
      library does not know yet is still kept, and matches what we sent to it; more digits: no address ("");
    - an alphanumeric sender ID as written, without characters no sender ID has, cut to ADDRESS_MAX;
    - "" when nothing is left."""
    text = str(value or "").strip()
    try:
        return phone_e164(text)
    except ValueError:
        pass
    if _NUMBER_LIKE.match(text):
        digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
        if not text.startswith("+") and len(digits) <= SHORT_CODE_MAX:
            return digits
        return "+" + digits if len(digits) <= 15 else ""  # longer than any phone number: no address
    return _ALPHANUMERIC.sub("", text).strip()[:ADDRESS_MAX]


def is_phone_address(address: str) -> bool:
    """Whether a stored address can be messaged: a number (E.164 or ``+`` and digits) or a short code."""
    return bool(address) and (address.lstrip("+").isdigit())
