"""What goes out: a claimed message's personalized body, checked against its provider's limits, as the
OutboundMessage an adapter sends, with its status-callback URL."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from .. import audience
from ..models import Dispatch, Message, Sender
from ..personalize import TemplateRenderError, message_context, render
from ..providers.base import OutboundMessage, PermanentError, Provider
from ..windows import WAITING_NOTE, Window, next_opening, recipient_timezone
from .claiming import messages_release


@lru_cache(maxsize=1024)
def _status_path(provider: str, sender_uuid: str) -> str:
    return reverse("messaging:webhook_status", args=[provider, sender_uuid])


def callback_url(*, sender: Sender, message_id: int | None = None) -> str:
    """The public URL of a sender's status callbacks; with ``message_id``, the one a message carries."""
    path = _status_path(sender.provider, str(sender.uuid))
    return f"{settings.PUBLIC_BASE_URL}{path}" + (f"?m={message_id}" if message_id else "")


def outbound_for(message: Message, sender: Sender | None = None) -> OutboundMessage:
    return OutboundMessage(
        id=message.pk,
        to=message.to,
        body=message.body,
        media_urls=tuple(message.media_urls or ()),
        status_callback_url=callback_url(sender=sender or message.sender, message_id=message.pk),
    )


def messages_for_send(message_ids: list[int]) -> list[Message]:
    """Claimed messages in id order, each with its campaign's template (``template``) and sending window
    (``window_start``, ``window_end``, ``window_timezone``; None without a campaign) from the dispatch record,
    read in the same query."""
    dispatch = Dispatch.objects.filter(campaign_id=OuterRef("campaign_id"))
    fields = ("template", "window_start", "window_end", "window_timezone")
    return list(Message.objects.filter(pk__in=message_ids)
                .annotate(**{name: Subquery(dispatch.values(name)[:1]) for name in fields}).order_by("id"))


def _window_of(message: Message) -> Window | None:
    start, end = getattr(message, "window_start", None), getattr(message, "window_end", None)
    if start is None or end is None or start == end:
        return None
    return Window(start=start, end=end, timezone=getattr(message, "window_timezone", None) or "")


def messages_wait_for_window(messages: list[Message], *, at: datetime | None = None) -> dict[int, str]:
    """Give back unsent, due when their window next opens, the claimed messages (from ``messages_for_send``)
    whose campaign's sending window is closed at ``at`` (default: now) in their recipient's local time: the
    contact's zone (``messaging.audience``), else the one its number gives, else the campaign's. Their attempt
    does not count; ``error_message`` says what they wait for. Returns ``deferred`` by message id."""
    windowed = [(m, w) for m in messages if (w := _window_of(m)) is not None]
    if not windowed:
        return {}
    at = at or timezone.now()
    zones = audience.contact_timezones(m.contact_id for m, _ in windowed)
    waiting: dict[tuple[datetime, str], list[int]] = {}  # one release per opening and zone, not per message
    for message, window in windowed:
        zone = recipient_timezone(message.to, zones.get(message.contact_id, ""), window.timezone)
        opening = next_opening(window, zone, at)
        if opening > at:
            waiting.setdefault((opening, f"{WAITING_NOTE} ({window} {zone})."), []).append(message.pk)
    for (opening, note), ids in waiting.items():
        messages_release(ids, at=opening, note=note)
    return {pk: "deferred" for ids in waiting.values() for pk in ids}


class TemplateFailedError(PermanentError):
    """A campaign's template cannot be rendered with one recipient's data (a filter that fails on a value, a
    result too long): that message fails, saying why; no provider was called and no other sender would help."""

    def __init__(self, reason: str):
        super().__init__(f"The message template could not be rendered for this recipient: {reason}",
                         code="template", recipient_side=True)

    def __str__(self) -> str:
        return self.message


def messages_personalize(messages: list[Message]) -> tuple[list[Message], list[tuple[Message, TemplateFailedError]]]:
    """Fill in, once, the body of each campaign message that has none: its campaign's template rendered with
    its contact's fields (``messaging.audience``). The messages come from ``messages_for_send``. Returns the
    messages changed (``bodies_save`` stores them) and those whose template cannot be rendered for their
    recipient, each with the error to record; one recipient's data never fails the others."""
    todo = [m for m in messages if not m.body and m.campaign_id]
    if not todo:
        return [], []
    fields = audience.contact_fields(m.contact_id for m in todo)
    changed, failed = [], []
    for message in todo:
        context = message_context(fields.get(message.contact_id), phone=message.to)
        try:
            message.body = render(message.template or "", context)
        except TemplateRenderError as exc:
            failed.append((message, TemplateFailedError(str(exc))))
        else:
            changed.append(message)
    return changed, failed


def bodies_save(messages: list[Message]) -> None:
    """Store the bodies filled in at send time, a few hundred rows per statement."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(messages), 500):
            part = messages[start:start + 500]
            values = ", ".join(["(%s, %s)"] * len(part))
            cursor.execute(
                f"WITH v(id, body) AS (VALUES {values}) UPDATE {table} SET body = v.body FROM v WHERE {table}.id = v.id",
                [x for m in part for x in (m.pk, m.body)],
            )


def outbound_checked(message: Message, sender: Sender, provider: Provider) -> OutboundMessage:
    """The message as its provider will get it; PermanentError when the provider cannot take it (over one of
    its documented limits)."""
    problems = provider.check_limits(message.body, message.media_urls)
    if problems:
        raise PermanentError(" ".join(problems), provider=provider.code, code="limits", recipient_side=True)
    return outbound_for(message, sender)
