"""Provider callbacks: verify, store, move forward. Thin: the provider parses, services write."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import Sender
from .providers import provider_for
from .providers.base import CallbackRequest, ConfigurationError, SignatureError
from .services import events_apply

logger = logging.getLogger("messaging.webhooks")


def callback_request(request: HttpRequest, url: str) -> CallbackRequest:
    body = request.body
    content_type = (request.content_type or "").lower()
    parsed_json = None
    form: list[tuple[str, str]] = []
    if "json" in content_type or (body[:1] in (b"{", b"[") and "form" not in content_type):
        try:
            parsed_json = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            parsed_json = None
    elif request.method == "POST":
        form = [(key, value) for key, values in request.POST.lists() for value in values]
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


@csrf_exempt
@require_http_methods(["GET", "POST"])
def callback(request: HttpRequest, provider: str, sender_uuid, kind: str) -> HttpResponse:
    sender = Sender.objects.filter(uuid=sender_uuid, provider=provider).first()
    if sender is None:
        return HttpResponse("unknown sender\n", status=404, content_type="text/plain")
    try:
        adapter = provider_for(sender)
    except ConfigurationError as exc:
        # The sender's secrets cannot be used (e.g. a wrong CREDENTIALS_KEY): nothing can be verified. Not a
        # 403 (the provider may give up) nor a 200 (the event would be lost): 503, so the provider retries.
        logger.error("%s callback for sender %s not handled: %s", provider, sender.pk, exc)
        return HttpResponse("sender misconfigured\n", status=503, content_type="text/plain")
    verified = None
    last_error = "signature missing"
    for url in _candidate_urls(request):
        candidate = callback_request(request, url)
        try:
            adapter.verify_callback(candidate)
        except SignatureError as exc:
            last_error = str(exc)
            continue
        except ConfigurationError as exc:
            last_error = str(exc)
            break
        verified = candidate
        break
    if verified is None:
        logger.warning("%s callback for sender %s refused: %s", provider, sender.pk, last_error)
        return HttpResponse("signature refused\n", status=403, content_type="text/plain")
    try:
        events = adapter.parse_callback(verified)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("%s callback for sender %s unreadable: %s", provider, sender.pk, type(exc).__name__)
        return HttpResponse("unreadable callback\n", status=400, content_type="text/plain")
    hint = request.GET.get("m")
    counts = events_apply(sender=sender, events=events, message_hint=int(hint) if hint and hint.isdigit() else None)
    return HttpResponse(json.dumps(counts), status=200, content_type="application/json")
