// SMS parts counter, the browser twin of messaging/encoding.py (GSM 03.38 / 3GPP TS 23.038).
// The tables below must equal the Python ones (messaging.encoding.tables_json); a test compares them.
//   SmsSegments.info(text) -> {encoding, units, segments, perSegment, remaining, nonGsm}
//   SmsSegments.replaceLookalikes(text) -> text with curly quotes, dashes, odd spaces... made GSM-7
(function () {
  "use strict";
  // The basic character set in code order, 0x00 to 0x7F, without 0x1B (the escape to the extension table).
  const GSM7_BASIC =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿" +
    "abcdefghijklmnopqrstuvwxyzäöñüà";
  // The extension table in code order; each character is sent as an escape plus its code (2 septets).
  const GSM7_EXTENSION = "\f^{}\\[~]|€";
  // [units in a single message, units per part of a concatenated one (6 octets go to the part header)]
  const CAPACITY = { "GSM-7": [160, 153], "UCS-2": [70, 67] };

  const basic = new Set(GSM7_BASIC);
  const extension = new Set(GSM7_EXTENSION);

  const LOOKALIKES = Object.create(null);
  function map(chars, replacement) {
    for (const ch of chars) LOOKALIKES[ch] = replacement;
  }
  let spaces = "\u00a0\u202f\u205f\u3000";
  for (let c = 0x2000; c <= 0x200a; c++) spaces += String.fromCharCode(c);
  map("\u2018\u2019\u201a\u201b\u2032\u2039\u203a\u00b4`", "'"); // ‘ ’ ‚ ‛ ′ ‹ › ´ `
  map("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'); // “ ” „ ‟ ″ « »
  map("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"); // ‐ ‑ ‒ – — ― −
  map(spaces, " "); // no-break, en, em, thin, hair, ideographic ... spaces
  map("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""); // zero-width characters, soft hyphen
  map("\u2026", "..."); // …
  map("\u2022\u2043", "-"); // • ⁃
  map("\u2028\u2029", "\n"); // line and paragraph separators
  map("\t", " ");

  function info(text) {
    // for...of walks code points, so an emoji (a surrogate pair) is one character of width 2.
    const chars = Array.from(text);
    const nonGsm = [];
    for (const ch of chars) {
      if (!basic.has(ch) && !extension.has(ch) && !nonGsm.includes(ch)) nonGsm.push(ch);
    }
    const encoding = nonGsm.length ? "UCS-2" : "GSM-7";
    const widths = chars.map((ch) =>
      encoding === "UCS-2" ? ch.length : extension.has(ch) ? 2 : 1
    );
    const [single, part] = CAPACITY[encoding];
    const units = widths.reduce((a, b) => a + b, 0);
    if (units <= single) {
      return { encoding, units, segments: units ? 1 : 0, perSegment: single, remaining: single - units, nonGsm };
    }
    // Fill parts one character at a time: one that does not fit whole starts the next part.
    let segments = 1;
    let used = 0;
    for (const width of widths) {
      if (used + width > part) { segments += 1; used = 0; }
      used += width;
    }
    return { encoding, units, segments, perSegment: part, remaining: part - used, nonGsm };
  }

  function replaceLookalikes(text) {
    let out = "";
    for (const ch of text) out += ch in LOOKALIKES ? LOOKALIKES[ch] : ch;
    return out;
  }

  window.SmsSegments = { info, replaceLookalikes, GSM7_BASIC, GSM7_EXTENSION, LOOKALIKES };
})();
