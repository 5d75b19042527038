"""Text encoding of SMS: the GSM 03.38 (GSM-7) alphabet and its extension table (3GPP TS 23.038), and how many
parts a text is sent in.

Text made only of these characters travels as GSM-7; any other character makes the whole message UCS-2, which
lowers a provider's length limits and the characters per part.

One SMS carries 140 octets of user data: 160 GSM-7 septets or 70 UCS-2 (UTF-16) code units. A longer text is sent
as concatenated parts, each starting with a 6-octet user data header, which leaves 153 septets or 67 code units
per part. A character of the extension table takes two septets (an escape, then its code) and a character outside
the Basic Multilingual Plane (most emoji) two code units (a surrogate pair); a part never ends between the two,
so such a character that does not fit at the end of a part starts the next one.

``static/campaigns/segments.js`` counts the same way in the browser, with the same tables (``tables_json``); a
test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

# The basic character set in code order, 0x00 to 0x7F, without 0x1B (the escape to the extension table).
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table in code order: form feed, ^ { } \ [ ~ ] | and the euro sign.
GSM7_EXTENSION_TABLE = "\f^{}\\[~]|€"

GSM7_BASIC = frozenset(GSM7_BASIC_TABLE)
GSM7_EXTENSION = frozenset(GSM7_EXTENSION_TABLE)  # each sent as an escape plus one character
GSM7_CHARS = GSM7_BASIC | GSM7_EXTENSION

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# (units in a single message, units per part of a concatenated one)
CAPACITY = {GSM7: (160, 153), UCS2: (70, 67)}

_SPACES = "\u00a0" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"

# Characters outside GSM-7 that people paste from word processors and phones, and the GSM-7 text that reads
# the same. Replacing them keeps a message GSM-7 (160 characters per SMS instead of 70).
LOOKALIKES: dict[str, str] = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a\u00b4`", "'"),  # ‘ ’ ‚ ‛ ′ ‹ › ´ `
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),  # “ ” „ ‟ ″ « »
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),  # ‐ ‑ ‒ – — ― −
    **dict.fromkeys(_SPACES, " "),  # no-break, en, em, thin, hair, ideographic ... spaces
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),  # zero-width characters, soft hyphen
    "\u2026": "...",  # …
    "\u2022": "-",  # •
    "\u2043": "-",  # ⁃ hyphen bullet
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    "\t": " ",
}


@dataclass(frozen=True)
class SegmentInfo:
    """How a text is sent as SMS.

    ``units`` are septets for GSM-7 and UTF-16 code units for UCS-2; ``per_segment`` is the capacity of each part
    (160/70 when the text fits one SMS, else 153/67); ``remaining`` is what is still free in the last part;
    ``non_gsm`` lists the characters that force UCS-2, each once, in order of first appearance."""

    encoding: str
    units: int
    segments: int
    per_segment: int
    remaining: int
    non_gsm: tuple[str, ...]


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent as GSM-7."""
    return all(ch in GSM7_CHARS for ch in text)


def segment_info(text: str) -> SegmentInfo:
    """Encoding, length and number of SMS parts of ``text`` (GSM 03.38 / 3GPP TS 23.038).

    Parts are filled character by character: one that would not fit whole in the current part (an escape pair
    or a surrogate pair one unit short of the end) starts the next part, so the count is not a plain division."""
    non_gsm = tuple(dict.fromkeys(ch for ch in text if ch not in GSM7_CHARS))
    if non_gsm:
        encoding = UCS2
        widths = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    else:
        encoding = GSM7
        widths = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    single, part = CAPACITY[encoding]
    units = sum(widths)
    if units <= single:
        return SegmentInfo(encoding, units, 1 if units else 0, single, single - units, non_gsm)
    segments, used = 1, 0
    for width in widths:
        if used + width > part:
            segments, used = segments + 1, 0
        used += width
    return SegmentInfo(encoding, units, segments, part, part - used, non_gsm)


def replace_lookalikes(text: str) -> str:
    """``text`` with each character of ``LOOKALIKES`` replaced by its GSM-7 equivalent (or removed)."""
    return "".join(LOOKALIKES.get(ch, ch) for ch in text)


def tables_json() -> dict:
    """The character tables and look-alike map as JSON-ready data, the ones ``segments.js`` carries."""
    return {"basic": GSM7_BASIC_TABLE, "extension": GSM7_EXTENSION_TABLE, "lookalikes": dict(LOOKALIKES)}
