"""The error causes and each provider's error table: every documented code has a cause, the tables agree with
docs/providers.md (Error causes) and with what the adapters already hold (their error texts, opt-out codes,
recipient, transient and rate-limit codes), and ``error_cause`` reads codes and HTTP statuses as documented."""

from __future__ import annotations

import re

import pytest

from messaging.providers import PROVIDERS, bandwidth, cloudvno, plivo, sendblue
from messaging.providers.base import CAUSE_CHOICES, CAUSES, UNKNOWN, Cause, ErrorCode, cause_info, causes
from messaging.providers.codes import TABLES, cause_for_http_status, error_cause, error_meaning, table_summary
from tests.support import ROOT

DOCS = ROOT / "docs" / "providers.md"

# The documented codes of each provider (docs/providers.md, each provider's Errors): written out here so that a
# code dropped from a table, or one added without documentation, fails.
DOCUMENTED = {
    "cloudvno": {
        "unauthorized", "api_key_revoked", "insufficient_permissions", "invalid_phone_number",
        "number_not_sms_capable", "message_too_long", "from_number_not_owned", "unsubscribed", "carrier_blocked",
        "rate_limit_exceeded",
    },
    "plivo": {"10", "20", "30", "40", "50", "60", "70", "80", "90", "100", "110", "120", "200", "201", "420", "1000"},
    "fonedynamics": set(),  # the code list is not public
    "sendblue": {"4000", "4001", "4002", "5000", "5003", "10001", "10002", "opted_out"},  # the last: the field
    "bandwidth": {
        "100", "187", "188", "189", "482", "600", "610", "620", "630", "650", "700", "720", "740", "750", "751",
        "770", "775", "902", "999",
        "blank-property", "message-rate-limit", "message-rate-limit-overall", "message-rate-limit-per-tn",
        "multi-message-limit", "message-delay-limit",
    },
}
# Causes meaning the recipient's number itself is the problem: another sender would fail the same way.
NUMBER_CAUSES = {causes.INVALID_NUMBER, causes.NOT_SMS_CAPABLE, causes.OPTED_OUT}
ALL_CODES = [(provider, code) for provider, table in TABLES.items() for code in table]


def codes_with(provider: str, *wanted: str) -> set[str]:
    return {code for code, entry in TABLES[provider].items() if entry.cause in wanted}


# ---- the causes ----


def test_the_ten_causes_in_order():
    assert list(CAUSES) == ["invalid_number", "not_sms_capable", "opted_out", "carrier_filtered", "rate_limited",
                            "account", "content", "expired", "unreachable", "unknown"]
    assert [causes.INVALID_NUMBER, causes.NOT_SMS_CAPABLE, causes.OPTED_OUT, causes.CARRIER_FILTERED,
            causes.RATE_LIMITED, causes.ACCOUNT, causes.CONTENT, causes.EXPIRED, causes.UNREACHABLE,
            causes.UNKNOWN] == list(CAUSES)


@pytest.mark.parametrize("code", list(CAUSES))
def test_each_cause_has_a_label_an_explanation_and_advice(code):
    cause = CAUSES[code]
    assert cause.code == code
    assert cause.label.strip() and len(cause.label) <= 30
    for sentence in (cause.explanation, cause.advice):
        assert sentence.strip() and sentence[0].isupper() and sentence.endswith(".")
        assert ". " not in sentence, f"{code}: one sentence, not several: {sentence!r}"


def test_labels_are_distinct_and_are_the_choices():
    assert len({cause.label for cause in CAUSES.values()}) == len(CAUSES)
    assert CAUSE_CHOICES[0] == ("invalid_number", "Invalid number")
    assert CAUSE_CHOICES[-1] == ("unknown", "Unknown")
    assert [code for code, _ in CAUSE_CHOICES] == list(CAUSES)
    assert all(isinstance(label, str) and label for _, label in CAUSE_CHOICES)


def test_causes_and_table_entries_are_frozen():
    with pytest.raises(AttributeError):
        CAUSES["expired"].label = "x"
    with pytest.raises(AttributeError):
        ErrorCode(causes.EXPIRED, "Message expired").cause = causes.UNKNOWN


@pytest.mark.parametrize("code", ["opted_out", "rate_limited", "expired"])
def test_cause_info_of_a_cause(code):
    assert cause_info(code) is CAUSES[code]


@pytest.mark.parametrize("code", ["", None, "delivered", "OPTED_OUT", "opted out", 7, ["expired"]])
def test_cause_info_of_anything_else_is_unknown(code):
    info = cause_info(code)
    assert isinstance(info, Cause) and info.code == causes.UNKNOWN


def test_the_unknown_cause_and_the_unknown_status_are_spelled_alike():
    # Both say "we cannot tell", in two vocabularies; the package exports the status under the plain name.
    assert UNKNOWN == causes.UNKNOWN == "unknown"


# ---- the tables ----


def test_one_table_per_registered_provider():
    assert set(TABLES) == set(PROVIDERS)


@pytest.mark.parametrize("provider", list(DOCUMENTED))
def test_each_table_holds_exactly_the_documented_codes(provider):
    assert set(TABLES[provider]) == DOCUMENTED[provider]


@pytest.mark.parametrize(("provider", "code"), ALL_CODES)
def test_every_documented_code_has_a_cause_and_a_meaning(provider, code):
    entry = TABLES[provider][code]
    assert entry.cause in CAUSES
    assert entry.meaning.strip() and entry.meaning == entry.meaning.strip()
    assert code == code.strip() and code not in {"0", "000"}
    assert error_cause(provider, code) == entry.cause
    assert error_meaning(provider, code) == entry.meaning


@pytest.mark.parametrize(("provider", "code"), ALL_CODES)
def test_only_codes_documented_as_unknown_map_to_unknown(provider, code):
    entry = TABLES[provider][code]
    documented_unknown = entry.meaning.lower() == "unknown error"
    assert (entry.cause == causes.UNKNOWN) == documented_unknown, f"{provider} {code}: {entry}"


def test_the_codes_that_shape_campaigns():
    # The facts the rest of the app leans on, spelled out (docs/providers.md, each provider's Errors).
    assert error_cause("plivo", "200") == causes.OPTED_OUT
    assert error_cause("plivo", "420") == causes.EXPIRED
    assert error_cause("plivo", "50") == causes.INVALID_NUMBER
    assert error_cause("plivo", "30") == causes.CARRIER_FILTERED
    assert error_cause("bandwidth", "775") == causes.OPTED_OUT
    assert error_cause("bandwidth", "902") == causes.EXPIRED
    assert error_cause("cloudvno", "unsubscribed") == causes.OPTED_OUT
    assert error_cause("cloudvno", "number_not_sms_capable") == causes.NOT_SMS_CAPABLE
    assert error_cause("sendblue", "4002") == causes.INVALID_NUMBER  # blacklisted (911), not an opt-out
    assert error_cause("sendblue", "4001") == causes.RATE_LIMITED


# ---- reading a code ----


@pytest.mark.parametrize("provider", list(TABLES))
@pytest.mark.parametrize("code", [None, "", "0", "000", " 0 ", 0])
def test_no_error_codes_have_no_cause(provider, code):
    assert error_cause(provider, code) == ""
    assert error_cause(provider, code, http_status=200) == ""
    assert error_meaning(provider, code) == ""


def test_bandwidth_delivered_to_carrier_is_no_error():
    assert "0" not in TABLES["bandwidth"]
    assert error_cause("bandwidth", "0") == ""


@pytest.mark.parametrize(("status", "expected"), [
    (401, causes.ACCOUNT), (403, causes.ACCOUNT), (429, causes.RATE_LIMITED), (500, causes.UNREACHABLE),
    (502, causes.UNREACHABLE), (503, causes.UNREACHABLE), (400, causes.UNKNOWN), (404, causes.UNKNOWN),
    (409, causes.UNKNOWN), (422, causes.UNKNOWN),
])
def test_an_http_error_without_a_documented_code_falls_back_on_its_status(status, expected):
    assert cause_for_http_status(status) == expected
    # Plivo's REST errors carry text only; Fone Dynamics documents no code.
    assert error_cause("plivo", "", http_status=status) == expected
    assert error_cause("plivo", None, http_status=status) == expected
    assert error_cause("fonedynamics", "SomeServiceStackError", http_status=status) == expected
    assert error_cause("bandwidth", "some-undocumented-code", http_status=status) == expected


@pytest.mark.parametrize("status", [200, 201, 202, 204, 302])
def test_a_status_below_400_is_no_error_by_itself(status):
    assert cause_for_http_status(status) == ""
    assert error_cause("plivo", "", http_status=status) == ""
    assert error_cause("plivo", "12345", http_status=status) == causes.UNKNOWN


@pytest.mark.parametrize("code", ["message-rate-limit", "message-rate-limit-overall", "message-rate-limit-per-tn",
                                  "multi-message-limit"])
def test_bandwidth_rate_limits_come_as_403_and_are_rate_limited(code):
    assert error_cause("bandwidth", code, http_status=403) == causes.RATE_LIMITED
    assert error_cause("bandwidth", "", http_status=403) == causes.ACCOUNT  # a 403 without a rate-limit code


def test_the_table_wins_over_the_http_status():
    assert error_cause("bandwidth", "message-delay-limit", http_status=400) == causes.RATE_LIMITED
    assert error_cause("cloudvno", "invalid_phone_number", http_status=400) == causes.INVALID_NUMBER
    assert error_cause("cloudvno", "rate_limit_exceeded", http_status=429) == causes.RATE_LIMITED
    assert error_cause("cloudvno", "unsubscribed", http_status=403) == causes.OPTED_OUT
    assert error_cause("sendblue", "5003", http_status=500) == causes.RATE_LIMITED


@pytest.mark.parametrize(("provider", "code"), [
    ("plivo", "900"), ("plivo", "2001"), ("sendblue", "5509"), ("sendblue", "SMS_LIMIT_REACHED"),
    ("cloudvno", "30007"), ("bandwidth", "4720"), ("fonedynamics", "InvalidTo"), ("cloudvno", "UNSUBSCRIBED"),
])
def test_an_undocumented_code_is_unknown(provider, code):
    assert error_cause(provider, code) == causes.UNKNOWN
    assert error_meaning(provider, code) == ""


def test_codes_are_read_as_sent():
    # Sendblue's error_code is a JSON number; providers pad with spaces now and then.
    assert error_cause("sendblue", 4001) == causes.RATE_LIMITED
    assert error_meaning("sendblue", 4002) == "Blacklisted number"
    assert error_cause("plivo", " 200 ") == causes.OPTED_OUT
    assert error_meaning("plivo", 420) == "Message expired in queue"


def test_a_provider_that_is_not_registered_never_raises():
    assert error_cause("nosuchprovider", "200") == causes.UNKNOWN
    assert error_cause("nosuchprovider", "") == ""
    assert error_cause("nosuchprovider", "", http_status=429) == causes.RATE_LIMITED
    assert error_meaning("nosuchprovider", "200") == ""


# ---- the summary ----


def test_table_summary_counts_every_code_once():
    summary = table_summary()
    assert set(summary) == set(TABLES)
    for provider, counts in summary.items():
        assert sum(counts.values()) == len(TABLES[provider]), provider
        assert all(count > 0 for count in counts.values())
        assert list(counts) == [cause for cause in CAUSES if cause in counts]  # in the causes' order
        for cause, count in counts.items():
            assert count == len(codes_with(provider, cause)), (provider, cause)
    assert summary["fonedynamics"] == {}
    assert summary["plivo"][causes.OPTED_OUT] == 1
    assert summary["bandwidth"][causes.RATE_LIMITED] == 5
    assert summary["sendblue"][causes.OPTED_OUT] == 1  # the `opted_out` field


# ---- agreement with the adapters ----


def test_plivo_recipient_codes():
    # The recipient's side: the number itself, or a loop with it (a filter's doing); and every code that says
    # the number itself is the problem is the recipient's.
    for code in plivo.RECIPIENT_ERROR_CODES:
        assert error_cause("plivo", code) in NUMBER_CAUSES | {causes.CARRIER_FILTERED}, code
    assert codes_with("plivo", *NUMBER_CAUSES) <= plivo.RECIPIENT_ERROR_CODES


def test_sendblue_recipient_transient_and_rate_codes():
    for code in sendblue.RECIPIENT_CODES:
        assert error_cause("sendblue", code) in NUMBER_CAUSES, code
    assert codes_with("sendblue", *NUMBER_CAUSES) == sendblue.RECIPIENT_CODES
    for code in sendblue.TRANSIENT_CODES:
        assert error_cause("sendblue", code) in {causes.RATE_LIMITED, causes.UNREACHABLE}, code
    assert codes_with("sendblue", causes.RATE_LIMITED) == sendblue.RATE_CODES
    assert sendblue.RATE_CODES <= sendblue.TRANSIENT_CODES


def test_cloudvno_code_sets():
    assert cloudvno.AUTH_CODES <= codes_with("cloudvno", causes.ACCOUNT)
    assert codes_with("cloudvno", causes.RATE_LIMITED) == cloudvno.RATE_CODES
    for code in cloudvno.RECIPIENT_CODES:
        assert error_cause("cloudvno", code) in NUMBER_CAUSES, code
    # number_not_sms_capable is the recipient's only when `param` is `to`: the adapter decides with the param.
    assert codes_with("cloudvno", *NUMBER_CAUSES) == cloudvno.RECIPIENT_CODES | {"number_not_sms_capable"}
    every_code = cloudvno.AUTH_CODES | cloudvno.RECIPIENT_CODES | cloudvno.RATE_CODES | cloudvno.CONTENT_OR_SENDER_CODES
    assert every_code == set(TABLES["cloudvno"])


def test_bandwidth_code_sets():
    assert codes_with("bandwidth", causes.RATE_LIMITED) == bandwidth.RATE_LIMIT_CODES


# ---- agreement with docs/providers.md ----


def _docs_section() -> str:
    text = DOCS.read_text()
    start = text.index("\n## Error causes\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _rows(block: str) -> list[list[str]]:
    lines = [line for line in block.splitlines() if line.startswith("|")][2:]  # past the header and its rule
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def _unquote(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected a `code` cell, got {cell!r}"
    return match.group(1)


def test_the_docs_describe_the_causes_as_the_code_does():
    section = _docs_section()
    first_table = section[:section.index("\n### ")]
    rows = _rows(first_table)
    assert [_unquote(row[0]) for row in rows] == list(CAUSES)
    for row in rows:
        cause = CAUSES[_unquote(row[0])]
        assert row[1:] == [cause.label, cause.explanation, cause.advice], cause.code


def test_the_docs_list_every_code_of_every_table_with_its_meaning_and_cause():
    section = _docs_section()
    seen = {}
    for part in section.split("\n### ")[1:]:
        heading = part.splitlines()[0]
        match = re.search(r"`messaging/providers/codes/(\w+)\.py`", heading)
        assert match, f"an Error causes subsection without its table's module: {heading!r}"
        seen[match.group(1)] = {
            _unquote(row[0]): ErrorCode(_unquote(row[2]), row[1]) for row in _rows(part)
        }
    assert set(seen) == set(TABLES)
    for provider, documented in seen.items():
        assert documented == TABLES[provider], provider
