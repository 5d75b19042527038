"""Callbacks and lookups: each provider event stored once and applied forward only; inbound replies and
STOP/START keywords."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from ..models import (
    STATUS_RANK,
    ConsentEvent,
    Message,
    MessageEvent,
    Sender,
)
from ..providers import PROVIDERS, provider_for
from ..providers.base import (
    StatusEvent,
)
from .consent import consent_record
from .status import message_move

logger = logging.getLogger("messaging")
S = Message.Status


# ----------------------------------------------------------------------------------------------
# callbacks and lookups


def _apply(message_id: int, event: StatusEvent) -> bool:
    """Apply one normalized event to one message, forward only. Runs in the caller's transaction."""
    status = event.status
    if status not in STATUS_RANK or status == S.RECEIVED:
        return False  # unknown / queued-only / inbound: stored, not applied to an outbound message
    current = Message.objects.filter(pk=message_id).values_list("status", "last_sequence").first()
    if current is None:
        return False
    if event.sequence is not None and current[1] is not None and event.sequence <= current[1]:
        return False
    fields: dict = {"provider_status": event.raw_status[:40]}
    if event.sequence is not None:
        fields["last_sequence"] = event.sequence
    if event.error_code or event.error_message:
        fields["error_code"] = event.error_code[:40]
        fields["error_message"] = event.error_message
    if status == S.DELIVERED:
        fields["delivered_at"] = event.occurred_at
    if status == S.SENT:
        fields["sent_at"] = event.occurred_at
    # Callbacks can move a message that is still being sent (sending, unconfirmed) forward.
    return message_move(message_id, status, fields=fields)


def _message_for(sender_id: int, event: StatusEvent, hint: int | None) -> int | None:
    candidates = []
    if event.our_message_id:
        candidates.append(event.our_message_id)
    if hint:
        candidates.append(hint)
    for mid in candidates:
        row = Message.objects.filter(pk=mid, sender_id=sender_id).values_list("pk", "provider_message_id").first()
        if row and (not row[1] or not event.provider_message_id or row[1] == event.provider_message_id):
            if not row[1] and event.provider_message_id:
                Message.objects.filter(pk=mid, provider_message_id="").update(
                    provider_message_id=event.provider_message_id
                )
            return row[0]
    if event.provider_message_id:
        return (
            Message.objects.filter(sender_id=sender_id, provider_message_id=event.provider_message_id)
            .values_list("pk", flat=True)
            .first()
        )
    return None


def events_apply(
    *,
    sender: Sender,
    events: list[StatusEvent],
    source: str = MessageEvent.Source.CALLBACK,
    message_hint: int | None = None,
) -> dict:
    """Store each event once and move its message forward. Events for a message we cannot identify yet
    are kept and applied when its provider id is recorded."""
    counts = {"stored": 0, "duplicate": 0, "applied": 0, "pending": 0}
    # Callbacks of providers that report each part of a long message become the whole message's status.
    adapter = provider_for(sender) if source == MessageEvent.Source.CALLBACK else None
    for event in events:
        if event.direction == "inbound":
            inbound_record(sender=sender, event=event)
            counts["stored"] += 1
            continue
        with transaction.atomic():
            if adapter is not None and event.provider_message_id:
                (event,) = adapter.combine_parts([event], lambda pid: _callback_history(sender.pk, pid))
            message_id = _message_for(sender.pk, event, message_hint)
            try:
                with transaction.atomic():
                    stored = MessageEvent.objects.create(
                        sender=sender,
                        message_id=message_id,
                        source=source,
                        provider_message_id=event.provider_message_id,
                        dedupe_key=event.dedupe_key(),
                        status=event.status,
                        raw_status=event.raw_status[:60],
                        error_code=event.error_code[:40],
                        error_message=event.error_message,
                        sequence=event.sequence,
                        occurred_at=event.occurred_at,
                        applied=message_id is not None,
                        payload=event.raw if isinstance(event.raw, dict) else {"items": event.raw},
                    )
            except IntegrityError:
                counts["duplicate"] += 1
                continue
            counts["stored"] += 1
            if message_id is None:
                counts["pending"] += 1
                continue
            if _apply(message_id, event):
                counts["applied"] += 1
            _opt_out_signal(event=event, stored=stored)
    return counts


def _callback_history(sender_id: int, provider_message_id: str) -> list[dict]:
    """The callbacks stored so far for one message, its row locked until the caller's transaction ends (two
    parts reported at once are then combined one after the other)."""
    list(Message.objects.select_for_update().filter(sender_id=sender_id, provider_message_id=provider_message_id)
         .values_list("pk", flat=True))
    return list(
        MessageEvent.objects.filter(sender_id=sender_id, provider_message_id=provider_message_id,
                                    source=MessageEvent.Source.CALLBACK)
        .order_by("id").values_list("payload", flat=True)
    )


def events_apply_pending(*, sender_id: int, provider_message_id: str) -> None:
    pending = list(
        MessageEvent.objects.filter(
            sender_id=sender_id, provider_message_id=provider_message_id, applied=False
        ).order_by("sequence", "occurred_at", "id")
    )
    if not pending:
        return
    message_id = (
        Message.objects.filter(sender_id=sender_id, provider_message_id=provider_message_id)
        .values_list("pk", flat=True)
        .first()
    )
    if message_id is None:
        return
    for stored in pending:
        with transaction.atomic():
            # Marking it applied is the claim: two sweeps never apply the same stored event twice.
            if MessageEvent.objects.filter(pk=stored.pk, applied=False).update(applied=True, message_id=message_id):
                _apply(message_id, _as_event(stored))


def _as_event(stored: MessageEvent) -> StatusEvent:
    return StatusEvent(
        provider_message_id=stored.provider_message_id,
        status=stored.status,
        raw_status=stored.raw_status,
        occurred_at=stored.occurred_at,
        error_code=stored.error_code,
        error_message=stored.error_message,
        sequence=stored.sequence,
        raw=stored.payload,
    )


# ----------------------------------------------------------------------------------------------
# inbound messages and consent

OPT_OUT_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "opt-out", "revoke"}
OPT_IN_WORDS = {"start", "unstop", "subscribe", "yes"}


def inbound_record(*, sender: Sender, event: StatusEvent) -> Message:
    """Store a reply (once per provider id) under the number that wrote it, and apply STOP/START keywords."""
    raw = event.raw if isinstance(event.raw, dict) else {}
    counterpart = raw.get("From") or raw.get("from") or raw.get("number") or ""
    phone = _e164(counterpart) if counterpart else ""
    fields = {"to": phone, "body": event.body, "status": S.RECEIVED, "provider_status": event.raw_status[:40]}
    if event.provider_message_id:
        message, created = Message.objects.get_or_create(
            sender=sender, direction=Message.Direction.INBOUND, provider_message_id=event.provider_message_id,
            defaults=fields,
        )
    else:
        message, created = Message.objects.create(sender=sender, direction=Message.Direction.INBOUND, **fields), True
    word = event.body.strip().lower()
    if created and phone and word in OPT_OUT_WORDS | OPT_IN_WORDS:
        action = ConsentEvent.Action.OPT_OUT if word in OPT_OUT_WORDS else ConsentEvent.Action.OPT_IN
        consent_record(phone=phone, action=action, method=ConsentEvent.Method.KEYWORD,
                       detail=f"replied {event.body.strip()[:20]!r} to {sender.name}")
    return message


def _e164(value: str) -> str:
    value = str(value).strip()
    return value if value.startswith("+") else "+" + "".join(ch for ch in value if ch.isdigit())


def _opt_out_signal(*, event: StatusEvent, stored: MessageEvent) -> None:
    codes = PROVIDERS[stored.sender.provider].opt_out_error_codes  # "this recipient opted out" (CONTRACTS §6)
    opted_out = (event.error_code and event.error_code in codes) or (
        isinstance(event.raw, dict) and event.raw.get("opted_out") is True
    )
    if not opted_out or stored.message_id is None:
        return
    phone = Message.objects.filter(pk=stored.message_id).values_list("to", flat=True).first()
    if phone:
        consent_record(
            phone=phone,
            action=ConsentEvent.Action.OPT_OUT,
            method=ConsentEvent.Method.PROVIDER,
            detail=f"{stored.sender.provider} reported opt-out (code {event.error_code or 'opted_out'})",
        )


