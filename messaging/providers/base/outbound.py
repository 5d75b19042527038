"""Outbound HTTP goes to public addresses only.

Every call the server makes (provider APIs with their credentials, the HEAD asking a media URL its size) goes
through the pooled session of ``http``, whose connections are made here: the URL's host is resolved once,
every address it resolves to is checked, and the socket is connected to one of those checked addresses, never
to a second answer of the resolver (no DNS rebinding between the check and the connection). TLS still
verifies the certificate against the URL's host name, which urllib3 keeps as the connection's ``host``.

Refused: loopback, private (RFC 1918, fc00::/7, fec0::/10), link-local (169.254/16 with the cloud metadata
address, fe80::/10), unspecified, multicast, reserved, shared (100.64/10, carrier-grade NAT) and the other
ranges that are not globally reachable, including IPv4 addresses written in IPv6 form (``::ffff:127.0.0.1``,
6to4, NAT64). Spellings such as ``2130706433`` or ``0177.0.0.1`` are what the resolver makes of them (here
127.0.0.1), so they are judged by the address they reach.

``OUTBOUND_ALLOWED_HOSTS`` lists the hosts that may be internal (the local emulator in development, the test
suite's servers). An entry ``host`` allows that host on any port, ``host:port`` on that port only
(``[::1]:8025`` for IPv6). It is compared with the URL's host as written, not with what it resolves to: an
entry ``127.0.0.1`` does not let ``localhost`` or ``2130706433`` through.

Written here rather than taken from a library: what is needed is a urllib3 connection whose connect resolves,
checks and connects to the checked address; the libraries that filter addresses either check before urllib3
resolves again (open to rebinding) or replace the HTTP client the deadline watchdog is built on.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .errors import PermanentError

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5  # hops a call that follows redirects may take, each one checked like the first

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefusedError(PermanentError):
    """A call refused before any connection was made: a URL whose scheme is not http(s), or whose host is (or
    resolves to) an address that is not public. A permanent error: the URL is a matter of configuration (a
    sender's API base URL, a media URL), so a message failing on it fails at once and is not retried. The
    message names the host and why, never a credential or the rest of the URL; ``reason`` is the why alone
    ("10.0.0.5 is a private address"), ``redirected`` says it was a redirect's target."""

    def __init__(self, reason: str, *, host: str = "", redirected: bool = False, **kwargs):
        kwargs.setdefault("code", "configuration")
        where = f"redirected to {host}, and " if redirected and host else "redirected, and " if redirected else ""
        super().__init__(f"not connected: {where}{reason}", **kwargs)
        self.reason = reason
        self.host = host
        self.redirected = redirected


def address_kind(ip: IPAddress) -> tuple[str, str]:
    """What makes this address not public, with its article ("a loopback address"), and a note on it (or "");
    ("", "") when it is public."""
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:  # reaches that IPv4 address: judged as it
            kind, note = address_kind(embedded)
            return (kind, f"{embedded} written as IPv6" + (f", {note}" if note else "")) if kind else ("", "")
    return _kind(ip), ("cloud instance metadata" if ip in _METADATA else "")


def _kind(ip: IPAddress) -> str:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.version == 4 and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or (ip.version == 6 and ip.is_site_local):
        return "a private address"
    if not ip.is_global:
        return "an address that is not public"
    return ""


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@lru_cache(maxsize=8)
def _parse_allowed(entries: tuple[str, ...]) -> frozenset[tuple[str, int | None]]:
    allowed = set()
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        else:
            host, port = entry, ""
        if (port and not port.isdigit()) or not host:
            raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_HOSTS: {entry!r} is not a host or host:port")
        allowed.add((_host_key(host), int(port) if port else None))
    return frozenset(allowed)


def host_allowed(host: str, port: int | None) -> bool:
    """Whether ``OUTBOUND_ALLOWED_HOSTS`` lets this host (as written in the URL) be internal on this port."""
    allowed = _parse_allowed(tuple(getattr(settings, "OUTBOUND_ALLOWED_HOSTS", ()) or ()))
    key = _host_key(host)
    return (key, None) in allowed or (key, port) in allowed


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_checked(host: str, port: int) -> list[tuple]:
    """The addresses (``getaddrinfo`` entries) to connect to for ``host``: every one the resolver gives, all
    public unless the host is allowed. Raises OutboundRefusedError naming the host and the first address
    refused, or socket.gaierror when the name does not resolve."""
    name = _host_key(host)
    infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    if host_allowed(name, port):
        return infos
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        kind, note = address_kind(ip)
        if kind:
            note = f" ({note})" if note else ""
            literal = _literal(name) and ip == ipaddress.ip_address(name)
            said = f"{name} is {kind}{note}" if literal else f"{name} resolves to {kind} {ip}{note}"
            raise OutboundRefusedError(f"{said}; this server connects to public addresses only", host=name)
    return infos


def _connect(infos: list[tuple], timeout, source_address, socket_options) -> socket.socket:
    """A socket connected to the first of these checked addresses that answers (as ``create_connection``
    does, without resolving again)."""
    error: OSError | None = None
    for family, socktype, proto, _name, sockaddr in infos:
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error or OSError("no address to connect to")


class PublicOnlyConnectionMixin:
    """For a urllib3 connection class: ``_new_conn`` resolves the host, checks every address, and connects to a
    checked one. The TLS layer above it still verifies the host name."""

    def _new_conn(self: HTTPConnection) -> socket.socket:
        try:
            infos = resolve_checked(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        try:
            sock = _connect(infos, self.timeout, self.source_address, self.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock
