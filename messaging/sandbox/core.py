"""The local provider emulator: one asyncio HTTP server (aiohttp) that speaks each provider's wire format.

Written from the providers' documentation only. It shares no code with ``messaging.providers`` so that
neither side can hide a misreading of the other.

Shared here: options (latency, outcome shares, faults), the ledger of accepted messages, per-sender rate
limits, and the callback dispatcher (delays, retries, duplicates, reordering). Each provider module in this
package adds its own routes and callback shapes through ``setup(app, sandbox)``.

Besides faults and outcomes, some options make a provider answer in an odd but possible way, so that tests
meet it over real HTTP: ``bandwidth_omit_next_link`` (a full list page without its next link),
``fonedynamics_list_key`` (a list answer of another shape) and ``cloudvno_send_only_keys`` (API keys that may
send but not read, whose credential check answers 403 ``insufficient_permissions``).

Control endpoints (JSON):
  GET  /sandbox/ledger           counts: accepted, duplicates, rejected_5xx, rejected_429, ambiguous, callbacks
  GET  /sandbox/ledger?detail=1  the same plus every accepted message, in the order accepted (provider, sender,
                                 to and text as the send gave them, reference, at, the provider's message_id
                                 and the outcome chosen for it): what was sent to a number
  GET  /sandbox/config           the options in force
  POST /sandbox/config           change options (any subset), e.g. {"error_5xx": 0.2}; the options are the
                                 fields of ``Options`` below, each described there
  POST /sandbox/reset            empty the ledger and message store; options back to the start-up ones
  POST /sandbox/inbound          post an inbound message (a reply) to our webhook, as the provider would (below)
  POST /sandbox/messages/{provider}/{id}/status  {"status": ..., "error_code": ...}: force a status callback

POST /sandbox/inbound takes a JSON object (``Inbound`` below reads it; 400 with {"error"} when it cannot):
  provider  one of the five codes
  url       our inbound webhook; for the providers whose callbacks carry HTTP Basic credentials (Bandwidth, Fone
            Dynamics, Sendblue under url credentials) with them embedded (https://user:pass@host/...). Without a
            url nothing is posted (CloudVNO still records a STOP)
  from      who writes: any string (a number, a short code, an alphanumeric sender ID), passed on as the provider
            writes it (Plivo drops a number's "+" and punctuation)
  to        the number written to (our sender's address)
  text      the text, may be empty
  media     optional list of media URLs (an MMS): Plivo, CloudVNO, Bandwidth any number, Sendblue one; Fone
            Dynamics documents SMS only and refuses media
  the secret the provider signs with, named as the sender's credentials name it: Plivo ``auth_token``
            (required), CloudVNO ``webhook_secret`` (else the one the ``api_key`` signs with), Sendblue
            ``signing_secret`` (else the account's; none: no header). Bandwidth and Fone Dynamics sign nothing:
            their credentials are those in ``url``. Other names are ignored, so a sender's whole credentials may be
            passed. Each provider module names its own extras.
The answer: {"provider", "id": the provider's id of the inbound message (also under the provider's own name),
"forwarded": whether a callback was posted}. The callback is delivered in the background, retried like any.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from aiohttp import BasicAuth, ClientSession, ClientTimeout, TCPConnector, web

logger = logging.getLogger("messaging.sandbox")


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The HTTP Basic login and password a request carries; None when absent, unreadable or either is empty."""
    try:
        auth = BasicAuth.decode(request.headers.get("Authorization", ""))
    except ValueError:
        return None
    if not auth.login or not auth.password:
        return None
    return auth.login, auth.password


def split_url_credentials(url: str) -> tuple[str, dict]:
    """A callback URL with user:pass@ becomes the bare URL plus an Authorization header (what an HTTP client
    does with credentials in a URL)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    host = parts.netloc.rpartition("@")[2]
    token = base64.b64encode(f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()).decode()
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), {"Authorization": f"Basic {token}"}


@dataclass
class Options:
    latency_ms: float = 20.0  # added to every API answer
    callback_delay_ms: float = 100.0  # between successive callbacks of one message
    delivered: float = 0.9  # shares of final outcomes (normalised)
    undelivered: float = 0.05
    failed: float = 0.05
    error_5xx: float = 0.0  # share of send requests answered 5xx (not accepted)
    rate_429: float = 0.0  # share of send requests answered 429 (not accepted)
    sender_mps: float = 0.0  # per-sender accept limit, 0 = none; over it -> 429 with a retry hint
    ambiguous: float = 0.0  # share of sends accepted, then the connection dropped before answering
    duplicate_callbacks: float = 0.0  # share of callbacks posted twice
    reorder_callbacks: float = 0.0  # share of messages whose last two callbacks swap places
    callback_retries: int = 6  # a callback answered non-2xx is retried this many times (backoff)
    callback_concurrency: int = 16  # callbacks in flight at once, as a provider's dispatcher would limit them
    reject_credentials: list = field(default_factory=lambda: ["invalid"])  # these secrets fail auth
    outcomes_by_suffix: dict = field(default_factory=dict)  # {"0001": "failed"}: recipient ending -> outcome
    # Add a Retry-After header to rate-limit answers of providers whose documentation names none (Plivo, Fone
    # Dynamics, Sendblue, Bandwidth; CloudVNO documents `retry_after` in the body, not a header). Off: the
    # emulator answers as documented, and the adapters fall back on their own default wait.
    undocumented_retry_after: bool = False
    # Odd answers a provider may give, to test how the adapters read them (off by default):
    # Bandwidth list pages never carry a `Link: <...>; rel="next"` header, even when more messages remain.
    bandwidth_omit_next_link: bool = False
    # The key Fone Dynamics' list answer wraps its messages in (the shape is assumed); "" = a bare JSON array,
    # any other name = a shape the adapter does not know.
    fonedynamics_list_key: str = "Messages"
    # CloudVNO API keys scoped `messages:write` only: they send, but reading (GET /v1/messages) answers 403
    # `insufficient_permissions`.
    cloudvno_send_only_keys: list = field(default_factory=list)
    # Every random choice that shapes an answer (faults, outcomes, error codes) comes from Sandbox.rng, seeded
    # with this: the same seed and the same requests give the same answers. Callback duplication and reordering
    # draw from a generator of their own (Sandbox.delivery_rng, seeded from this too), because callbacks are
    # delivered in the background while later requests arrive: sharing one generator would make the answers
    # depend on timing. Identifiers and nonces stay unique (``secrets``), so a re-seeded run never reuses one.
    seed: int | None = None

    def update(self, data: dict) -> None:
        names = {f.name for f in fields(self)}
        for key, value in data.items():
            if key not in names:
                raise KeyError(key)
            setattr(self, key, value)


@dataclass
class Accepted:
    provider: str
    sender: str
    to: str
    reference: str
    at: float
    text: str = ""
    message_id: str = ""  # the provider's id of the message
    outcome: str = ""  # the final outcome the emulator chose for it (``Sandbox.outcome``)


class InboundError(ValueError):
    """A /sandbox/inbound request the emulator cannot play: answered 400 with this text."""


@dataclass(frozen=True)
class Inbound:
    """A /sandbox/inbound request, read and checked (the fields are described in the module docstring);
    ``data`` is the whole request, for the credentials and extras a provider module reads."""

    provider: str
    url: str
    sender: str  # the request's `from`
    to: str
    text: str
    media: tuple[str, ...]
    data: dict

    @classmethod
    def read(cls, data: Any) -> Inbound:
        if not isinstance(data, dict):
            raise InboundError("the body must be a JSON object")
        for name in ("provider", "url", "from", "to", "text"):
            if not isinstance(data.get(name, ""), str):
                raise InboundError(f"{name} must be a string")
        media = data.get("media") or []
        if not isinstance(media, list) or not all(isinstance(url, str) and url for url in media):
            raise InboundError("media must be a list of URLs")
        return cls(provider=data.get("provider", ""), url=data.get("url", ""), sender=data.get("from", ""),
                   to=data.get("to", ""), text=data.get("text", ""), media=tuple(media), data=data)

    def secret(self, name: str) -> str:
        value = self.data.get(name) or ""
        if not isinstance(value, str):
            raise InboundError(f"{name} must be a string")
        return value


class Ledger:
    """Every message the emulator accepted. ``duplicates`` counts acceptances beyond the first of the same
    (provider, sender, recipient, reference): a message sent twice."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.records: list[Accepted] = []
        self.seen: Counter = Counter()
        self.counts: Counter = Counter()

    def accept(self, provider: str, sender: str, to: str, reference: str, text: str = "",
               message_id: str = "") -> Accepted:
        key = (provider, sender, to, reference)
        self.seen[key] += 1
        if self.seen[key] > 1:
            self.counts["duplicates"] += 1
        self.counts["accepted"] += 1
        self.counts[f"accepted_{provider}"] += 1
        record = Accepted(provider, sender, to, reference, time.time(), text, message_id)
        self.records.append(record)
        return record

    def summary(self, detail: bool = False) -> dict:
        out: dict[str, Any] = {
            "accepted": self.counts["accepted"],
            "duplicates": self.counts["duplicates"],
            "distinct": len(self.seen),
        }
        out.update({k: v for k, v in self.counts.items() if k not in out})
        if detail:
            out["messages"] = [asdict(r) for r in self.records]
        return out


Fault = str | None  # None, "5xx", "429", "ambiguous"


class Sandbox:
    def __init__(self, options: Options | None = None):
        self.start_options = options or Options()
        self.options = Options(**asdict(self.start_options))
        self.ledger = Ledger()
        self.reseed()
        self.messages: dict[str, dict[str, dict]] = defaultdict(dict)  # provider -> id -> record
        # provider -> handler of a checked /sandbox/inbound request: returns (the provider's id of the inbound
        # message, the name the provider gives that id, whether a callback was posted); raises InboundError.
        self.inbound_handlers: dict[str, Callable[[Inbound], Awaitable[tuple[str, str, bool]]]] = {}
        self.force_handlers: dict[str, Callable[[str, dict], Awaitable[dict]]] = {}
        self._next_free: dict[tuple[str, str], float] = {}
        self._client: ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---- options and faults ----

    def reset(self) -> None:
        self.options = Options(**asdict(self.start_options))
        self.reseed()
        self.ledger.reset()
        for store in self.messages.values():  # empty in place: provider modules keep references to these
            store.clear()
        self._next_free.clear()

    def reseed(self) -> None:
        """The generators, from the seed (see ``Options.seed``): one for answers, one for callback delivery."""
        seed = self.options.seed
        self.rng = random.Random(seed)
        self.delivery_rng = random.Random(None if seed is None else f"{seed}:callbacks")

    def retry_after_headers(self, retry_after: float) -> dict[str, str]:
        """The Retry-After header for a provider that documents none: only when the option asks for it."""
        if not self.options.undocumented_retry_after:
            return {}
        return {"Retry-After": f"{max(1, round(retry_after))}"}

    def is_rejected_secret(self, *secrets: str) -> bool:
        return any(s and s in self.options.reject_credentials for s in secrets)

    async def delay(self) -> None:
        if self.options.latency_ms > 0:
            await asyncio.sleep(self.options.latency_ms / 1000)

    def fault(self, provider: str, sender: str) -> tuple[Fault, float]:
        """Decide whether this send request fails before being accepted. Returns (fault, retry_after)."""
        o = self.options
        if o.sender_mps and o.sender_mps > 0:
            now = time.monotonic()
            key = (provider, sender)
            interval = 1.0 / o.sender_mps
            # GCRA with a tolerance of one interval: two requests may arrive back to back (network jitter),
            # but over any longer window the sender gets at most sender_mps through, as real providers do.
            next_free = self._next_free.get(key, 0.0)
            if now + interval < next_free:
                self.ledger.counts["rejected_429"] += 1
                self.ledger.counts["rejected_429_rate"] += 1
                return "429", max(0.01, next_free - now)
            self._next_free[key] = max(now, next_free) + interval
        roll = self.rng.random()
        if roll < o.error_5xx:
            self.ledger.counts["rejected_5xx"] += 1
            return "5xx", 0.0
        roll -= o.error_5xx
        if roll < o.rate_429:
            self.ledger.counts["rejected_429"] += 1
            return "429", 1.0
        roll -= o.rate_429
        if roll < o.ambiguous:
            return "ambiguous", 0.0
        return None, 0.0

    def outcome(self, recipient: str, accepted: Accepted | None = None) -> str:
        """delivered, undelivered or failed for a new message (noted in its ledger record, when given)."""
        chosen = self._outcome(recipient)
        if accepted is not None:
            accepted.outcome = chosen
        return chosen

    def _outcome(self, recipient: str) -> str:
        for suffix, outcome in self.options.outcomes_by_suffix.items():
            if recipient.endswith(suffix):
                return outcome
        o = self.options
        total = max(o.delivered + o.undelivered + o.failed, 1e-9)
        roll = self.rng.random() * total
        if roll < o.delivered:
            return "delivered"
        if roll < o.delivered + o.undelivered:
            return "undelivered"
        return "failed"

    @staticmethod
    async def drop_connection(request: web.Request) -> web.StreamResponse:
        """Accepted, but the answer never arrives: the connection is cut."""
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()

    # ---- callbacks ----

    async def client(self) -> ClientSession:
        if self._client is None or self._client.closed:
            self._client = ClientSession(
                connector=TCPConnector(limit=self.options.callback_concurrency, keepalive_timeout=30),
                timeout=ClientTimeout(total=15),
            )
        return self._client

    def post_callbacks(self, callbacks: list[Callable[[], dict]]) -> None:
        """Deliver a message's callbacks in order, ``callback_delay_ms`` apart. Each builder returns a dict
        with ``url``, ``method``, and ``data`` (form) or ``json``, plus ``headers`` (signed at send time)."""
        o = self.options
        order = list(callbacks)
        if len(order) >= 2 and self.delivery_rng.random() < o.reorder_callbacks:
            order[-1], order[-2] = order[-2], order[-1]
            self.ledger.counts["callbacks_reordered"] += 1
        task = asyncio.get_running_loop().create_task(self._deliver(order))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, builders: list[Callable[[], dict]]) -> None:
        for builder in builders:
            await asyncio.sleep(self.options.callback_delay_ms / 1000)
            spec = builder()
            if not spec.get("url"):
                continue
            await self._post(spec)
            if self.delivery_rng.random() < self.options.duplicate_callbacks:
                self.ledger.counts["callbacks_duplicated"] += 1
                await self._post(spec)

    async def _post(self, spec: dict) -> None:
        session = await self.client()
        method = spec.get("method", "POST").upper()
        for attempt in range(self.options.callback_retries + 1):
            try:
                kwargs: dict[str, Any] = {"headers": spec.get("headers", {})}
                if method == "GET":
                    kwargs["params"] = spec.get("data") or {}
                elif "json" in spec:
                    kwargs["json"] = spec["json"]
                else:
                    kwargs["data"] = spec.get("data") or {}
                async with session.request(method, spec["url"], **kwargs) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.ledger.counts["callbacks_delivered"] += 1
                        return
                    self.ledger.counts[f"callbacks_answered_{response.status}"] += 1
            except (TimeoutError, OSError) as exc:
                self.ledger.counts["callbacks_unreachable"] += 1
                logger.debug("callback to %s failed: %s", spec["url"], exc)
            except Exception:  # noqa: BLE001 - a broken callback must never stop the emulator
                logger.exception("callback to %s crashed", spec["url"])
                self.ledger.counts["callbacks_crashed"] += 1
            await asyncio.sleep(min(5.0, 0.2 * (2**attempt)))
        self.ledger.counts["callbacks_given_up"] += 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.close()


# ---- the application ---------------------------------------------------------------------------


# Every answer is data for a program, never a page: nothing in it may run, load, or be framed or sniffed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@web.middleware
async def refuse_other_sites(request: web.Request, handler):
    """A page of another site open in a developer's browser cannot drive the emulator (its control endpoints
    read any body as JSON): a browser says where a request comes from, programs say nothing."""
    if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
        return web.json_response({"error": "requests from other sites are refused"}, status=403)
    return await handler(request)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def build_app(sandbox: Sandbox) -> web.Application:
    from . import PROVIDER_MODULES

    app = web.Application(client_max_size=10 * 1024 * 1024, middlewares=[refuse_other_sites])
    app["sandbox"] = sandbox
    app.on_response_prepare.append(add_security_headers)

    async def ledger(request: web.Request) -> web.Response:
        return web.json_response(sandbox.ledger.summary(detail=request.query.get("detail") == "1"))

    async def get_config(request: web.Request) -> web.Response:
        return web.json_response(asdict(sandbox.options))

    async def set_config(request: web.Request) -> web.Response:
        try:
            sandbox.options.update(await request.json())
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"unknown or bad option: {exc}"}, status=400)
        if "seed" in await request.json():
            sandbox.reseed()
        return web.json_response(asdict(sandbox.options))

    async def reset(request: web.Request) -> web.Response:
        sandbox.reset()
        return web.json_response({"reset": True})

    async def inbound(request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        try:
            asked = Inbound.read(data)
            handler = sandbox.inbound_handlers.get(asked.provider)
            if handler is None:
                raise InboundError(f"unknown provider {asked.provider!r}")
            message_id, name, forwarded = await handler(asked)
        except InboundError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"provider": asked.provider, "id": message_id, name: message_id,
                                  "forwarded": forwarded})

    async def force(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        handler = sandbox.force_handlers.get(provider)
        record = sandbox.messages.get(provider, {}).get(request.match_info["id"])
        if handler is None or record is None:
            return web.json_response({"error": "unknown message"}, status=404)
        return web.json_response(await handler(request.match_info["id"], await request.json()))

    app.router.add_get("/sandbox/ledger", ledger)
    app.router.add_get("/sandbox/config", get_config)
    app.router.add_post("/sandbox/config", set_config)
    app.router.add_post("/sandbox/reset", reset)
    app.router.add_post("/sandbox/inbound", inbound)
    app.router.add_post("/sandbox/messages/{provider}/{id}/status", force)

    for module in PROVIDER_MODULES:
        module.setup(app, sandbox)

    async def on_cleanup(app: web.Application) -> None:
        await sandbox.close()

    app.on_cleanup.append(on_cleanup)
    return app


def run(host: str = "127.0.0.1", port: int = 8025, options: Options | None = None) -> None:
    sandbox = Sandbox(options)
    web.run_app(build_app(sandbox), host=host, port=port, access_log=None, print=None, handle_signals=True)
