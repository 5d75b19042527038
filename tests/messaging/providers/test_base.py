"""The shared plumbing, against local HTTP servers: the total deadline of a provider call, media size checks
before queueing, and the rate-limit fallback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from messaging.providers.base import AmbiguousError, SenderConfig
from messaging.providers.cloudvno import CloudvnoProvider
from messaging.providers.plivo import PlivoProvider
from messaging.providers.sendblue import SendblueProvider
from tests.messaging.providers.contract import outbound_message
from tests.support import MediaHandler, free_port


def _adapter(cls, base_url: str = "http://127.0.0.1:9"):
    return cls(SenderConfig(address="+14155550100", credentials={k: f"test-{k}-value" for k in cls.credential_keys},
                            base_url=base_url))


# ---- the total deadline: a slow drip cannot stretch a call ----


class DripServer:
    """Accepts connections and answers one byte at a time, ``interval`` apart: each read gets data well within
    the read timeout, so only a total deadline ends the call. ``headers_too``: the status line and headers drip
    as well."""

    def __init__(self, interval: float = 0.2, headers_too: bool = False):
        self.interval = interval
        self.headers_too = headers_too
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        body = b'{"message": "message(s) queued", "message_uuid": ["u-1"], "api_id": "a-1"}' + b" " * 200
        head = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        try:
            conn.recv(65536)
            if not self.headers_too:
                conn.sendall(head)
                head = b""
            for i in range(len(head + body)):
                if self.stop.is_set():
                    break
                conn.sendall((head + body)[i : i + 1])
                time.sleep(self.interval)
        except OSError:
            pass  # the client cut the connection: what the deadline is for
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.mark.parametrize("headers_too", [False, True], ids=["body drips", "headers drip"])
def test_a_call_never_outlasts_connect_plus_read_timeout(settings, headers_too):
    settings.PROVIDER_TIMEOUT = 1.0
    settings.PROVIDER_CONNECT_TIMEOUT = 0.5
    server = DripServer(interval=0.2, headers_too=headers_too)  # the whole answer would take over 50 s
    try:
        adapter = _adapter(PlivoProvider, server.url)
        started = time.monotonic()
        with pytest.raises(AmbiguousError) as info:
            adapter.send(outbound_message())
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert elapsed < 1.5 + 0.7, elapsed  # the deadline, plus scheduling slack
    assert "1.5 s" in str(info.value)


def test_the_deadline_holds_in_a_forked_worker_process(settings):
    """Celery's prefork pool forks after the parent may have made calls: the child runs its own watchdog."""
    import multiprocessing

    settings.PROVIDER_TIMEOUT = 1.0
    settings.PROVIDER_CONNECT_TIMEOUT = 0.5
    server = DripServer(interval=0.2)
    try:
        with pytest.raises(AmbiguousError):  # the parent's watchdog is running before the fork
            _adapter(PlivoProvider, server.url).send(outbound_message())

        def child(answers):
            started = time.monotonic()
            try:
                _adapter(PlivoProvider, server.url).send(outbound_message())
                answers.put("answered")
            except AmbiguousError:
                answers.put(time.monotonic() - started)

        answers = multiprocessing.get_context("fork").Queue()
        process = multiprocessing.get_context("fork").Process(target=child, args=(answers,))
        process.start()
        elapsed = answers.get(timeout=20)
        process.join(10)
    finally:
        server.close()
    assert isinstance(elapsed, float) and elapsed < 1.5 + 0.7, elapsed


def test_a_prompt_answer_is_not_cut(settings, make_sender, sandbox):
    settings.PROVIDER_TIMEOUT = 1.0
    settings.PROVIDER_CONNECT_TIMEOUT = 0.5
    from messaging.providers import provider_for

    sender = make_sender("plivo")
    adapter = provider_for(sender)
    for _ in range(3):  # kept-alive connections are reused after a watched call
        assert adapter.send(outbound_message()).provider_message_id
    time.sleep(1.7)  # past the deadline of the calls above: their watchdogs must not touch a pooled connection
    assert adapter.send(outbound_message()).provider_message_id


# ---- media size, checked before a message is queued ----


def test_a_media_file_over_the_limit_is_a_problem_naming_url_size_and_limit(media_server, settings):
    adapter = _adapter(SendblueProvider)  # 5 MB per file
    problems, warnings = adapter.check_media([f"{media_server}/big.png"])
    assert warnings == []
    assert len(problems) == 1
    assert f"{media_server}/big.png" in problems[0]
    assert "6,291,456 bytes" in problems[0] and "5,242,880 bytes" in problems[0]
    assert adapter.check_media([f"{media_server}/small.png"]) == ([], [])
    # redirects are followed to the file itself
    problems, _ = adapter.check_media([f"{media_server}/moved.png"])
    assert problems and f"{media_server}/moved.png" in problems[0]


def test_plivo_limits_the_total_of_one_message(media_server):
    adapter = _adapter(PlivoProvider)  # "The total size of the MMS must not exceed 5MB"
    urls = [f"{media_server}/two.png", f"{media_server}/two.png?b", f"{media_server}/small.png"]
    assert adapter.check_media(urls[:2]) == ([], [])
    problems, warnings = adapter.check_media(urls + [f"{media_server}/two.png?c"])
    assert warnings == [] and len(problems) == 1
    assert "6,292,456 bytes" in problems[0] and "5,242,880 bytes" in problems[0]


def test_unknown_sizes_are_warnings_that_do_not_block(media_server):
    adapter = _adapter(SendblueProvider)
    closed = f"http://127.0.0.1:{free_port()}/gone.png"
    problems, warnings = adapter.check_media(
        [f"{media_server}/unsized.png", f"{media_server}/missing.png", closed, "ftp://example.com/a.png"]
    )
    assert problems == []
    assert len(warnings) == 4
    assert "no Content-Length" in warnings[0] and "HTTP 404" in warnings[1] and closed in warnings[2]
    assert "not an http(s) URL" in warnings[3]


def test_no_request_when_the_provider_documents_no_size_limit(media_server):
    assert _adapter(CloudvnoProvider).check_media([f"{media_server}/big.png"]) == ([], [])
    assert MediaHandler.requests == []
