"""Replies are never lost: for every provider, an inbound message correctly signed (or carrying the sender's
callback credentials) and built as the emulator builds it, from any address (a valid number, a short code, an
alphanumeric sender ID, a number of a range phonenumbers calls invalid, garbage) with any text and media, posted
through Django's test client to the sender's inbound webhook, is answered

- 200, and then an inbound Message with the provider's id and that body exists; or
- 400, only when a field holds what no column of ours stores and no provider sends: a NUL character, or a lone
  UTF-16 surrogate (which only JSON can carry, as an escape);

and never 5xx."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import Message
from messaging.providers import PROVIDERS, provider_for
from messaging.sandbox import bandwidth, cloudvno, fonedynamics, plivo, sendblue
from messaging.sandbox.core import Inbound

pytestmark = pytest.mark.django_db

EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _plivo(asked: Inbound, message_id: str, credentials: dict) -> dict:
    return plivo.inbound_callback(asked, message_id, credentials["auth_token"])


def _cloudvno(asked: Inbound, message_id: str, credentials: dict) -> dict:
    return cloudvno.inbound_callback(asked, message_id, credentials["webhook_secret"])


def _sendblue(asked: Inbound, message_id: str, credentials: dict) -> dict:
    return sendblue.inbound_callback(asked, message_id, credentials["signing_secret"])


def _bandwidth(asked: Inbound, message_id: str, credentials: dict) -> dict:
    return bandwidth.inbound_callback(asked, message_id)


def _fonedynamics(asked: Inbound, message_id: str, credentials: dict) -> dict:
    return fonedynamics.inbound_callback(asked, message_id)


# The emulator's builder of each provider's inbound callback (its wire format and signature), and how many media
# URLs one inbound message may carry there.
BUILDERS = {"plivo": _plivo, "cloudvno": _cloudvno, "sendblue": _sendblue, "bandwidth": _bandwidth,
            "fonedynamics": _fonedynamics}
MAX_MEDIA = {"plivo": 3, "cloudvno": 3, "sendblue": 1, "bandwidth": 3, "fonedynamics": 0}

# ---- what is generated ----

VALID_NUMBERS = st.one_of(
    st.integers(100, 199).map(lambda n: f"+12125550{n}"),
    st.sampled_from(["+61488023555", "+447700900123", "+33612345678", "+1 (212) 555-0123", "12125550123"]),
)
SHORT_CODES = st.from_regex(r"\A[0-9]{3,8}\Z")
ALPHANUMERICS = st.one_of(st.sampled_from(["ACME", "Vodafone", "Vodafone UK", "INFO", "Bank-Alert"]),
                          st.from_regex(r"\A[A-Za-z][A-Za-z0-9 ]{0,10}\Z"))
INVALID_RANGES = st.one_of(
    st.sampled_from(["+1 555 010 0000", "+15550100000", "+999123456", "+0000000000", "+1 000 000 0000",
                     "+12345678901234567890"]),
    st.from_regex(r"\A\+999[0-9]{3,13}\Z"),
)
# Garbage: any text (control characters included).
GARBAGE = st.one_of(st.text(max_size=40), st.text(st.characters(codec="utf-8"), max_size=40),
                    st.text(st.characters(min_codepoint=0, max_codepoint=0x20), max_size=5))
ADDRESSES = st.one_of(VALID_NUMBERS, SHORT_CODES, ALPHANUMERICS, INVALID_RANGES, GARBAGE)
TEXTS = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", "STOP", " stop ", "START", "HELP", "Stop.", "\U0001f642\U0001f44d", "line\nbreak\r\n"]),
    st.builds(lambda piece, n: (piece * n)[:5000], st.sampled_from(["x", "\U0001f642", "é ", "STOP "]),
              st.integers(1000, 5000)),
)
MEDIA = st.lists(st.sampled_from(["https://media.example/a.jpg", "https://media.example/b.png",
                                  "https://media.example/c.gif?size=large"]), max_size=3)


def _unstorable(provider: str):
    """Values no column of ours stores: with a NUL; with a lone surrogate where the provider's body can carry one
    at all (JSON, as an escape; a form body is UTF-8 text, which cannot encode one)."""
    nul = st.sampled_from(["\x00", "STOP\x00", "+1212555\x000123"])
    return nul if provider in ("plivo", "cloudvno") else st.one_of(nul, st.sampled_from(["\ud800", "ok \udfff"]))


def unstorable(*values: str) -> bool:
    """What no column of ours stores and no provider sends: a NUL, a lone surrogate."""
    return any("\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value) for value in values)


def _post(client, spec: dict):
    """The emulator's callback, posted as it would be over HTTP: form fields URL-encoded, JSON as JSON."""
    path = urlsplit(spec["url"]).path
    if "json" in spec:
        return client.post(path, data=json.dumps(spec["json"]), content_type="application/json",
                           headers=spec["headers"])
    return client.post(path, data=urlencode(spec["data"]), content_type="application/x-www-form-urlencoded",
                       headers=spec["headers"])


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_an_inbound_message_from_any_address_is_stored_or_refused_for_a_reason(make_sender, client, provider):
    sender = make_sender(provider)
    path = reverse("messaging:webhook_inbound", args=[provider, sender.uuid])
    # The URL as the provider is given it: with the sender's callback credentials where its provider needs them.
    url = provider_for(sender).callback_url(f"http://testserver{path}")

    @EXAMPLES
    @given(writer=st.one_of(ADDRESSES, _unstorable(provider)), text=st.one_of(TEXTS, _unstorable(provider)),
           media=MEDIA.map(lambda urls: urls[:MAX_MEDIA[provider]]))
    def check(writer: str, text: str, media: list[str]):
        message_id = f"in-{uuid.uuid4().hex}"
        asked = Inbound.read({"provider": provider, "url": url, "from": writer, "to": sender.address, "text": text,
                              "media": media})
        response = _post(client, BUILDERS[provider](asked, message_id, sender.credentials))
        assert response.status_code < 500, (writer, text, response.content)
        if unstorable(writer, text):
            assert response.status_code == 400, (writer, text, response.content)
            assert not Message.objects.filter(provider_message_id=message_id).exists()
            return
        assert response.status_code == 200, (writer, text, response.content)
        reply = Message.objects.get(sender=sender, provider_message_id=message_id)
        assert (reply.direction, reply.status, reply.body, reply.media_urls) == ("inbound", "received", text, media)

    check()
