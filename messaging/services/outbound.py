"""What goes out: a claimed message's personalized body, checked against its provider's limits, as the
OutboundMessage an adapter sends, with its status-callback URL."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.urls import reverse

from .. import audience
from ..models import Dispatch, Message, Sender
from ..personalize import TemplateRenderError, message_context, render
from ..providers.base import OutboundMessage, PermanentError, Provider


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
    """Claimed messages in id order, each with its campaign's template (``template``, from the dispatch
    record) read in the same query."""
    template = Dispatch.objects.filter(campaign_id=OuterRef("campaign_id")).values("template")[:1]
    return list(Message.objects.filter(pk__in=message_ids).annotate(template=Subquery(template)).order_by("id"))


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
