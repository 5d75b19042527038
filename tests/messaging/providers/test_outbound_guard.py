"""Outbound calls go to public addresses only: provider API calls (with their credentials), "Check credentials"
and the media size checks are refused before connecting when a URL's host is, or resolves to, a loopback,
private, link-local or other internal address; redirects are taken hop by hop, each one checked; the address
checked is the one connected to. OUTBOUND_ALLOWED_HOSTS lets listed hosts through (the test suite lists
127.0.0.1: here each test sets it itself)."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from messaging.models import Message
from messaging.providers.base import (
    HttpCall,
    OutboundRefusedError,
    PermanentError,
    SenderConfig,
    TransientError,
)
from messaging.providers.base.http import perform
from messaging.providers.plivo import PlivoProvider
from messaging.selectors import senders_media_problems

CREDENTIALS = {"auth_id": "MAGUARDTEST0001", "auth_token": "guard-secret-token-7531"}


# ---- what the tests observe: connections attempted, a listener that counts what reached it ----

_watching: dict[int, list] = {}


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        seen = _watching.get(threading.get_ident())
        if seen is not None:
            seen.append(args[1])


sys.addaudithook(_audit)  # an audit hook cannot be removed: it records only while a test watches its thread


class Connects:
    """The addresses this thread's sockets try to connect to (Python's audit event ``socket.connect``)."""

    def __enter__(self) -> list:
        self.seen: list = []
        _watching[threading.get_ident()] = self.seen
        return self.seen

    def __exit__(self, *exc) -> None:
        _watching.pop(threading.get_ident(), None)


class Listener:
    """A bare TCP listener that never accepts: ``reached()`` tells whether any connection got to it (a completed
    connection waits in its backlog, so a non-blocking accept finds it)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"

    def reached(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def no_internal(settings):
    """Production's setting: no host may be internal."""
    settings.OUTBOUND_ALLOWED_HOSTS = []
    return settings


def _adapter(base_url: str) -> PlivoProvider:
    return PlivoProvider(SenderConfig(address="+14155550100", credentials=dict(CREDENTIALS), base_url=base_url))


def _refusal(base_url: str) -> tuple[OutboundRefusedError, list]:
    with Connects() as seen, pytest.raises(OutboundRefusedError) as caught:
        _adapter(base_url).check_credentials()
    return caught.value, seen


# ---- refused before connecting, with the host and the reason ----


@pytest.mark.parametrize("url,said", [
    ("http://127.0.0.1:8025", "127.0.0.1 is a loopback address"),
    ("http://localhost:8025", "localhost resolves to a loopback address 127.0.0.1"),
    ("http://[::1]:8025", "::1 is a loopback address"),
    ("http://10.0.0.5", "10.0.0.5 is a private address"),
    ("https://172.16.4.2", "172.16.4.2 is a private address"),
    ("http://192.168.1.20:8080", "192.168.1.20 is a private address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address (cloud instance metadata)"),
    ("http://169.254.10.1", "169.254.10.1 is a link-local address"),
    ("http://[fe80::1]", "fe80::1 is a link-local address"),
    ("http://[fd12:3456::1]", "fd12:3456::1 is a private address"),
    ("http://[::ffff:127.0.0.1]:8025", "::ffff:127.0.0.1 is a loopback address (127.0.0.1 written as IPv6)"),
    ("http://[::ffff:10.1.2.3]", "::ffff:10.1.2.3 is a private address (10.1.2.3 written as IPv6)"),
    ("http://0.0.0.0:8025", "0.0.0.0 is an unspecified address"),
    ("http://[::]", ":: is an unspecified address"),
    ("http://100.64.0.7", "100.64.0.7 is a shared (carrier-grade NAT) address"),
    ("http://224.0.0.251", "224.0.0.251 is a multicast address"),
    ("http://240.0.0.1", "240.0.0.1 is a reserved address"),
    ("http://2130706433:8025", "2130706433 resolves to a loopback address 127.0.0.1"),
    ("http://0177.0.0.1:8025", "0177.0.0.1 resolves to a loopback address 127.0.0.1"),
    ("http://0x7f.1:8025", "0x7f.1 resolves to a loopback address 127.0.0.1"),
])
def test_an_internal_address_is_refused_before_connecting_naming_host_and_reason(no_internal, url, said):
    refused, seen = _refusal(url)
    assert seen == []  # not one connection attempted
    assert said in refused.message
    assert refused.message.startswith("not connected: ")
    assert CREDENTIALS["auth_token"] not in str(refused) and CREDENTIALS["auth_id"] not in str(refused)


def test_a_refusal_is_a_permanent_configuration_error_and_logs_no_secret(no_internal, caplog):
    refused, _ = _refusal("http://10.0.0.5")
    assert isinstance(refused, PermanentError) and not refused.recipient_side
    assert (refused.provider, refused.code) == ("plivo", "configuration")
    assert "10.0.0.5 is a private address" in caplog.text
    assert CREDENTIALS["auth_token"] not in caplog.text


def test_only_http_and_https_are_called(no_internal):
    for url in ("ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/"):
        with Connects() as seen, pytest.raises(OutboundRefusedError, match="URLs are not called, only http and"):
            perform(HttpCall("GET", url), url, provider="plivo", redact=str)
        assert seen == []


def test_the_default_is_that_no_host_is_internal(no_internal, listener):
    """The setting empty (production): a server on this machine is not reached, on any port."""
    refused, seen = _refusal(listener.url)
    assert seen == [] and not listener.reached()
    assert "127.0.0.1 is a loopback address" in refused.message


# ---- OUTBOUND_ALLOWED_HOSTS: a host on any port, or host:port on that port only ----


class Answer(BaseHTTPRequestHandler):
    """Answers anything with 200 and a small JSON body; ``/to?url`` redirects to ``url``."""

    def _answer(self):
        if self.path.startswith("/to?"):
            self.send_response(302)
            self.send_header("Location", self.path[4:])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"api_id": "x", "cash_credits": "1.0"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer  # noqa: N815 - the http.server hooks

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_an_allowed_host_is_reached_on_any_port_and_a_host_port_entry_on_that_port_only(settings, server, listener):
    port = int(server.rsplit(":", 1)[1])
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    assert "accepted the credentials" in _adapter(server).check_credentials()

    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    assert "accepted the credentials" in _adapter(server).check_credentials()
    refused, seen = _refusal(listener.url)  # the same host on another port
    assert seen == [] and not listener.reached()
    assert "127.0.0.1 is a loopback address" in refused.message

    settings.OUTBOUND_ALLOWED_HOSTS = [f"localhost:{port}"]  # compared with the host as written in the URL
    assert "accepted the credentials" in _adapter(f"http://localhost:{port}").check_credentials()
    refused, seen = _refusal(server)
    assert seen == [] and "127.0.0.1 is a loopback address" in refused.message


def test_a_malformed_entry_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:emulator"]
    with pytest.raises(ImproperlyConfigured, match="127.0.0.1:emulator"):
        _adapter("http://127.0.0.1:9").check_credentials()


# ---- redirects: taken one hop at a time, each checked ----


def test_a_redirect_to_an_internal_address_is_refused_at_the_redirect(settings, server, listener):
    """The first host is let through (as a public one would be); it redirects to another local port, which
    is not: that hop is refused and the second server gets no connection."""
    port = int(server.rsplit(":", 1)[1])
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    adapter = _adapter(server)
    with Connects() as seen, pytest.raises(OutboundRefusedError) as caught:
        adapter.request(HttpCall("HEAD", f"{server}/to?{listener.url}/secret", allow_redirects=True))
    assert caught.value.message.startswith("not connected: redirected to 127.0.0.1, and 127.0.0.1 is a loopback")
    assert not listener.reached()
    assert [address[1] for address in seen] == [port]  # the first hop only

    other = Listener("127.0.0.2")  # another loopback address, same allowed port number or not: not listed
    try:
        with pytest.raises(OutboundRefusedError, match="127.0.0.2 is a loopback address"):
            adapter.request(HttpCall("HEAD", f"{server}/to?{other.url}/", allow_redirects=True))
        assert not other.reached()
    finally:
        other.close()


def test_a_redirect_to_another_scheme_or_too_many_hops_are_refused(settings, server):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    adapter = _adapter(server)
    with pytest.raises(OutboundRefusedError, match="redirected, and file: URLs are not called"):
        adapter.request(HttpCall("HEAD", f"{server}/to?file:///etc/passwd", allow_redirects=True))
    url = "/"
    for _ in range(7):
        url = f"{server}/to?{url}"
    with pytest.raises(PermanentError, match="more than 5 redirects"):
        adapter.request(HttpCall("HEAD", url, allow_redirects=True))
    # Five hops are followed, to the final answer.
    url = "/"
    for _ in range(5):
        url = f"{server}/to?{url}"
    assert adapter.request(HttpCall("HEAD", url, allow_redirects=True))[0] == 200


def test_provider_calls_never_follow_redirects(settings, server):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    status, _, headers = _adapter(server).request(HttpCall("GET", f"{server}/to?/elsewhere"))
    assert status == 302 and headers["location"] == "/elsewhere"


# ---- the address checked is the one connected to ----


@pytest.fixture
def resolver(monkeypatch):
    """``socket.getaddrinfo`` answering for ``*.guard.test`` from a script of answers, one per call (the last
    one repeats); other names resolve as usual. Records the names asked."""
    real = socket.getaddrinfo
    scripts: dict[str, list[list[str]]] = {}
    asked: list[str] = []

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host.endswith(".guard.test"):
            asked.append(host)
            script = scripts.get(host)
            if script is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            addresses = script.pop(0) if len(script) > 1 else script[0]
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return scripts, asked


class _Unreachable(socket.socket):
    """A socket whose connection to a public address (example.com's) is refused as if that host were down: no
    packet leaves the machine. The attempt is recorded as a real one would be; every other connection is real."""

    PUBLIC = "93.184.215.14"

    def connect(self, address):
        if address[0] == self.PUBLIC:
            _audit("socket.connect", (self, address))
            raise ConnectionRefusedError(111, "Connection refused")
        return super().connect(address)


def test_dns_rebinding_the_connection_goes_to_the_address_checked(no_internal, resolver, listener, monkeypatch):
    """The resolver answers a public address first and a local one to any later question: the connection goes to
    the public address that was checked (here it refuses), never to the local one."""
    scripts, asked = resolver
    scripts["rebind.guard.test"] = [[_Unreachable.PUBLIC], ["127.0.0.1"]]
    monkeypatch.setattr(socket, "socket", _Unreachable)
    with Connects() as seen, pytest.raises(TransientError, match="could not connect"):
        _adapter(f"http://rebind.guard.test:{listener.port}").check_credentials()
    assert asked == ["rebind.guard.test"]  # resolved once
    assert seen == [(_Unreachable.PUBLIC, listener.port)]
    assert not listener.reached()


def test_every_address_a_name_resolves_to_is_checked(no_internal, resolver):
    scripts, _ = resolver
    scripts["mixed.guard.test"] = [[_Unreachable.PUBLIC, "10.0.0.5"]]
    scripts["six.guard.test"] = [[_Unreachable.PUBLIC, "::ffff:169.254.169.254"]]
    refused, seen = _refusal("https://mixed.guard.test")
    assert seen == [] and "mixed.guard.test resolves to a private address 10.0.0.5" in refused.message
    refused, seen = _refusal("https://six.guard.test")
    assert seen == [] and "six.guard.test resolves to a link-local address ::ffff:a9fe:a9fe (169.254.169.254 " \
                          "written as IPv6, cloud instance metadata)" in refused.message


# ---- where staff meet it: Check credentials, media checks, the send path ----


@pytest.mark.django_db
def test_check_credentials_against_a_private_base_url_reports_the_refusal_and_connects_nowhere(
        admin_client, make_sender, no_internal, listener):
    local = make_sender("plivo", name="Local line", api_base_url=listener.url, credentials=dict(CREDENTIALS))
    private = make_sender("plivo", name="Private line", api_base_url="http://10.20.30.40:8080",
                          credentials=dict(CREDENTIALS))
    with Connects() as seen:
        page = admin_client.post(reverse("admin:messaging_sender_changelist"), {
            "action": "check_credentials", "_selected_action": [local.pk, private.pk]}, follow=True)
    text = page.content.decode()
    assert "Local line: not checked, its API base URL was refused: not connected: 127.0.0.1 is a loopback " \
           "address" in text
    assert "Private line: not checked, its API base URL was refused: not connected: 10.20.30.40 is a private " \
           "address" in text
    assert seen == [] and not listener.reached()
    assert CREDENTIALS["auth_token"] not in text


@pytest.mark.django_db
def test_media_on_a_redis_port_is_refused_without_connecting(make_sender, no_internal, listener):
    sender = make_sender("plivo")
    urls = ["http://127.0.0.1:6379/", f"{listener.url}/picture.png", "http://169.254.169.254/latest/meta-data/"]
    with Connects() as seen:
        problems, warnings = senders_media_problems(senders=[sender], urls=urls)
    assert seen == [] and not listener.reached()
    assert problems[0] == ("http://127.0.0.1:6379/ was not checked (not connected: 127.0.0.1 is a loopback address; "
                           "this server connects to public addresses only); providers fetch media from public "
                           "addresses.")
    assert f"{listener.url}/picture.png was not checked" in problems[1]
    assert "169.254.169.254 is a link-local address (cloud instance metadata)" in problems[2]
    assert warnings == []


@pytest.mark.django_db
def test_a_message_whose_sender_points_at_an_internal_address_fails_at_once(
        engine, make_sender, make_audience, make_campaign):
    from campaigns.services import campaign_launch
    from messaging.services import message_send

    sender = make_sender("plivo", api_base_url="http://192.168.0.10:8025")
    campaign = make_campaign(sender, [make_audience(1)])
    engine.OUTBOUND_ALLOWED_HOSTS = []
    campaign_launch(campaign=campaign)
    message = Message.objects.get(campaign=campaign)
    with Connects() as seen:
        assert message_send(message_id=message.pk) == "failed"
    assert not [address for address in seen if address[0] == "192.168.0.10"]  # (Redis, if it is the broker, is)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error_code) == (Message.Status.FAILED, 1, "configuration")
    assert "192.168.0.10 is a private address" in message.error_message
    assert message_send(message_id=message.pk) == "skipped"  # final: never tried again


def test_the_guard_does_not_stand_in_the_way_of_public_hosts(no_internal, resolver, monkeypatch):
    """A public host is connected to (here its connection is refused: nothing leaves the machine), and a name
    that does not resolve is a transient failure, as before."""
    scripts, _ = resolver
    scripts["public.guard.test"] = [[_Unreachable.PUBLIC]]
    monkeypatch.setattr(socket, "socket", _Unreachable)
    with Connects() as seen, pytest.raises(TransientError, match="could not connect"):
        _adapter("https://public.guard.test").check_credentials()
    assert seen == [(_Unreachable.PUBLIC, 443)]
    with pytest.raises(TransientError, match="could not connect"):
        _adapter("http://nowhere.guard.test").check_credentials()
