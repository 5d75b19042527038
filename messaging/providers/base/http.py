"""HTTP for every adapter: one pooled keep-alive session per worker process, the deadline watchdog that cuts a
call still running past connect timeout + read timeout, and ``perform``, which makes one call and turns a call
without an answer into a TransientError (never connected) or an AmbiguousError (the request may have arrived).
Calls are logged with secrets redacted.

Every connection of the session goes to a public address only (``outbound``): a host that is or resolves to a
loopback, private, link-local or other internal address is refused before connecting, with an
OutboundRefusedError (permanent), unless OUTBOUND_ALLOWED_HOSTS lists it. Redirects are never followed by
``requests``: a call that follows them (``HttpCall.allow_redirects``, the media checks) takes each hop itself,
at most ``MAX_REDIRECTS``, and each hop's connection is checked like the first."""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .errors import AmbiguousError, PermanentError, TransientError
from .normalized import HttpCall
from .outbound import MAX_REDIRECTS, SCHEMES, OutboundRefusedError, PublicOnlyConnectionMixin

logger = logging.getLogger("messaging.providers")

_session_lock = threading.Lock()
_session: requests.Session | None = None
_session_pid: int | None = None

# The connection a thread's provider call is using, so that a watchdog can cut it at the call's deadline.
_in_flight = threading.local()


class _CallWatch:
    """One provider call's deadline. ``requests``' read timeout applies to each socket read, so an answer that
    trickles in a byte at a time could outlast it indefinitely; at the deadline the watchdog shuts the call's
    socket down, which ends whatever read is blocked, and the call is reported as expired."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = 0.0
        self.connection: HTTPConnection | None = None
        self.expired = False
        self._done = False
        self._lock = threading.Lock()

    def __enter__(self) -> _CallWatch:
        _in_flight.watch = self
        self.deadline = time.monotonic() + self.seconds
        _watchdog.watch(self)
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._done = True  # from here the watchdog leaves the (pooled, reusable) connection alone
        _in_flight.watch = None

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Watchdog:
    """One thread per process that cuts the calls still running at their deadline. Written by hand because it
    is a heap and a condition variable; a timer thread per call cost more CPU than the rest of a send's
    bookkeeping. Calls that finish in time stay in the heap until their deadline and are then dropped."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker starts its own thread, clean lock

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _CallWatch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: _CallWatch) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="provider-call-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._heap[0][2] is call:
                self._cond.notify()  # an earlier deadline than the one being waited for

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                due = heapq.heappop(self._heap)[2]
            due.expire()


_watchdog = _Watchdog()


class _WatchedConnectionMixin:
    def request(self, *args, **kwargs):
        watch = getattr(_in_flight, "watch", None)
        if watch is not None:
            watch.connection = self
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_WatchedConnectionMixin, PublicOnlyConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, PublicOnlyConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections tell the calling thread's watchdog which socket to cut, and connect
    to public addresses only (``outbound``)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


def http_session() -> requests.Session:
    """One keep-alive connection pool per process, created again after a fork."""
    global _session, _session_pid
    pid = os.getpid()
    if _session is None or _session_pid != pid:
        with _session_lock:
            if _session is None or _session_pid != pid:
                from django.conf import settings

                pool = max(10, getattr(settings, "SEND_THREADS", 16) * 2)
                session = requests.Session()
                # No proxy or .netrc from the environment: a proxy would make the connection that is checked
                # the proxy's, not the URL's host's; .netrc could add credentials to a URL staff typed.
                session.trust_env = False
                # No automatic retries: a retried send could be sent twice. We decide what to retry.
                adapter = _WatchedAdapter(pool_connections=20, pool_maxsize=pool, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = "campaign-messaging/0.1"
                _session, _session_pid = session, pid
    return _session


def _refused_before_sending(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the provider cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, (NewConnectionError, ConnectTimeoutError))



def _follow(call: HttpCall, url: str, *, timeout: tuple[float, float]) -> requests.Response:
    """Make the call; when it follows redirects, take each hop here (at most MAX_REDIRECTS), each one to an
    http(s) URL and through a connection checked like the first. A hop to another origin carries neither the
    call's headers nor its credentials; a 303, or a 301/302 after a POST, goes on as a GET without a body."""
    method, json, data, params, headers, auth = (call.method, call.json, call.data, call.params, call.headers,
                                                 call.auth)
    origin = _origin(url)
    for hop in range(MAX_REDIRECTS + 1):
        scheme = urlsplit(url).scheme.lower()
        if scheme not in SCHEMES:
            reason = f"{scheme or 'a scheme-less'}: URLs are not called, only http and https"
            raise OutboundRefusedError(reason, host=urlsplit(url).hostname or "", redirected=bool(hop))
        try:
            response = http_session().request(method, url, json=json, data=data, params=params, headers=headers,
                                              auth=auth, timeout=timeout, allow_redirects=False)
        except OutboundRefusedError as exc:
            if hop:
                raise OutboundRefusedError(exc.reason, host=exc.host, redirected=True) from None
            raise
        if not (call.allow_redirects and response.is_redirect):
            return response
        response.close()
        url = urljoin(url, response.headers["location"])
        params = None  # the new URL is complete as the server gave it
        if (response.status_code == 303 and method != "HEAD") or (response.status_code in (301, 302)
                                                                   and method == "POST"):
            method, json, data = "GET", None, None
        if _origin(url) != origin:
            headers, auth = {}, None
    raise PermanentError(f"more than {MAX_REDIRECTS} redirects", code="redirects")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def perform(
    call: HttpCall,
    url: str,
    *,
    provider: str,
    redact: Callable[[str], str],
    timeout: float | None = None,
    connect_timeout: float | None = None,
) -> tuple[int, Any, dict]:
    """Perform one call to ``url`` for the provider whose code is ``provider``; ``redact`` removes its secrets from
    what is logged. See ``Provider.request``."""
    from django.conf import settings

    read_timeout = timeout or settings.PROVIDER_TIMEOUT
    connect = connect_timeout or settings.PROVIDER_CONNECT_TIMEOUT
    started = time.monotonic()
    watch = _CallWatch(connect + read_timeout)
    try:
        with watch:
            response = _follow(call, url, timeout=(connect, read_timeout))
    except PermanentError as exc:  # refused before connecting, or too many redirects
        exc.provider = provider
        logger.warning("%s %s %s -> refused: %s", provider, call.method, redact(url), exc.message)
        raise
    except requests.RequestException as exc:
        elapsed = (time.monotonic() - started) * 1000
        if watch.expired:
            logger.warning("%s %s %s -> cut at the %.3g s deadline (%.0f ms)", provider, call.method,
                           redact(url), watch.seconds, elapsed)
            raise AmbiguousError(f"no complete answer within {watch.seconds:g} s", provider=provider) from None
        if isinstance(exc, requests.ConnectionError) and _refused_before_sending(exc):
            logger.warning("%s %s %s -> not connected (%.0f ms)", provider, call.method, redact(url), elapsed)
            raise TransientError("could not connect to the provider", provider=provider) from None
        if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            logger.warning("%s %s %s -> connection lost (%.0f ms)", provider, call.method, redact(url), elapsed)
            raise AmbiguousError("connection lost after the request was sent", provider=provider) from None
        if isinstance(exc, requests.Timeout):
            logger.warning("%s %s %s -> timed out (%.0f ms)", provider, call.method, redact(url), elapsed)
            raise AmbiguousError("no answer within the timeout", provider=provider) from None
        raise TransientError(f"request error: {type(exc).__name__}", provider=provider) from None
    elapsed = (time.monotonic() - started) * 1000
    headers = {k.lower(): v for k, v in response.headers.items()}
    data: Any
    if not response.content:
        data = None
    else:
        try:
            data = response.json()
        except ValueError:
            data = response.text
    level = logging.INFO if response.status_code < 400 else logging.WARNING
    if logger.isEnabledFor(level):
        body = response.text[:500] if response.status_code >= 400 else ""
        logger.log(
            level,
            "%s %s %s -> %s (%.0f ms) %s",
            provider,
            call.method,
            redact(url),
            response.status_code,
            elapsed,
            redact(body),
        )
    return response.status_code, data, headers
