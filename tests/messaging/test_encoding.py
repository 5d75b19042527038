"""SMS encoding and part counting (messaging.encoding), checked against GSM 03.38 / 3GPP TS 23.038 figures."""

from hypothesis import given
from hypothesis import strategies as st

from messaging.encoding import (
    GSM7_BASIC_TABLE,
    GSM7_CHARS,
    GSM7_EXTENSION,
    GSM7_EXTENSION_TABLE,
    LOOKALIKES,
    SegmentInfo,
    is_gsm7,
    replace_lookalikes,
    segment_info,
    tables_json,
)

ESC = "\x1b"


def test_single_gsm7_message_holds_160_septets():
    assert segment_info("a" * 160) == SegmentInfo("GSM-7", 160, 1, 160, 0, ())
    assert segment_info("a" * 161) == SegmentInfo("GSM-7", 161, 2, 153, 145, ())


def test_concatenated_gsm7_parts_hold_153_septets():
    assert segment_info("a" * 306).segments == 2
    assert segment_info("a" * 306).remaining == 0
    info = segment_info("a" * 307)
    assert (info.segments, info.per_segment, info.remaining) == (3, 153, 152)


def test_extension_characters_take_two_septets():
    info = segment_info("€[]{}")
    assert (info.encoding, info.units) == ("GSM-7", 10)
    assert segment_info("€" * 80).segments == 1
    assert segment_info("€" * 80 + "a").segments == 2


def test_escape_pair_never_straddles_a_part_boundary():
    # 152 septets, then the euro's escape pair would take septets 153 and 154: the pair starts part two.
    text = "a" * 152 + "€" + "a" * 152
    info = segment_info(text)
    assert info.units == 306  # 153 * 2 units, and yet three parts
    assert info.segments == 3
    assert info.remaining == 153 - 1
    assert segment_info("a" * 151 + "€" + "a" * 153).segments == 2  # the pair ends exactly at 153


def test_single_ucs2_message_holds_70_units():
    assert segment_info("é" * 2 + "ж" * 68) == SegmentInfo("UCS-2", 70, 1, 70, 0, ("ж",))
    info = segment_info("ж" * 71)
    assert (info.units, info.segments, info.per_segment, info.remaining) == (71, 2, 67, 63)
    assert segment_info("ж" * 134).segments == 2
    assert segment_info("ж" * 135).segments == 3


def test_surrogate_pairs_count_two_units():
    info = segment_info("😀")
    assert (info.encoding, info.units, info.segments, info.remaining) == ("UCS-2", 2, 1, 68)
    assert segment_info("😀" * 35).segments == 1
    assert segment_info("😀" * 35 + "a").segments == 2


def test_emoji_never_straddles_a_part_boundary():
    text = "ж" * 66 + "😀" + "ж" * 66
    info = segment_info(text)
    assert info.units == 134  # 67 * 2 units, and yet three parts
    assert info.segments == 3
    assert info.remaining == 67 - 1
    assert segment_info("ж" * 65 + "😀" + "ж" * 67).segments == 2


def test_empty_message_is_no_part():
    assert segment_info("") == SegmentInfo("GSM-7", 0, 0, 160, 160, ())


def test_lone_form_feed_is_an_escape_pair():
    assert segment_info("\f") == SegmentInfo("GSM-7", 2, 1, 160, 158, ())


def test_non_gsm_lists_each_offending_character_once_in_order():
    info = segment_info("Café ç ß ж 😀 ç ж 😀 ô")
    assert info.non_gsm == ("ç", "ж", "😀", "ô")  # é and ß are GSM-7
    assert info.encoding == "UCS-2"


def test_replace_lookalikes_makes_pasted_text_gsm7():
    pasted = "\u201cDon\u2019t miss it\u201d \u2014 sale ends\u00a0Friday\u2026 \u2022 \u00abfree\u00bb\u200b ship"
    assert not is_gsm7(pasted)
    fixed = replace_lookalikes(pasted)
    assert fixed == '"Don\'t miss it" - sale ends Friday... - "free" ship'
    assert segment_info(fixed).encoding == "GSM-7"
    assert replace_lookalikes("ж 😀") == "ж 😀"


def test_lookalike_replacements_are_gsm7_and_keys_are_not():
    assert all(is_gsm7(value) for value in LOOKALIKES.values())
    assert not any(key in GSM7_CHARS for key in LOOKALIKES)
    for ch in "\u00a0\u2000\u2005\u200a\u202f\u205f\u3000":
        assert LOOKALIKES[ch] == " "
    for ch in "\u200b\u200c\u200d\ufeff":
        assert LOOKALIKES[ch] == ""


def test_tables_follow_the_standard_and_serialize():
    import json

    assert len(GSM7_BASIC_TABLE) == 127 == len(set(GSM7_BASIC_TABLE))  # 128 codes less the escape
    code = {ch: i + (i >= 0x1B) for i, ch in enumerate(GSM7_BASIC_TABLE)}  # the table skips the escape, 0x1B
    assert (code["@"], code["Ç"], code["Æ"], code["¤"], code["¡"], code["§"], code["¿"], code["à"]) == (
        0x00, 0x09, 0x1C, 0x24, 0x40, 0x5F, 0x60, 0x7F,
    )
    assert set(GSM7_EXTENSION_TABLE) == set("^{}\\[~]|€\f") == GSM7_EXTENSION
    assert json.loads(json.dumps(tables_json())) == tables_json()


# ---- property: the counter agrees with an encoder that actually splits the units ----


def reference_segments(text: str) -> int:
    """Parts as a sender would cut them: encode, cut every 153 septets / 67 code units, and when a cut would
    leave an escape (or a high surrogate) at the end of a part, move it to the next part."""
    if is_gsm7(text):
        stream, single, part = [c for ch in text for c in ((ESC, ch) if ch in GSM7_EXTENSION else (ch,))], 160, 153
        splits_pair = lambda unit: unit == ESC  # noqa: E731
    else:
        data = text.encode("utf-16-be")
        stream = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        single, part = 70, 67
        splits_pair = lambda unit: 0xD800 <= unit <= 0xDBFF  # noqa: E731
    if len(stream) <= single:
        return 1 if stream else 0
    count = 0
    while stream:
        cut = min(part, len(stream))
        if cut < len(stream) and splits_pair(stream[cut - 1]):
            cut -= 1
        stream, count = stream[cut:], count + 1
    return count


@st.composite
def whole_parts_of_pairs(draw):
    """Texts worth exactly k full parts of units (or a unit or two less), dense with two-unit characters: the
    case where a pair pushed past a cut costs one more part than a division would say."""
    wide, narrow, part = draw(st.sampled_from([("€", "a", 153), ("\f", "Ø", 153), ("😀", "ж", 67), ("👍", "a", 67)]))
    target = draw(st.integers(2, 5)) * part - draw(st.integers(0, 2))
    rnd = draw(st.randoms(use_true_random=False))
    text, units = "", 0
    while units < target:
        if rnd.random() < 0.6 and units + 2 <= target:
            text, units = text + wide, units + 2
        else:
            text, units = text + narrow, units + 1
    return text


gsm_heavy = st.text(alphabet=st.sampled_from(GSM7_BASIC_TABLE + GSM7_EXTENSION_TABLE * 6), max_size=700)
mixed = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM7_BASIC_TABLE + GSM7_EXTENSION_TABLE),
        st.sampled_from("çôжЖ中文字😀👍🏽🎉𝄞"),
        st.characters(codec="utf-8"),
    ),
    max_size=400,
)


@given(st.one_of(whole_parts_of_pairs(), gsm_heavy, mixed))
def test_part_count_matches_a_reference_encoder(text):
    info = segment_info(text)
    assert info.segments == reference_segments(text)
    assert info.segments * info.per_segment >= info.units
    assert 0 <= info.remaining <= info.per_segment
    assert info.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")
    if info.encoding == "UCS-2":
        assert info.units == len(text.encode("utf-16-le")) // 2
        assert set(info.non_gsm) == {ch for ch in text if ch not in GSM7_CHARS}
