"""Provider callbacks: status reports and inbound messages. Each view finds the sender named in the URL,
builds its adapter once, verifies the request, lets the adapter parse it, and hands the events to a service.
A bad signature answers 403 and changes nothing; a body that cannot be read answers 400; a sender whose
secrets cannot be used answers 503; an unexpected error answers 500, so the provider tries again."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import Sender
from .providers import provider_for
from .providers.base import CallbackRequest, ConfigurationError, Provider, SignatureError, StatusEvent
from .services import events_apply

logger = logging.getLogger("messaging.webhooks")


class UnreadableBody(ValueError):
    """The request's body cannot be decoded as what it says it is (JSON, a form)."""


def callback_request(request: HttpRequest, url: str) -> CallbackRequest:
    """The request as adapters see it. UnreadableBody when its body cannot be decoded: JSON that is not JSON
    (or nests deeper than the decoder goes), a form that is not a form."""
    body = request.body
    content_type = (request.content_type or "").lower()
    parsed_json = None
    form: list[tuple[str, str]] = []
    if "json" in content_type or (body[:1] in (b"{", b"[") and "form" not in content_type):
        try:
            parsed_json = json.loads(body.decode("utf-8")) if body else None
        except RecursionError:
            raise UnreadableBody("JSON nested too deeply") from None
        except (UnicodeDecodeError, ValueError):
            if "json" in content_type:
                raise UnreadableBody("not JSON") from None
    elif request.method == "POST":
        try:
            form = [(key, value) for key, values in request.POST.lists() for value in values]
        except MultiPartParserError:
            raise UnreadableBody("not a readable form") from None
    return CallbackRequest(
        method=request.method,
        url=url,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=list(request.GET.items()),
        form=form,
        json=parsed_json,
        body=body,
    )


def _candidate_urls(request: HttpRequest) -> list[str]:
    """The URL the request arrived at, and the same path under the configured public base URL (proxy)."""
    urls = [request.build_absolute_uri()]
    public = f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"
    if public not in urls:
        urls.append(public)
    return urls


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain")


def _verified(request: HttpRequest, provider: str, sender_uuid) -> tuple[Sender, Provider, list[StatusEvent]] | HttpResponse:
    """The one verification step of both views: the sender, its adapter and the parsed events, or the answer
    that refuses the request."""
    sender = Sender.objects.filter(uuid=sender_uuid, provider=provider).first()
    if sender is None:
        return _plain("unknown sender", 404)
    try:
        adapter = provider_for(sender)
    except ConfigurationError as exc:
        # The sender's secrets cannot be used (e.g. a wrong CREDENTIALS_KEY): nothing can be verified. Not a
        # 403 (the provider may give up) nor a 200 (the event would be lost): 503, so the provider retries.
        logger.error("%s callback for sender %s not handled: %s", provider, sender.pk, exc)
        return _plain("sender misconfigured", 503)
    verified = None
    last_error = "signature missing"
    for url in _candidate_urls(request):
        try:
            candidate = callback_request(request, url)
        except UnreadableBody as exc:
            logger.warning("%s callback for sender %s unreadable: %s", provider, sender.pk, exc)
            return _plain("unreadable callback", 400)
        try:
            adapter.verify_callback(candidate)
        except SignatureError as exc:
            last_error = str(exc)
            continue
        except ConfigurationError as exc:  # a credential verification needs is missing: nothing is verified
            logger.error("%s callback for sender %s cannot be verified: %s", provider, sender.pk, exc)
            return _plain("sender misconfigured", 503)
        verified = candidate
        break
    if verified is None:
        logger.warning("%s callback for sender %s refused: %s", provider, sender.pk, last_error)
        return _plain("signature refused", 403)
    try:
        events = adapter.parse_callback(verified)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("%s callback for sender %s unreadable: %s", provider, sender.pk, type(exc).__name__)
        return _plain("unreadable callback", 400)
    return sender, adapter, events


def _applied(sender: Sender, adapter: Provider, events: list[StatusEvent], hint: int | None) -> HttpResponse:
    counts = events_apply(sender=sender, events=events, provider=adapter, message_hint=hint)
    return HttpResponse(json.dumps(counts), status=200, content_type="application/json")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def status_callback(request: HttpRequest, provider: str, sender_uuid) -> HttpResponse:
    """A delivery report about a message we sent; its URL carries ``?m=<message id>``. A provider that posts
    a reply here instead has it recorded as one."""
    result = _verified(request, provider, sender_uuid)
    if isinstance(result, HttpResponse):
        return result
    hint = request.GET.get("m", "")
    # Our message id, or nothing: a value that is not one (other digits, out of range) is not a hint.
    return _applied(*result, int(hint) if hint.isascii() and hint.isdigit() and len(hint) <= 18 else None)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def inbound_callback(request: HttpRequest, provider: str, sender_uuid) -> HttpResponse:
    """A reply to one of the sender's numbers (the URL pasted in the provider's console). A provider that
    posts delivery reports here too (one callback URL per application) has them applied as such."""
    result = _verified(request, provider, sender_uuid)
    if isinstance(result, HttpResponse):
        return result
    return _applied(*result, None)
