"""Staff and replies: answering a reply from its conversation, and marking replies read or unread."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import Message, Sender, Suppression
from ..phones import is_phone_address
from .audit import audit_record
from .queueing import message_create

D = Message.Direction


class AnswerRefused(ValueError):
    """An answer that cannot go out, in plain words for staff."""


def reply_answer(*, reply: Message, body: str, user, sender: Sender | None = None) -> Message:
    """Send one message answering ``reply``, through the sender it came to (or ``sender``, one that has
    written with this number before). Refused (AnswerRefused) for a number that opted out, an address that
    cannot be messaged, an empty text or one the provider cannot take. Recorded like any other send, and in
    the audit log; the conversation's replies are marked read."""
    if reply.direction != D.INBOUND:
        raise AnswerRefused("Only a reply can be answered.")
    body = (body or "").strip()
    if not body:
        raise AnswerRefused("Write the answer first.")
    address = reply.to
    if not is_phone_address(address):
        raise AnswerRefused(f"{address or 'This sender'} is not a number that can receive messages.")
    sender = sender or reply.sender
    if not sender.is_active:
        raise AnswerRefused(f"Sender {sender.name} is inactive.")
    with transaction.atomic():
        # Lock the number's consent state while the answer is queued: an opt-out arriving now waits for us, and
        # the claim cancels the answer if it comes first.
        if Suppression.objects.select_for_update().filter(phone=address, opted_out=True).exists():
            raise AnswerRefused(f"{address} has opted out: no answer can be sent.")
        try:
            message = message_create(sender=sender, to=address, body=body, contact_id=reply.contact_id,
                                     kind=Message.Kind.ANSWER, in_reply_to=reply)
        except ValueError as exc:
            raise AnswerRefused(str(exc)) from None
        conversation_mark_read(address=address, user=user)
        audit_record(user=user, obj=message, action="Answered a reply", detail=f"to {address} via {sender.name}")
    return message


def conversation_mark_read(*, address: str, user=None) -> int:
    """Mark every unread reply from this address read. Returns how many."""
    return Message.objects.filter(direction=D.INBOUND, to=address, read_at__isnull=True).update(
        read_at=timezone.now())


def replies_mark(*, replies, read: bool, user=None) -> int:
    """Mark these replies read (or unread). Returns how many changed."""
    ids = [r.pk for r in replies if r.direction == D.INBOUND]
    if read:
        changed = Message.objects.filter(pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())
    else:
        changed = Message.objects.filter(pk__in=ids, read_at__isnull=False).update(read_at=None)
    return changed
