"""Status changes: forward-only moves with the campaign counters kept in the same transaction, and the
status history (MessageEvent) written alongside."""

from __future__ import annotations

import logging
import random

from django.db import connection, transaction
from django.utils import timezone

from ..models import (
    STATUS_RANK,
    CampaignCounter,
    Message,
    MessageEvent,
)

logger = logging.getLogger("messaging")
S = Message.Status


# ----------------------------------------------------------------------------------------------
# counters


def counters_add(*, campaign_id: int | None, deltas: dict[str, int]) -> None:
    """Add to a campaign's per-status counters. Must run inside the transaction of the change."""
    if not campaign_id:
        return
    table = CampaignCounter._meta.db_table
    shard = random.randrange(CampaignCounter.SHARDS)
    with connection.cursor() as cursor:
        # Always lock counter rows in the same order, so two transactions never wait on each other in a cycle.
        for status, delta in sorted(deltas.items()):
            if not delta:
                continue
            cursor.execute(
                f"INSERT INTO {table} (campaign_id, status, shard, count) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT (campaign_id, status, shard) DO UPDATE SET count = {table}.count + excluded.count",
                [campaign_id, status, shard, delta],
            )


def message_move(
    message_id: int,
    to_status: str,
    *,
    from_statuses: tuple[str, ...] | None = None,
    fields: dict | None = None,
    where: dict | None = None,
) -> bool:
    """Move one message to ``to_status`` if it is currently in ``from_statuses`` (default: any status of a
    lower rank) and matches ``where`` (extra field conditions, e.g. the claim a caller observed). Returns True
    when this call made the change; the counters move in the same transaction."""
    if from_statuses is None:
        rank = STATUS_RANK[to_status]
        from_statuses = tuple(s for s, r in STATUS_RANK.items() if r < rank)
    with transaction.atomic():
        row = (
            Message.objects.select_for_update()
            .filter(pk=message_id, status__in=from_statuses, **(where or {}))
            .values_list("status", "campaign_id")
            .first()
        )
        if row is None:
            return False
        old_status, campaign_id = row
        updates = dict(fields or {})
        updates["status"] = to_status
        updates["updated_at"] = timezone.now()
        if not Message.objects.filter(pk=message_id, status=old_status, **(where or {})).update(**updates):
            return False  # changed under us (SQLite has no row locks): nothing moved, nothing counted
        counters_add(campaign_id=campaign_id, deltas={old_status: -1, to_status: +1})
    return True


def messages_move(
    queryset, to_status: str, *, from_statuses: tuple[str, ...], fields: dict | None = None
) -> int:
    """Bulk version of message_move for a set of messages; counters per campaign in the same transaction."""
    total = 0
    updates = dict(fields or {})
    updates.update(status=to_status, updated_at=timezone.now())
    with transaction.atomic():
        for old in from_statuses:
            by_campaign = {}
            for campaign_id in queryset.filter(status=old).order_by().values_list("campaign_id", flat=True).distinct():
                n = queryset.filter(status=old, campaign_id=campaign_id).update(**updates)
                by_campaign[campaign_id] = n
            for campaign_id, n in by_campaign.items():
                counters_add(campaign_id=campaign_id, deltas={old: -n, to_status: n})
                total += n
    return total


def event_record(message: Message, status: str, *, source=MessageEvent.Source.SEND, code="", text="", raw=None) -> None:
    MessageEvent.objects.create(
        sender_id=message.sender_id,
        message=message,
        source=source,
        provider_message_id=message.provider_message_id,
        dedupe_key=f"{source}:{message.pk}:{message.attempts}:{status}:{timezone.now().timestamp()}",
        status=status,
        raw_status=status,
        error_code=code[:40],
        error_message=text,
        occurred_at=timezone.now(),
        applied=True,
        payload=raw if isinstance(raw, dict) else {"items": raw} if raw is not None else {},
    )


