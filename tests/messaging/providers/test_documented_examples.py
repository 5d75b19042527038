"""Every callback example in CONTRACTS.md, verbatim, through the real webhook: each yields the normalized
status that the document's §6 table gives its provider value.

The examples are copied here exactly as printed (ids such as ``SM1a2b...`` included), §6 is kept beside this
file (contracts_section6.md), and, when the documentation is beside the repository (../shared/providers/), both
are checked against it: an example or a §6 row
that changes there fails here. Signatures in the examples are invented values (the document says so), so each
request is signed for the test sender by the emulator's own signer (written apart from the adapters). Fone Dynamics documents no callback body
at all (CONTRACTS.md §3), so it has no example here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from django.urls import reverse

from messaging.models import Message, MessageEvent
from messaging.sandbox.cloudvno import sign as cloudvno_sign
from messaging.sandbox.plivo import _signature_headers as plivo_signature_headers
from tests.support import ROOT

pytestmark = pytest.mark.django_db

CONTRACTS = ROOT.parent / "shared" / "providers" / "CONTRACTS.md"
FORM = "application/x-www-form-urlencoded"

CLOUDVNO_EXAMPLE = (
    "MessageSid=SM1a2b...&SmsSid=SM1a2b...&MessageStatus=delivered&SmsStatus=delivered&From=%2B14155551234"
    "&To=%2B12125559876&ApiVersion=v1"
)
PLIVO_EXAMPLE = (
    "MessageUUID=1a2b3c4d-...&To=14157778888&From=14155551234&Type=sms&Status=undelivered&ErrorCode=30&Units=1"
    "&TotalRate=0.00500&TotalAmount=0.00500&MCC=310&MNC=260&Sequence=3&MessageTime=2024-08-21+12%3A58%3A49.244057"
    "&SentTime=...&DeliveryReportTime=..."
)
SENDBLUE_EXAMPLE = """{"accountEmail":"support@sendblue.co","content":"Hello world!","is_outbound":true,"status":"DELIVERED","error_code":null,
 "error_message":null,"message_handle":"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxx","date_sent":"2020-09-10T06:15:05.962Z",
 "date_updated":"2020-09-10T06:15:14.115Z","from_number":"+15122164639","number":"+19998887777",
 "to_number":"+19998887777","was_downgraded":false,"plan":"blue"}"""
BANDWIDTH_EXAMPLE = """{"eventType":"sms","direction":"out","messageId":"{messageId}",
 "messageUri":"https://api.catapult.inetwork.com/v1/users/{userId}/messages/{messageId}",
 "from":"+13233326955","to":"+13865245000","text":"Example","time":"2012-11-14T16:13:06.076Z","state":"sent","segmentCount":1}"""

# (provider, example body, content type, provider message id, recipient, §6 table row name, §6 value, expected
#  normalized status, expected error code)
EXAMPLES = [
    ("cloudvno", CLOUDVNO_EXAMPLE, FORM, "SM1a2b...", "+12125559876", "CloudVNO", "delivered", "delivered", ""),
    ("plivo", PLIVO_EXAMPLE, FORM, "1a2b3c4d-...", "+14157778888", "Plivo", "undelivered", "undelivered", "30"),
    ("sendblue", SENDBLUE_EXAMPLE, "application/json", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxx", "+19998887777",
     "Sendblue", "DELIVERED", "delivered", ""),
    ("bandwidth", BANDWIDTH_EXAMPLE, "application/json; charset=utf-8", "{messageId}", "+13865245000",
     "Bandwidth v1", "state=sent", "sent", ""),
]


def section6_statuses(text: str) -> dict[tuple[str, str], str]:
    """(provider row name, provider value) -> normalized status, from the §6 table: every backquoted value of a
    row's "Provider value" cell maps to its "Normalized" cell; rows with an empty provider cell continue the
    provider above."""
    table = text[text.index("## 6. Normalization"):text.index("## 7.")]
    out: dict[tuple[str, str], str] = {}
    provider = ""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] == "Provider" or set(cells[0]) <= {"-"} and cells[0]:
            continue
        if cells[0]:
            provider = re.sub(r"\s*\(.*\)", "", cells[0])
        normalized = cells[2].split()[0] if cells[2] else ""
        for value in re.findall(r"`([^`]+)`", cells[1]):
            out.setdefault((provider, value), normalized)
    return out


SECTION6_COPY = Path(__file__).with_name("contracts_section6.md")


def _documentation() -> str | None:
    return CONTRACTS.read_text() if CONTRACTS.exists() else None


def _section6_text() -> str:
    """§6 from the documentation when it is beside the repository, else from the copy kept with the tests."""
    documentation = _documentation()
    copy = SECTION6_COPY.read_text()
    if documentation is None:
        return copy
    own = documentation[documentation.index("## 6. Normalization"):documentation.index("## 7.")]
    assert own in copy, "§6 of CONTRACTS.md changed: update tests/messaging/providers/contracts_section6.md"
    return documentation


@pytest.mark.parametrize(
    "provider,body,content_type,provider_id,recipient,row,value,expected,error_code",
    EXAMPLES,
    ids=[example[0] for example in EXAMPLES],
)
def test_documented_callback_example_yields_the_documented_status(
    make_sender, client, provider, body, content_type, provider_id, recipient, row, value, expected, error_code
):
    documentation = _documentation()
    if documentation is not None:
        assert body in documentation, f"the {provider} example changed in CONTRACTS.md"
    assert section6_statuses(_section6_text())[(row, value)] == expected, f"§6 gives {row} {value} another status"
    sender = make_sender(provider)
    message = Message.objects.create(sender=sender, to=recipient, body="x", status=Message.Status.SENT,
                                     provider_message_id=provider_id)
    path = reverse("messaging:webhook_status", args=[provider, sender.uuid])
    url = f"http://testserver{path}"
    headers: dict[str, str] = {}
    if provider == "cloudvno":
        fields = dict(parse_qsl(body, keep_blank_values=True))
        headers["X-CloudVNO-Signature"] = cloudvno_sign(sender.credentials["webhook_secret"], url, fields)
    elif provider == "plivo":
        fields = dict(parse_qsl(body, keep_blank_values=True))
        headers.update(plivo_signature_headers(sender.credentials["auth_token"], "POST", url, fields))
    elif provider == "sendblue":
        headers["sb-signing-secret"] = sender.credentials["signing_secret"]
    response = client.post(path, data=body.encode(), content_type=content_type, headers=headers)
    assert response.status_code == 200, response.content
    event = MessageEvent.objects.get(sender=sender)
    assert (event.status, event.error_code) == (expected, error_code)
    message.refresh_from_db()
    assert message.status == expected
    assert message.error_code == error_code


def test_every_section6_value_of_our_providers_maps_as_documented():
    """The adapters' status maps against the §6 table itself (the v1 Bandwidth rows name combinations of
    state and deliveryState, checked through callbacks in test_bandwidth.py)."""
    from messaging.providers import PROVIDERS

    documentation = _section6_text()
    rows = {"CloudVNO": "cloudvno", "Plivo": "plivo", "Fone Dynamics": "fonedynamics", "Sendblue": "sendblue"}
    checked = 0
    for (row, value), normalized in section6_statuses(documentation).items():
        if row not in rows or " " in value or "=" in value:
            continue
        cls = PROVIDERS[rows[row]]
        if row == "Fone Dynamics" and value == "Failed":
            continue  # refined by the Submitted time, checked in test_fonedynamics.py
        assert cls.map_status(value) == normalized, (row, value)
        checked += 1
    assert checked >= 30


def test_the_section6_reader_reads_the_table():
    text = "## 6. Normalization\n| Provider | Provider value | → Normalized | Terminal? |\n|---|---|---|---|\n" \
           "| Plivo | `queued` | queued | no |\n| | `failed`, `rejected` | failed | yes |\n## 7. x"
    assert section6_statuses(text) == {("Plivo", "queued"): "queued", ("Plivo", "failed"): "failed",
                                       ("Plivo", "rejected"): "failed"}


def test_examples_are_json_where_the_documentation_says_so():
    assert json.loads(SENDBLUE_EXAMPLE)["status"] == "DELIVERED"
    assert json.loads(BANDWIDTH_EXAMPLE)["state"] == "sent"
