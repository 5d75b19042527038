"""Text encoding of SMS: the GSM 03.38 (GSM-7) basic character set and its extension table (3GPP TS 23.038).

Text made only of these characters travels as GSM-7; any other character makes the whole message UCS-2, which
lowers a provider's length limits and the characters per part.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # each sent as an escape plus one character
GSM7_CHARS = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent as GSM-7."""
    return all(ch in GSM7_CHARS for ch in text)
