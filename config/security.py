"""Login throttling as staff meet it (django-axes calls these, see config/settings.py): whose address a login
attempt comes from, and the page a locked-out login gets."""

from __future__ import annotations

import ipaddress
import math

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def client_ip(request: HttpRequest) -> str | None:
    """The address a request comes from: the direct peer, or behind ``PROXY_COUNT`` proxies the entry of
    X-Forwarded-For that the outermost of them appended (entries further left are whatever the client sent)."""
    peer = request.META.get("REMOTE_ADDR")
    count = settings.PROXY_COUNT
    if count <= 0:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < count:
        return peer  # not through the expected proxies: the peer is all we know
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def lockout_minutes() -> int:
    """How long a locked-out login waits, in whole minutes (each refused attempt starts the wait again)."""
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The admin's login page, saying that this login is refused for a while (429 Too Many Requests)."""
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed login attempts",
        "minutes": lockout_minutes(),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "login_url": request.path,
    }
    return TemplateResponse(request, "admin/login_locked.html", context, status=429).render()
