"""static/campaigns/segments.js counts exactly as messaging.encoding does, with the same tables, in Chromium."""

import random
from pathlib import Path

import pytest
from django.conf import settings

from messaging.encoding import (
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION_TABLE,
    LOOKALIKES,
    replace_lookalikes,
    segment_info,
    tables_json,
)

pytestmark = pytest.mark.browser

SCRIPT = Path(settings.BASE_DIR) / "static" / "campaigns" / "segments.js"

EDGE_CASES = [
    "",
    "\f",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "€" * 80,
    "€" * 80 + "a",
    "a" * 152 + "€" + "a" * 152,  # the escape pair moves to part two: 306 septets, three parts
    "a" * 151 + "€" + "a" * 153,
    "ж" * 70,
    "ж" * 71,
    "ж" * 66 + "😀" + "ж" * 66,  # the surrogate pair moves to part two: 134 units, three parts
    "😀" * 35,
    "😀" * 35 + "a",
    "👍🏽 Café ç ß ж 😀 ç",
    "Line one\r\nLine two\n[sale] {50%} ~ ^ | \\ €",
    "\u201cDon\u2019t miss it\u201d \u2014 sale ends\u00a0Friday\u2026 \u2022 \u00abfree\u00bb\u200b ship",
]

POOLS = [
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION_TABLE,
    "àáâãçèéêëìíîïñòóôõöùúûüýÿÀÂÇÈÊËÎÏÔÙÛŸœŒ",  # accented: some GSM-7, most not
    "中文字符短信日本語한국어",
    "😀😂👍🏽🎉🇫🇷❤️𝄞🚀",  # astral characters, a flag, a variation selector
    "".join(LOOKALIKES),
]


def random_texts(count: int, seed: int = 23038) -> list[str]:
    rnd = random.Random(seed)
    texts = []
    for i in range(count):
        # mostly one or two pools, so that many texts stay GSM-7 and lengths reach several parts
        pools = rnd.sample(POOLS[:2], 1) if i % 3 == 0 else rnd.sample(POOLS, rnd.randint(1, 3))
        weights = [rnd.random() + 0.05 for _ in pools]
        length = rnd.choice([rnd.randint(0, 80), rnd.randint(60, 170), rnd.randint(140, 700)])
        texts.append("".join(rnd.choice(rnd.choices(pools, weights)[0]) for _ in range(length)))
    return texts


TEXTS = EDGE_CASES + random_texts(24)


def test_browser_counter_matches_the_python_one(browser):
    page = browser.new_page()
    try:
        page.goto("about:blank")
        page.add_script_tag(content=SCRIPT.read_text(encoding="utf-8"))

        tables = page.evaluate(
            "() => ({basic: SmsSegments.GSM7_BASIC, extension: SmsSegments.GSM7_EXTENSION,"
            " lookalikes: Object.assign({}, SmsSegments.LOOKALIKES)})"
        )
        assert tables == tables_json()

        results = page.evaluate(
            "texts => texts.map(t => [SmsSegments.info(t), SmsSegments.replaceLookalikes(t)])", TEXTS
        )
        assert len(results) == len(TEXTS)
        kinds = set()
        for text, (got, replaced) in zip(TEXTS, results, strict=True):
            want = segment_info(text)
            label = f"text {text[:40]!r}... ({len(text)} characters)"
            assert got["encoding"] == want.encoding, label
            assert got["units"] == want.units, label
            assert got["segments"] == want.segments, label
            assert got["perSegment"] == want.per_segment, label
            assert got["remaining"] == want.remaining, label
            assert tuple(got["nonGsm"]) == want.non_gsm, label
            assert replaced == replace_lookalikes(text), label
            kinds.add((want.encoding, want.segments > 1))
        # the random texts reach both encodings, single and multi-part
        assert kinds == {("GSM-7", False), ("GSM-7", True), ("UCS-2", False), ("UCS-2", True)}
    finally:
        page.close()
