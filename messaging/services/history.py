"""The one writer of MessageEvent: every status a message went through, as received or as decided here.

Callbacks and lookups are stored once per (sender, dedupe key); the events the engine records itself (a
send, a failure, a failover, a lookup's verdict) get keys of their own.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import MessageEvent

Source = MessageEvent.Source


def event_new(
    *,
    sender_id: int,
    status: str,
    source: str,
    message_id: int | None = None,
    provider_message_id: str = "",
    dedupe_key: str = "",
    raw_status: str | None = None,
    error_code: str = "",
    error_message: str = "",
    sequence: int | None = None,
    occurred_at: datetime | None = None,
    applied: bool = True,
    part: int = 1,
    parts: int = 1,
    payload=None,
) -> MessageEvent:
    """An unsaved event. Without a ``dedupe_key`` it gets one that no other event shares."""
    now = timezone.now()
    if not dedupe_key:
        dedupe_key = f"{source}:{message_id}:{status}:{now.timestamp()}"
    return MessageEvent(
        sender_id=sender_id,
        message_id=message_id,
        source=source,
        provider_message_id=provider_message_id or "",
        dedupe_key=dedupe_key[:64],
        status=status,
        raw_status=(status if raw_status is None else raw_status)[:60],
        error_code=(error_code or "")[:40],
        error_message=error_message or "",
        sequence=sequence,
        occurred_at=occurred_at or now,
        applied=applied,
        part=part,
        parts=parts,
        payload=payload if isinstance(payload, dict) else {"items": payload} if payload is not None else {},
    )


def event_store_once(event: MessageEvent) -> bool:
    """Store an event unless one with its dedupe key is stored already. True when this call stored it."""
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def events_store(events: list[MessageEvent]) -> None:
    """Store many events in one statement; those already stored are skipped."""
    if events:
        MessageEvent.objects.bulk_create(events, ignore_conflicts=True)


def event_record(message, status: str, *, source: str = Source.SEND, code: str = "", text: str = "",
                 raw=None) -> None:
    """Record a status the engine decided for one message (a failure, a failover, a lookup's verdict)."""
    events_store([event_new(
        sender_id=message.sender_id, message_id=message.pk, source=source, status=status,
        provider_message_id=message.provider_message_id,
        dedupe_key=f"{source}:{message.pk}:{message.attempts}:{status}:{timezone.now().timestamp()}",
        error_code=code, error_message=text, payload=raw,
    )])
