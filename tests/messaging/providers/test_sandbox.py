"""The emulator's own promises: its `seed` option makes every random choice repeatable, error codes included;
`POST /sandbox/inbound` posts every kind of inbound message as each provider documents it, and our adapters read
what it posts; the ledger shows every message sent."""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from messaging.providers import PROVIDERS, provider_for
from messaging.providers.base import CallbackRequest
from messaging.sandbox.core import Inbound
from messaging.sandbox.plivo import inbound_callback as plivo_inbound_callback
from tests.messaging.providers.contract import emulator_url, outbound_message
from tests.support import free_port, wait_until

pytestmark = pytest.mark.django_db


def _cloudvno_codes(sandbox, sender, adapter, ids):
    """CloudVNO documents no lookup: the emulator's message list shows the codes."""
    request = urllib.request.Request(f"{sandbox.url}/v1/messages?limit=100",
                                     headers={"Authorization": f"Bearer {sender.credentials['api_key']}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        rows = {row["sid"]: row.get("error_code") for row in json.loads(response.read())["messages"]}
    return [rows.get(pid) for pid in ids]


def _looked_up_codes(sandbox, sender, adapter, ids):
    return [adapter.lookup(pid).error_code for pid in ids]


# provider -> (the outcome whose error code the emulator picks at random, how to read the codes back)
CASES = {
    "cloudvno": ("failed", _cloudvno_codes),
    "plivo": ("failed", _looked_up_codes),
    "fonedynamics": ("undelivered", _looked_up_codes),
    "bandwidth": ("undelivered", _looked_up_codes),
}


def _codes(sandbox, sender, provider: str, seed: int) -> list[str]:
    outcome, read = CASES[provider]
    sandbox.reset()
    # Callbacks duplicated and reordered at random, delivered in the background while later sends arrive: their
    # draws must not change the answers the seed gives.
    sandbox.config(seed=seed, callback_delay_ms=1, duplicate_callbacks=0.5, reorder_callbacks=0.5,
                   callback_retries=0, **{"delivered": 0.0, "undelivered": 0.0, "failed": 0.0, outcome: 1.0})
    adapter = provider_for(sender)
    closed = f"http://127.0.0.1:{free_port()}/status/"  # callbacks fail at once, between the sends
    ids = [adapter.send(outbound_message(message_id=n, to=f"+1212555{n:04d}", url=closed)).provider_message_id
           for n in range(12)]

    def codes():
        found = read(sandbox, sender, adapter, ids)
        return found if all(found) else None

    return wait_until(codes, timeout=10, message="every message's final status")


@pytest.mark.parametrize("provider", sorted(CASES))
def test_the_seed_makes_error_codes_repeatable(make_sender, sandbox, provider):
    sender = make_sender(provider)
    first = _codes(sandbox, sender, provider, seed=1234)
    again = _codes(sandbox, sender, provider, seed=1234)
    assert first == again
    assert len(set(first)) > 1  # still a random choice among the documented codes


# ---- inbound messages on demand ----


class CaptureHandler(BaseHTTPRequestHandler):
    """A webhook that answers 200 to anything and hands each request to the test (``server.received``)."""

    def do_POST(self):  # noqa: N802 - the http.server hook
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.put((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def capture():
    server = ThreadingHTTPServer(("127.0.0.1", 0), CaptureHandler)
    server.received = queue.Queue()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _captured(server) -> CallbackRequest:
    """The next request the emulator posted, as our webhook hands it to an adapter."""
    method, path, headers, body = server.received.get(timeout=10)
    kind = headers.get("content-type", "")
    return CallbackRequest(
        method=method, url=f"{server.url}{path}", headers=headers,
        query=parse_qsl(urlsplit(path).query, keep_blank_values=True),
        form=parse_qsl(body.decode(), keep_blank_values=True) if "form" in kind else [],
        json=json.loads(body) if "json" in kind else None, body=body,
    )


# What each provider's inbound message may carry: Sendblue one URL, Fone Dynamics (SMS only) none.
MEDIA = {
    "plivo": ("https://media.example/1.jpg", "https://media.example/2.png"),
    "cloudvno": ("https://media.example/1.jpg", "https://media.example/2.png"),
    "sendblue": ("https://media.example/1.jpg",),
    "bandwidth": ("https://media.example/1.jpg", "https://media.example/2.png"),
    "fonedynamics": (),
}


@pytest.mark.parametrize("writer", ["+12125550199", "898287", "ACME"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_an_inbound_message_is_posted_as_documented_and_our_adapter_reads_it(make_sender, sandbox, capture,
                                                                               provider, writer):
    sender = make_sender(provider)
    adapter = provider_for(sender)
    # With the sender's callback credentials in the URL where its provider needs them, and its credentials: the
    # emulator signs with the one its provider signs with.
    url = emulator_url(sender, f"{capture.url}/webhooks/{provider}/{sender.uuid}/inbound/")
    answer = sandbox.inbound(provider=provider, url=url, to=sender.address, text="Look \U0001f642",
                             media=list(MEDIA[provider]), **{"from": writer}, **sender.credentials)
    assert (answer["provider"], answer["forwarded"]) == (provider, True)

    request = _captured(capture)
    adapter.verify_callback(request)
    [event] = adapter.parse_callback(request)
    assert (event.direction, event.status, event.provider_message_id) == ("inbound", "received", answer["id"])
    assert (event.body, event.media_urls) == ("Look \U0001f642", MEDIA[provider])
    # As the provider writes them: Plivo's numbers have no "+".
    plain = provider == "plivo"
    assert event.recipient == (writer.lstrip("+") if plain else writer)
    assert event.to_address == (sender.address.lstrip("+") if plain else sender.address)


@pytest.mark.parametrize("text, intent", [
    ("STOP", "optout"), (" stop ", "optout"), ("Unsubscribe", "optout"), ("quit", "optout"),
    ("START", "optin"), ("yes", "optin"), ("HELP", "help"), ("info", "help"),
    ("Stop it please", ""), ("", ""), ("Hello", ""),
])
def test_plivo_names_the_intent_of_a_standard_keyword(text, intent):
    asked = Inbound.read({"provider": "plivo", "url": "https://example.com/in", "from": "+12125550199",
                          "to": "+14155550100", "text": text})
    fields = plivo_inbound_callback(asked, "uuid-1", "token")["data"]
    assert fields["MessageIntent"] == intent
    assert (fields["Type"], fields["Text"], fields["From"]) == ("sms", text, "12125550199")


def test_a_plivo_mms_carries_its_text_in_body_with_its_media():
    asked = Inbound.read({"provider": "plivo", "url": "https://example.com/in", "from": "12125550199",
                          "to": "14155550100", "text": "Look", "media": ["https://m/1.jpg", "https://m/2.png"]})
    fields = plivo_inbound_callback(asked, "uuid-1", "token")["data"]
    assert "Text" not in fields
    assert (fields["Type"], fields["Body"], fields["MediaCount"], fields["Media1"], fields["Media2"]) == (
        "mms", "Look", "2", "https://m/1.jpg", "https://m/2.png")


@pytest.mark.parametrize("data, error", [
    ({"provider": "nobody", "url": "http://127.0.0.1:9/"}, "unknown provider"),
    ({"provider": "plivo", "url": "http://127.0.0.1:9/", "text": "hi"}, "auth_token is required"),
    ({"provider": "cloudvno", "url": "http://127.0.0.1:9/", "text": "hi"}, "webhook_secret"),
    ({"provider": "sendblue", "url": "http://127.0.0.1:9/", "media": ["https://m/1.jpg", "https://m/2.jpg"]},
     "one URL"),
    ({"provider": "fonedynamics", "url": "http://127.0.0.1:9/", "media": ["https://m/1.jpg"]}, "SMS only"),
    ({"provider": "fonedynamics", "reply_to": "M-unknown", "text": "hi"}, "no message"),
    ({"provider": "bandwidth", "url": "http://127.0.0.1:9/", "media": "https://m/1.jpg"}, "list of URLs"),
    ({"provider": "bandwidth", "url": "http://127.0.0.1:9/", "from": 12125550199}, "from must be a string"),
])
def test_an_inbound_request_the_emulator_cannot_play_is_refused_saying_why(sandbox, data, error):
    with pytest.raises(urllib.error.HTTPError) as info:
        sandbox.inbound(**data)
    assert info.value.code == 400
    assert error in json.loads(info.value.read())["error"]


def test_without_a_url_nothing_is_posted(sandbox):
    answer = sandbox.inbound(provider="bandwidth", to="+13865245000", text="hi", **{"from": "+13233326955"})
    assert answer["id"] and answer["messageId"] == answer["id"] and answer["forwarded"] is False


# ---- the ledger ----


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_ledger_shows_every_message_sent_to_a_number_with_its_text(make_sender, sandbox, provider):
    sender = make_sender(provider)
    adapter = provider_for(sender)
    for n, (to, body) in enumerate([("+12125550101", "first"), ("+12125550102", "other"),
                                    ("+12125550101", "second")], start=1):
        adapter.send(outbound_message(message_id=n, to=to, body=body))
    rows = sandbox.ledger(detail=True)["messages"]
    assert [row["provider"] for row in rows] == [provider] * 3
    # `to` as the provider was given it (Plivo's without "+").
    assert [row["text"] for row in rows if row["to"].lstrip("+") == "12125550101"] == ["first", "second"]
