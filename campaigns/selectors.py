"""Reads for campaigns and their dashboards."""

from __future__ import annotations

from django.db.models import QuerySet

from messaging.models import FINAL_STATUSES, PENDING_STATUSES, Message
from messaging.selectors import campaign_counts

from .models import Campaign


def campaign_summary(*, campaign: Campaign) -> dict:
    counts = campaign_counts(campaign_id=campaign.pk)
    total = sum(counts.values())
    pending = sum(counts.get(s, 0) for s in PENDING_STATUSES)
    final = sum(counts.get(s, 0) for s in FINAL_STATUSES)
    return {
        "status": campaign.status,
        "counts": counts,
        "total": total,
        "pending": pending,
        "final": final,
        "awaiting_receipt": counts.get(Message.Status.SENT, 0),
        "done_percent": round(100 * final / total, 1) if total else 0.0,
        "suppressed": campaign.suppressed_count,
    }


def campaign_recipients(*, campaign: Campaign, status: str | None = None, search: str = "") -> QuerySet[Message]:
    qs = Message.objects.filter(campaign_id=campaign.pk).select_related("contact").order_by("id")
    if status:
        qs = qs.filter(status=status)
    if search:
        qs = qs.filter(to__contains=search)
    return qs
