"""The periodic repair work beat runs (``messaging.tasks.sweep``):

- messages outside campaigns whose send task was lost are enqueued again (the claim makes this safe);
- ``unconfirmed`` messages, ``sending`` messages whose worker died, and ``sent`` messages that never got a
  delivery receipt are reconciled with the provider;
- callbacks stored before their message was known are applied once it is;
- callback nonces older than the replay window are forgotten;
- the dashboards' figures of past minutes and hours are folded into one row each (``tallies.tallies_fold``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Message, MessageEvent
from .callbacks import callback_nonces_prune
from .dispatch import messages_enqueue_due
from .events import events_apply_pending
from .tallies import tallies_fold

S = Message.Status


def messages_sweep() -> dict:
    from ..tasks import reconcile

    now = timezone.now()
    single = Message.objects.filter(campaign_id__isnull=True, direction=Message.Direction.OUTBOUND)
    requeued = messages_enqueue_due(single, limit=1000, batch_size=settings.SEND_BATCH_SIZE)

    ask_before = now - timedelta(seconds=settings.RECONCILE_AFTER_SECONDS)
    doubtful = list(
        Message.objects.filter(
            Q(status=S.UNCONFIRMED, updated_at__lt=ask_before) | Q(status=S.SENDING, claimed_at__lt=ask_before)
        )
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lt=ask_before))
        .values_list("id", flat=True)[:500]
    )
    final_before = now - timedelta(seconds=settings.FINAL_RECONCILE_AFTER_SECONDS)
    no_receipt = list(
        Message.objects.filter(status=S.SENT, sent_at__lt=final_before)
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lt=final_before))
        .values_list("id", flat=True)[:500]
    )
    # Each is asked about once per period: noted as checked when its lookup is enqueued, it is not enqueued again
    # by the next sweeps while the lookup waits its turn behind other work (a backlog would feed itself).
    Message.objects.filter(pk__in=doubtful + no_receipt).update(checked_at=now)
    for message_id in doubtful + no_receipt:
        reconcile.delay(message_id)

    pending = (
        MessageEvent.objects.filter(applied=False)
        .exclude(provider_message_id="")
        .order_by()  # without the model's ordering, DISTINCT is over these two columns only
        .values_list("sender_id", "provider_message_id")
        .distinct()[:500]
    )
    applied = 0
    for sender_id, provider_message_id in pending:
        if Message.objects.filter(sender_id=sender_id, provider_message_id=provider_message_id).exists():
            events_apply_pending(sender_id=sender_id, provider_message_id=provider_message_id)
            applied += 1
    return {"requeued": requeued, "reconcile": len(doubtful), "no_receipt": len(no_receipt),
            "pending_applied": applied, "nonces_forgotten": callback_nonces_prune(now=now),
            "figures_folded": tallies_fold(now=now)}
