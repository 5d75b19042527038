"""The status tables of docs/providers.md against the adapters, and each provider's callback example, verbatim,
through the real webhook: each yields the normalized status the table gives its value.

The examples are kept here exactly as the providers print them (ids such as ``SM1a2b...`` included) and must also
appear, unchanged, in docs/providers.md. Signatures in the examples are invented values, so each request is signed
for the test sender by the emulator's own signer (written apart from the adapters). Fone Dynamics documents no
callback body at all (docs/providers.md, Fone Dynamics), so it has no example here.
"""

from __future__ import annotations

import importlib
import json
import re
from urllib.parse import parse_qsl

import pytest
from django.urls import reverse

from messaging.models import Message, MessageEvent
from messaging.providers import PROVIDERS
from messaging.sandbox.cloudvno import sign as cloudvno_sign
from messaging.sandbox.plivo import _signature_headers as plivo_signature_headers
from tests.messaging.providers.contract import credentials
from tests.support import ROOT

DOCS = ROOT / "docs" / "providers.md"
FORM = "application/x-www-form-urlencoded"
# provider code -> its section of docs/providers.md
SECTIONS = {"cloudvno": "CloudVNO", "plivo": "Plivo", "fonedynamics": "Fone Dynamics", "sendblue": "Sendblue",
            "bandwidth": "Bandwidth v1"}

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

# (provider, example body, content type, provider message id, recipient, the example's provider value, expected
#  error code)
EXAMPLES = [
    ("cloudvno", CLOUDVNO_EXAMPLE, FORM, "SM1a2b...", "+12125559876", "delivered", ""),
    ("plivo", PLIVO_EXAMPLE, FORM, "1a2b3c4d-...", "+14157778888", "undelivered", "30"),
    ("sendblue", SENDBLUE_EXAMPLE, "application/json", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxx", "+19998887777",
     "DELIVERED", ""),
    ("bandwidth", BANDWIDTH_EXAMPLE, "application/json; charset=utf-8", "{messageId}", "+13865245000", "sent", ""),
]


def status_table(text: str, section: str) -> dict[str, set[str]]:
    """Provider value -> the normalized statuses the "Statuses" table of a provider's section gives it (two when a
    condition decides, e.g. Fone Dynamics `Failed`). Every backquoted value of a row's first cell maps to the
    row's second cell."""
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:] if end == -1 else text[start:end]
    table = body[body.index("\n### Statuses\n"):]
    table = table[:table.find("\n### ", 1)] if table.find("\n### ", 1) != -1 else table
    out: dict[str, set[str]] = {}
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]  # past the header and its rule
    for line in rows:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for value in re.findall(r"`([^`]+)`", cells[0]):
            out.setdefault(value, set()).add(cells[1])
    return out


@pytest.fixture(scope="module")
def docs() -> str:
    return DOCS.read_text()


def _contract(provider: str):
    """The provider's contract suite class, read from its test module without importing the class by name here
    (which would collect it a second time)."""
    module = importlib.import_module(f"tests.messaging.providers.test_{provider}")
    return next(getattr(module, name) for name in dir(module)
                if name.startswith("Test") and getattr(getattr(module, name), "provider", "") == provider)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "provider,body,content_type,provider_id,recipient,value,error_code",
    EXAMPLES,
    ids=[example[0] for example in EXAMPLES],
)
def test_documented_callback_example_yields_the_documented_status(
    docs, make_sender, client, provider, body, content_type, provider_id, recipient, value, error_code
):
    assert body in docs, f"the {provider} example is not in docs/providers.md as it is here"
    [expected] = status_table(docs, SECTIONS[provider])[value]
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
    elif PROVIDERS[provider].callback_basic_auth:  # signs nothing: the sender's callback password is the proof
        headers.update(credentials(sender))
    response = client.post(path, data=body.encode(), content_type=content_type, headers=headers)
    assert response.status_code == 200, response.content
    event = MessageEvent.objects.get(sender=sender)
    assert (event.status, event.error_code) == (expected, error_code)
    message.refresh_from_db()
    assert message.status == expected
    assert message.error_code == error_code


def test_every_registered_provider_has_its_section(docs):
    assert set(SECTIONS) == set(PROVIDERS)
    for section in SECTIONS.values():
        assert f"\n## {section}\n" in docs
        assert status_table(docs, section)


@pytest.mark.parametrize("provider", list(SECTIONS))
def test_every_documented_value_maps_as_documented(docs, provider):
    """The adapter's status map against its table, both ways: every documented value maps as the table says, and
    every value the adapter knows is documented. A value the table gives two statuses depends on a condition
    (only Fone Dynamics `Failed`, decided by the `Submitted` time and checked through callbacks in
    test_fonedynamics.py)."""
    cls = PROVIDERS[provider]
    table = status_table(docs, SECTIONS[provider])
    assert len(table) >= 5
    conditional = {value for value, statuses in table.items() if len(statuses) > 1}
    assert conditional == ({"Failed"} if provider == "fonedynamics" else set())
    for value, statuses in table.items():
        if value not in conditional:
            assert {cls.map_status(value)} == statuses, value
    documented = {value.lower() for value in table}
    assert {key.lower() for key in cls.status_map} <= documented


@pytest.mark.parametrize("provider", list(SECTIONS))
def test_the_contract_suite_posts_every_documented_value(docs, provider):
    """Each provider's contract suite (``documented_statuses``) posts every value of its table, as the table maps
    it; inbound-only values, which a status callback about our message never carries, may be left out."""
    table = status_table(docs, SECTIONS[provider])
    posted = _contract(provider).documented_statuses
    for value, normalized in posted.items():
        assert normalized in table.get(value, set()), (value, normalized)
    missing = {value for value, statuses in table.items() if value not in posted and statuses != {"received"}}
    assert not missing


def test_the_status_table_reader_reads_a_table():
    text = ("# x\n## Plivo\n### Sending\n| a | b |\n|---|---|\n| `x` | y |\n### Statuses\nSome words.\n\n"
            "| Provider value | Normalized | Final | Notes |\n|---|---|---|---|\n| `queued` | queued | no | |\n"
            "| `failed`, `rejected` | failed | yes | `read` is noted |\n| `Failed` | undelivered | yes | |\n"
            "### Callbacks\n| `later` | sent |\n## Sendblue\n### Statuses\n| v | n |\n|---|---|\n| `SENT` | sent |\n")
    assert status_table(text, "Plivo") == {"queued": {"queued"}, "failed": {"failed"}, "rejected": {"failed"},
                                           "Failed": {"undelivered"}}
    assert status_table(text, "Sendblue") == {"SENT": {"sent"}}


def test_examples_are_json_where_the_documentation_says_so():
    assert json.loads(SENDBLUE_EXAMPLE)["status"] == "DELIVERED"
    assert json.loads(BANDWIDTH_EXAMPLE)["state"] == "sent"
