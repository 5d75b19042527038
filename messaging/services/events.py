"""Status callbacks and lookups: each provider event stored once (see ``history``) and applied to its message,
forward only. Events about a message we cannot identify yet are kept and applied once its provider id is
recorded.

A provider's report only moves a message the provider accepted from us: one it holds (``sent``, with its id)
or may hold (``sending``: its call is under way, or its worker died during it; ``unconfirmed``: the answer was
lost). A message still ``queued`` or ``errored`` was never handed over (or was refused), and one ``canceled``
never will be: reports do not move them, so no report takes a message from ``queued`` to a final status. A
provider id is only ever bound to a message in ``sending`` or ``unconfirmed`` that has none yet."""

from __future__ import annotations

from django.db import transaction

from ..models import STATUS_RANK, Message, MessageEvent, Sender
from ..providers.base import StatusEvent
from ..providers.codes import error_meaning
from .causes import cause_of, failure_act
from .history import event_new, event_store_once
from .inbound import inbound_record
from .parts import whole_message_event
from .status import message_move

S = Message.Status
# The statuses a provider's report may move a message from, and those in which a message without a provider id
# may be given the one a report names (see the module docstring).
REPORTABLE = (S.SENDING, S.UNCONFIRMED, S.SENT)
AWAITING_ID = (S.SENDING, S.UNCONFIRMED)


def _apply(message_id: int, event: StatusEvent, provider: str) -> bool:
    """Apply one normalized event to one message, forward only, and act on the cause of a failure it reports
    (``causes``). Runs in the caller's transaction."""
    status = event.status
    if status not in STATUS_RANK or status == S.RECEIVED:
        return False  # unknown / inbound: stored, not applied to an outbound message
    current = Message.objects.filter(pk=message_id).values_list("status", "last_sequence").first()
    if current is None or current[0] not in REPORTABLE:
        return False
    from_statuses = tuple(s for s in REPORTABLE if STATUS_RANK[s] < STATUS_RANK[status])
    if not from_statuses:
        return False
    if event.sequence is not None and current[1] is not None and event.sequence <= current[1]:
        return False
    fields: dict = {"provider_status": event.raw_status[:40]}
    if event.sequence is not None:
        fields["last_sequence"] = event.sequence
    cause = ""
    if event.error_code or event.error_message:
        cause = cause_of(provider, event.error_code)
        fields["error_code"] = event.error_code[:40]
        fields["error_message"] = event.error_message or error_meaning(provider, event.error_code)
        fields["error_cause"] = cause
    if status == S.DELIVERED:
        fields["delivered_at"] = event.occurred_at
    if status == S.SENT:
        fields["sent_at"] = event.occurred_at
    # Callbacks can move a message that is still being sent (sending, unconfirmed) forward, never one the
    # provider does not have.
    moved = message_move(message_id, status, from_statuses=from_statuses, fields=fields, reported=True)
    if moved and status in (S.FAILED, S.UNDELIVERED):
        failure_act(message_id=message_id, cause=cause, provider=provider, code=event.error_code)
    return moved


def _message_for(sender_id: int, event: StatusEvent, hint: int | None) -> int | None:
    """The message an event is about: by our id (echoed by the provider, or the callback URL's ``m``) when its
    provider id agrees, else by the provider id. A message without a provider id is only taken, and given the
    event's, while its send is under way or its outcome unknown (``AWAITING_ID``): never one we did not send."""
    for mid in (event.our_message_id, hint):
        if not mid:
            continue
        outbound = Message.objects.filter(pk=mid, sender_id=sender_id, direction=Message.Direction.OUTBOUND)
        row = outbound.values_list("provider_message_id", "status").first()
        if row is None:
            continue
        provider_id, status = row
        if provider_id:
            if not event.provider_message_id or provider_id == event.provider_message_id:
                return mid
            continue
        if status not in AWAITING_ID:
            continue  # not handed to the provider (queued, errored) or never will be: not the provider's
        if not event.provider_message_id:
            return mid
        bound = outbound.filter(provider_message_id="", status__in=AWAITING_ID).update(
            provider_message_id=event.provider_message_id
        )
        if bound or outbound.filter(provider_message_id=event.provider_message_id).exists():
            return mid
    if event.provider_message_id:
        return (
            Message.objects.filter(sender_id=sender_id, provider_message_id=event.provider_message_id,
                                   direction=Message.Direction.OUTBOUND)
            .values_list("pk", flat=True)
            .first()
        )
    return None


def _lock_message(sender_id: int, provider_message_id: str) -> None:
    """Hold the message's row until the caller's transaction ends: parts reported at once combine in turn."""
    list(Message.objects.select_for_update().filter(sender_id=sender_id, provider_message_id=provider_message_id)
         .values_list("pk", flat=True))


def events_apply(
    *,
    sender: Sender,
    events: list[StatusEvent],
    source: str = MessageEvent.Source.CALLBACK,
    message_hint: int | None = None,
) -> dict:
    """Store each event once and move its message forward; replies are recorded as inbound messages. Returns
    counts of what happened (stored, duplicate, applied, pending)."""
    counts = {"stored": 0, "duplicate": 0, "applied": 0, "pending": 0}
    for event in events:
        if event.direction == "inbound":
            inbound_record(sender=sender, event=event)
            counts["stored"] += 1
            continue
        with transaction.atomic():
            if event.parts > 1 and event.provider_message_id:
                _lock_message(sender.pk, event.provider_message_id)
            message_id = _message_for(sender.pk, event, message_hint)
            stored = event_new(
                sender_id=sender.pk, message_id=message_id, source=source, status=event.status,
                provider_message_id=event.provider_message_id, dedupe_key=event.dedupe_key(),
                raw_status=event.raw_status, error_code=event.error_code, error_message=event.error_message,
                sequence=event.sequence, occurred_at=event.occurred_at, applied=message_id is not None,
                part=event.part, parts=event.parts, payload=event.raw,
            )
            if not event_store_once(stored):
                counts["duplicate"] += 1
                continue
            counts["stored"] += 1
            if message_id is None:
                counts["pending"] += 1
                continue
            if _apply(message_id, whole_message_event(event, sender_id=sender.pk), sender.provider):
                counts["applied"] += 1
    return counts


def events_apply_pending(*, sender_id: int, provider_message_id: str) -> None:
    """Apply the events kept for a message whose provider id is now known."""
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
    provider = Sender.objects.filter(pk=sender_id).values_list("provider", flat=True).first() or ""
    for stored in pending:
        with transaction.atomic():
            # Marking it applied is the claim: two sweeps never apply the same stored event twice.
            if MessageEvent.objects.filter(pk=stored.pk, applied=False).update(applied=True, message_id=message_id):
                _apply(message_id, whole_message_event(_as_event(stored), sender_id=sender_id), provider)


def _as_event(stored: MessageEvent) -> StatusEvent:
    return StatusEvent(
        provider_message_id=stored.provider_message_id,
        status=stored.status,
        raw_status=stored.raw_status,
        occurred_at=stored.occurred_at,
        error_code=stored.error_code,
        error_message=stored.error_message,
        sequence=stored.sequence,
        part=stored.part,
        parts=stored.parts,
        raw=stored.payload,
    )

