"""Provider callbacks: status reports and inbound messages. Each view, in this order:

1. reads the request: a body over CALLBACK_MAX_BYTES answers 413; one that cannot be read answers 400 (JSON that
   is not JSON, not an object, nested deeper than CALLBACK_MAX_JSON_DEPTH or holding a number no JSON column
   takes; a form that is not one or has more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS; text with a NUL or a
   lone surrogate, which no provider sends);
2. finds the sender named in the URL (404), builds its adapter (503 when its secrets cannot be used);
3. verifies the request (403: a missing or wrong signature, or missing callback credentials);
4. lets the adapter parse it (400 when its fields cannot be read or hold values our columns cannot);
5. accepts the nonce of a signature that covers only the URL once (403 when replayed), and hands the events to a
   service, both in one transaction.

Nothing is stored before step 5. While the database cannot be reached (down, restarting, failing over) the answer
is 503 with Retry-After, and nothing is applied: the provider tries again and the report is applied then. Any other
unexpected error answers 500, never 200: the provider tries again too."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import Sender
from .providers import provider_for
from .providers.base import (
    CallbackRequest,
    ConfigurationError,
    Provider,
    SignatureError,
    StatusEvent,
    our_message_id,
)
from .services import callback_nonce_claim, event_problem, events_apply
from .services.tallies import callback_tally

logger = logging.getLogger("messaging.webhooks")

# Text no provider sends and no column of ours stores: NUL, and UTF-16 surrogates left alone by a JSON escape.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# The bytes that matter to JSON nesting: brackets, and quotes and backslashes (to skip brackets inside strings).
_JSON_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


class Refused(Exception):
    """The request is answered ``status`` with ``text``; ``reason`` is for the log."""

    def __init__(self, status: int, text: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.text = text
        self.reason = reason


def _unreadable(reason: str) -> Refused:
    return Refused(400, "unreadable callback", reason)


@dataclass(frozen=True)
class CallbackBody:
    """A request's content as read once, before anything is looked up."""

    body: bytes
    json: dict | None
    form: list[tuple[str, str]]
    query: list[tuple[str, str]]

    def request(self, request: HttpRequest, url: str) -> CallbackRequest:
        """The request as adapters see it, as called at ``url``."""
        return CallbackRequest(
            method=request.method,
            url=url,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=self.query,
            form=self.form,
            json=self.json,
            body=self.body,
        )


def json_too_deep(body: bytes, limit: int) -> bool:
    """Whether JSON text nests objects and arrays more than ``limit`` deep, read without decoding it (so a
    deep body never reaches the decoder's recursion). Linear: only brackets, quotes and backslashes are looked
    at; brackets inside strings do not count."""
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _JSON_STRUCTURE.finditer(body):
        at = match.start()
        char = body[at]
        if at == escaped_at:
            continue
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped
                escaped_at = at + 1
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif char in (0x5D, 0x7D):
            depth -= 1
    return False


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: no JSON column takes infinity
        raise ValueError("number out of range")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's extension, not JSON


def _decoded_json(body: bytes, *, declared: bool) -> dict | None:
    """The JSON object a body holds. A body that is not JSON is refused when it says it is (``declared``), and
    otherwise left unread; JSON that is not an object, or too deep, is refused either way."""
    if not body.strip():
        return None
    if json_too_deep(body, settings.CALLBACK_MAX_JSON_DEPTH):
        raise _unreadable("JSON nested too deeply")
    try:
        data = json.loads(body.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise _unreadable("JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        if declared:
            raise _unreadable("not JSON") from None
        return None
    if not isinstance(data, dict):
        raise _unreadable(f"JSON {type(data).__name__}, not an object")
    return data


def _texts(value: Any):
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def callback_body(request: HttpRequest) -> CallbackBody:
    """Read a callback's body and query once; Refused (413, 400) when they are too large or cannot be read."""
    limit = settings.CALLBACK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _unreadable("Content-Length is not a number") from None
    if declared > limit or len(request.META.get("QUERY_STRING", "")) > limit:
        raise Refused(413, "callback too large", f"over CALLBACK_MAX_BYTES ({limit})")
    try:
        body = request.body
        query = [(key, value) for key, values in request.GET.lists() for value in values]
    except RequestDataTooBig:
        raise Refused(413, "callback too large", "over DATA_UPLOAD_MAX_MEMORY_SIZE") from None
    except TooManyFieldsSent:
        raise _unreadable("more query fields than DATA_UPLOAD_MAX_NUMBER_FIELDS") from None
    if len(body) > limit:  # the body read, whatever the header said
        raise Refused(413, "callback too large", f"over CALLBACK_MAX_BYTES ({limit})")
    content_type = (request.content_type or "").lower()
    parsed_json = None
    form: list[tuple[str, str]] = []
    if "json" in content_type or (body.lstrip()[:1] in (b"{", b"[") and "form" not in content_type):
        parsed_json = _decoded_json(body, declared="json" in content_type)
    elif request.method == "POST":
        try:
            form = [(key, value) for key, values in request.POST.lists() for value in values]
        except (MultiPartParserError, TooManyFilesSent):
            raise _unreadable("not a readable form") from None
        except TooManyFieldsSent:
            raise _unreadable("more form fields than DATA_UPLOAD_MAX_NUMBER_FIELDS") from None
        except RequestDataTooBig:
            raise Refused(413, "callback too large", "over DATA_UPLOAD_MAX_MEMORY_SIZE") from None
    texts = [text for pair in (*query, *form) for text in pair]
    if any(_BAD_TEXT.search(text) for text in (*texts, *_texts(parsed_json))):
        raise _unreadable("text with a NUL or a lone surrogate")
    return CallbackBody(body=body, json=parsed_json, form=form, query=query)


def _candidate_urls(request: HttpRequest) -> list[str]:
    """The URL the request arrived at, and the same path under the configured public base URL (proxy)."""
    urls = [request.build_absolute_uri()]
    public = f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"
    if public not in urls:
        urls.append(public)
    return urls


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain")


@dataclass(frozen=True)
class Verified:
    sender: Sender
    adapter: Provider
    events: list[StatusEvent]
    nonce: str | None  # to accept once (a signature that covers only the URL), or None


def _verified(request: HttpRequest, provider: str, sender_uuid) -> Verified:
    """Steps 1 to 4 of the module docstring: the sender, its adapter, the parsed events and the nonce to accept
    once; Refused with the answer otherwise. Nothing is written."""
    content = callback_body(request)
    sender = Sender.objects.filter(uuid=sender_uuid, provider=provider).first()
    if sender is None:
        raise Refused(404, "unknown sender", "no such sender")
    try:
        adapter = provider_for(sender)
    except ConfigurationError as exc:
        # The sender's secrets cannot be used (e.g. a wrong CREDENTIALS_KEY): nothing can be verified. Not a
        # 403 (the provider may give up) nor a 200 (the event would be lost): 503, so the provider retries.
        logger.error("%s callback for sender %s not handled: %s", provider, sender.pk, exc)
        raise Refused(503, "sender misconfigured", "sender misconfigured") from None
    verified = None
    nonce = None
    last_error = "signature missing"
    for url in _candidate_urls(request):
        candidate = content.request(request, url)
        try:
            nonce = adapter.verify_callback(candidate)
        except SignatureError as exc:
            last_error = str(exc)
            continue
        except ConfigurationError as exc:  # a credential verification needs is missing: nothing is verified
            logger.error("%s callback for sender %s cannot be verified: %s", provider, sender.pk, exc)
            raise Refused(503, "sender misconfigured", "sender misconfigured") from None
        verified = candidate
        break
    if verified is None:
        raise Refused(403, "signature refused", f"for sender {sender.pk}: {last_error}")
    try:
        events = adapter.parse_callback(verified)
    except (ValueError, KeyError, TypeError) as exc:
        raise _unreadable(f"for sender {sender.pk}: {type(exc).__name__} in its fields") from None
    for event in events:
        problem = event_problem(event)
        if problem:
            raise _unreadable(f"for sender {sender.pk}: {problem}")
    return Verified(sender=sender, adapter=adapter, events=events, nonce=nonce)


def _refusal_counted(provider: str, sender_uuid, exc: Refused) -> None:
    """Count a refused callback for its sender's page (when the URL names one of ours), with why."""
    sender_id = Sender.objects.filter(uuid=sender_uuid, provider=provider).values_list("pk", flat=True).first()
    if sender_id is None:
        return
    detail = re.sub(r"^for sender \d+: ", "", exc.reason)
    reason = f"{exc.status} {exc.text}" + (f": {detail}" if detail and detail != exc.text else "")
    callback_tally(sender_id=sender_id, accepted=False, reason=reason)


DATABASE_RETRY_AFTER_SECONDS = 5


def _handled(request: HttpRequest, provider: str, sender_uuid, *, hinted: bool) -> HttpResponse:
    try:
        return _answered(request, provider, sender_uuid, hinted=hinted)
    except (OperationalError, InterfaceError) as exc:
        # The database is away: whatever this request began was rolled back with its transaction (or never
        # reached the database). 503, so the provider sends the report again; Django closes the broken
        # connection at the end of the request, and the next one opens a new one.
        logger.warning("%s callback not handled (503): the database is unavailable (%s)", provider,
                       str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__)
        response = _plain("database unavailable, try again", 503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response


def _answered(request: HttpRequest, provider: str, sender_uuid, *, hinted: bool) -> HttpResponse:
    try:
        result = _verified(request, provider, sender_uuid)
    except Refused as exc:
        if exc.status != 503:  # logged as an error where it was raised
            logger.warning("%s callback refused (%s %s): %s", provider, exc.status, exc.text, exc.reason)
        _refusal_counted(provider, sender_uuid, exc)
        return _plain(exc.text, exc.status)
    # Our message id in the status URL, or nothing: a value that is not one of our ids is not a hint.
    hint = our_message_id(request.GET.get("m")) if hinted else None
    with transaction.atomic():
        if result.nonce is not None and not callback_nonce_claim(sender_id=result.sender.pk, nonce=result.nonce):
            logger.warning("%s callback for sender %s refused (403): nonce seen before (a replay)", provider,
                           result.sender.pk)
            transaction.set_rollback(True)
            refused = Refused(403, "signature refused", "nonce seen before (a replay)")
        else:
            refused = None
            counts = events_apply(sender=result.sender, events=result.events, message_hint=hint)
            callback_tally(sender_id=result.sender.pk, accepted=True)
    if refused is not None:
        _refusal_counted(provider, sender_uuid, refused)
        return _plain(refused.text, refused.status)
    return HttpResponse(json.dumps(counts), status=200, content_type="application/json")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def status_callback(request: HttpRequest, provider: str, sender_uuid) -> HttpResponse:
    """A delivery report about a message we sent; its URL carries ``?m=<message id>``. A provider that posts
    a reply here instead has it recorded as one."""
    return _handled(request, provider, sender_uuid, hinted=True)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def inbound_callback(request: HttpRequest, provider: str, sender_uuid) -> HttpResponse:
    """A reply to one of the sender's numbers (the URL pasted in the provider's console). A provider that
    posts delivery reports here too (one callback URL per application) has them applied as such."""
    return _handled(request, provider, sender_uuid, hinted=False)
