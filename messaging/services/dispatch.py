"""Dispatch: the send path's view of a campaign (see ``messaging.models.Dispatch``), set by the campaign's
owner, and the enqueuing of send tasks for messages that are due and not already in flight."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .. import pacing
from ..models import Dispatch, Message, Sender
from ..windows import Window
from .claiming import send_lease_seconds
from .status import messages_move

S = Message.Status
D = Dispatch.State
DISPATCH_HORIZON_SECONDS = 30  # keep about this much sending enqueued per campaign and sender
WAITING = (S.QUEUED, S.ERRORED)


def dispatch_open(
    *, campaign_id: int, name: str, template: str, media_urls: list[str], sender_ids: list[int],
    backup_sender_id: int | None, window: Window | None = None,
) -> Dispatch:
    """Allow a campaign's messages to be sent, with what the send path needs to send them. Once per campaign
    (its launch): a dispatch that was paused or canceled is never reopened by this. With a ``window``, each
    message waits until it is open in its recipient's local time (``messaging.windows``); a window whose start
    equals its end is no window."""
    if window is not None and window.always_open:
        window = None
    return Dispatch.objects.create(
        campaign_id=campaign_id, name=name, state=D.SENDING, template=template or "",
        media_urls=list(media_urls or []), sender_ids=[int(pk) for pk in sender_ids],
        backup_sender_id=backup_sender_id,
        window_start=window.start if window else None, window_end=window.end if window else None,
        window_timezone=(window.timezone or "") if window else "", filtering_since=timezone.now(),
    )


def dispatch_pause(*, campaign_id: int) -> bool:
    """No new sends start (claims are refused; batches under way stop within half a second)."""
    return bool(Dispatch.objects.filter(campaign_id=campaign_id, state=D.SENDING).update(
        state=D.PAUSED, updated_at=timezone.now()))


def dispatch_resume(*, campaign_id: int) -> bool:
    """Sending is allowed again; the messages still waiting are due for dispatch at once."""
    with transaction.atomic():
        # Outcomes before now no longer count towards pausing for carrier filtering (``causes``).
        resumed = bool(Dispatch.objects.filter(campaign_id=campaign_id, state=D.PAUSED).update(
            state=D.SENDING, updated_at=timezone.now(), filtering_since=timezone.now()))
        if resumed:  # tasks enqueued before the pause found nothing to claim
            Message.objects.filter(campaign_id=campaign_id, status__in=WAITING).update(dispatched_at=None)
    return resumed


def dispatch_cancel(*, campaign_id: int) -> int:
    """Stop for good: no claim from now on, and every message not yet sent becomes ``canceled``. Returns how
    many were canceled."""
    with transaction.atomic():
        Dispatch.objects.filter(campaign_id=campaign_id).exclude(state=D.CANCELED).update(
            state=D.CANCELED, updated_at=timezone.now())
        return messages_move(Message.objects.filter(campaign_id=campaign_id), S.CANCELED, from_statuses=WAITING)


def dispatches_cancel_stragglers() -> int:
    """Cancel messages of recently canceled dispatches that came back to the queue after the cancel: a send
    under way at that moment that was given back unsent, retried after a transient error, or found unsent by
    the reconciler. None of them may go out."""
    since = timezone.now() - timedelta(days=1)
    canceled = Dispatch.objects.filter(state=D.CANCELED, updated_at__gte=since).values_list("campaign_id", flat=True)
    return sum(
        messages_move(Message.objects.filter(campaign_id=campaign_id), S.CANCELED, from_statuses=WAITING)
        for campaign_id in list(canceled)
    )


def messages_enqueue_due(waiting: QuerySet, *, limit: int, batch_size: int) -> int:
    """Enqueue send tasks (``batch_size`` messages each) for up to ``limit`` of ``waiting`` that are due and
    not in flight: never enqueued, or enqueued more than DISPATCH_STALE_SECONDS ago and never claimed (a lost
    task; the claim makes sending it again safe). Returns how many were enqueued."""
    from ..tasks import send_batch

    now = timezone.now()
    stale = now - timedelta(seconds=settings.DISPATCH_STALE_SECONDS)
    due = waiting.filter(status__in=WAITING).filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)
    ).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    ids = list(due.order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return 0
    Message.objects.filter(pk__in=ids).update(dispatched_at=now)
    chunks = [ids[start:start + batch_size] for start in range(0, len(ids), batch_size)]
    transaction.on_commit(lambda: [send_batch.delay(chunk) for chunk in chunks])
    return len(ids)


def batch_size_for(mps: float) -> int:
    """About half a send lease of sending per task (so every message's call starts well inside its lease), at
    least one message, at most SEND_BATCH_SIZE."""
    return max(1, min(settings.SEND_BATCH_SIZE, int(mps * max(send_lease_seconds(), 1.0) / 2)))


def dispatch_enqueue(*, campaign_id: int) -> int:
    """Enqueue about DISPATCH_HORIZON_SECONDS of a sending campaign's messages, per sender (each at its own
    pace), including lost tasks and retries that are due. Returns how many messages were enqueued."""
    dispatch = Dispatch.objects.filter(campaign_id=campaign_id, state=D.SENDING).first()
    if dispatch is None:
        return 0
    sender_ids = list(dict.fromkeys([*dispatch.sender_ids, dispatch.backup_sender_id]))  # + failed-over ones
    senders = Sender.objects.in_bulk([pk for pk in sender_ids if pk])
    return sum(_enqueue_for_sender(campaign_id, senders[pk]) for pk in sender_ids if pk in senders)


def _enqueue_for_sender(campaign_id: int, sender: Sender) -> int:
    stale = timezone.now() - timedelta(seconds=settings.DISPATCH_STALE_SECONDS)
    # Keep at most one send lease of work enqueued: every enqueued message can start inside its lease.
    horizon = min(DISPATCH_HORIZON_SECONDS, max(send_lease_seconds(), 1.0))
    mps = pacing.effective_mps(sender.pk, sender.mps)  # slower while the provider pushes back
    size = batch_size_for(mps)
    window = max(size, int(mps * horizon))
    mine = Message.objects.filter(campaign_id=campaign_id, sender_id=sender.pk)
    # In flight: enqueued and not yet picked up, or claimed and being sent right now.
    in_flight = mine.filter(status__in=WAITING, dispatched_at__gte=stale)[:window].count()
    if in_flight < window:
        in_flight += mine.filter(status=S.SENDING)[: window - in_flight].count()
    need = window - in_flight
    return messages_enqueue_due(mine, limit=need, batch_size=size) if need > 0 else 0
