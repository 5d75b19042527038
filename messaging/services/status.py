"""Status changes: forward-only moves, with the campaign counters kept in the same transaction."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import STATUS_RANK, Message
from .counters import counters_add
from .tallies import moved_events, outcomes_tally


def message_move(
    message_id: int,
    to_status: str,
    *,
    from_statuses: tuple[str, ...] | None = None,
    fields: dict | None = None,
    where: dict | None = None,
    reported: bool = False,
) -> bool:
    """Move one message to ``to_status`` if it is currently in ``from_statuses`` (default: any status of a
    lower rank) and matches ``where`` (extra field conditions, e.g. the claim a caller observed). ``reported``:
    the move is the provider's own report about the message (callback or lookup), so it holds the message.
    Returns True when this call made the change; the counters move in the same transaction."""
    if from_statuses is None:
        rank = STATUS_RANK[to_status]
        from_statuses = tuple(s for s, r in STATUS_RANK.items() if r < rank)
    with transaction.atomic():
        row = (
            Message.objects.select_for_update()
            .filter(pk=message_id, status__in=from_statuses, **(where or {}))
            .values_list("status", "campaign_id", "sender_id")
            .first()
        )
        if row is None:
            return False
        old_status, campaign_id, sender_id = row
        updates = dict(fields or {})
        updates["status"] = to_status
        updates["updated_at"] = timezone.now()
        if not Message.objects.filter(pk=message_id, status=old_status, **(where or {})).update(**updates):
            return False  # changed under us (SQLite has no row locks): nothing moved, nothing counted
        counters_add(campaign_id=campaign_id, deltas={old_status: -1, to_status: +1})
        outcomes_tally(campaign_id=campaign_id, sender_id=updates.get("sender_id", sender_id), old=old_status,
                       new=to_status, cause=updates.get("error_cause", ""), code=updates.get("error_code", ""),
                       held=reported)
    return True


def messages_move(queryset, to_status: str, *, from_statuses: tuple[str, ...], fields: dict | None = None) -> int:
    """``message_move`` for a set of messages; counters per campaign (and the dashboards' figures per campaign
    and sender, for a move that is an outcome) in the same transaction."""
    total = 0
    updates = dict(fields or {})
    updates.update(status=to_status, updated_at=timezone.now())
    with transaction.atomic():
        for old in from_statuses:
            counted = bool(moved_events(old, to_status))
            keys = ("campaign_id", "sender_id") if counted else ("campaign_id",)
            for key in queryset.filter(status=old).order_by().values(*keys).distinct():
                n = queryset.filter(status=old, **key).update(**updates)
                counters_add(campaign_id=key["campaign_id"], deltas={old: -n, to_status: n})
                if counted:
                    outcomes_tally(campaign_id=key["campaign_id"], sender_id=updates.get("sender_id", key["sender_id"]),
                                   old=old, new=to_status, n=n, cause=updates.get("error_cause", ""),
                                   code=updates.get("error_code", ""))
                total += n
    return total
