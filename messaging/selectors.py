"""Reads for messaging."""

from __future__ import annotations

from django.db.models import Sum

from .models import CampaignCounter, Message, Suppression
from .phones import phone_e164


def is_opted_out(phone: str) -> bool:
    """Whether one number has opted out (the consent ledger's current state). Any way of writing the number
    that phonenumbers reads is accepted; something that is not a phone number has not opted out."""
    try:
        phone = phone_e164(phone)
    except ValueError:
        return False
    return Suppression.objects.filter(phone=phone, opted_out=True).exists()


def campaign_counts(*, campaign_id: int) -> dict[str, int]:
    """Messages per status for one campaign, from the counters (constant time at any size)."""
    rows = (
        CampaignCounter.objects.filter(campaign_id=campaign_id)
        .values("status")
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts = {status: 0 for status in Message.Status.values if status != Message.Status.RECEIVED}
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def campaign_counts_exact(*, campaign_id: int) -> dict[str, int]:
    """The same counts by COUNT(*), for checks and repairs."""
    from django.db.models import Count

    rows = Message.objects.filter(campaign_id=campaign_id).values("status").annotate(n=Count("id")).order_by()
    counts = {status: 0 for status in Message.Status.values if status != Message.Status.RECEIVED}
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts
