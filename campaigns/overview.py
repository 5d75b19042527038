"""Reads for the admin home's overview: the campaigns in flight and how they are doing, those the product paused
on its own, those scheduled next, and why recent campaigns' messages failed. Messaging figures come through
``messaging.selectors`` only, from counters and tallies: the home costs the same at any number of messages."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from messaging import selectors as messaging

from .models import Campaign
from .selectors import campaign_recipient_figures, list_counts

IN_FLIGHT_MAX = 20  # campaigns in flight shown on the home (the campaigns list has them all)
SCHEDULED_MAX = 10
FAILURES_DAYS = 7  # recent failures: those of campaigns launched in the last this many days
IN_FLIGHT = (Campaign.Status.SENDING, Campaign.Status.PAUSED)


def campaigns_in_flight(*, now: datetime | None = None) -> list[dict]:
    """Campaigns sending or paused, the longest running first: each with the campaign, its progress as its page
    shows it (recipients with a final status out of all, and the percentage: ``campaign_recipient_figures``),
    and ``per_minute``: messages its providers accepted per minute over the last few minutes
    (``messaging.PACE_MINUTES``; None while paused). Three queries, however many campaigns."""
    campaigns = list(Campaign.objects.filter(status__in=IN_FLIGHT).select_related("sender")
                     .order_by("launched_at", "pk")[:IN_FLIGHT_MAX])
    ids = [c.pk for c in campaigns]
    pace = messaging.campaigns_accepted_per_minute(campaign_ids=ids, now=now)
    counts = messaging.campaigns_counts(campaign_ids=ids)
    superseded = messaging.campaigns_superseded(campaign_ids=ids)
    out = []
    for campaign in campaigns:
        recipients = campaign_recipient_figures(campaign=campaign, counts=counts[campaign.pk],
                                                superseded=superseded[campaign.pk])
        out.append({
            "campaign": campaign,
            "paused": campaign.status == Campaign.Status.PAUSED,
            "paused_automatically": campaign.status == Campaign.Status.PAUSED and bool(campaign.paused_reason),
            "total": recipients["total"],
            "final": recipients["final"],
            "done_percent": recipients["done_percent"],
            "per_minute": None if campaign.status == Campaign.Status.PAUSED else pace[campaign.pk],
        })
    return out


def campaigns_in_flight_count() -> int:
    return Campaign.objects.filter(status__in=IN_FLIGHT).count()


def campaigns_paused_automatically() -> list[Campaign]:
    """Campaigns the product paused on its own (carrier filtering, an account error ...), with ``paused_reason``
    saying why, the most recently launched first."""
    return list(Campaign.objects.filter(status=Campaign.Status.PAUSED).exclude(paused_reason="")
                .order_by("-launched_at", "-pk"))


def campaigns_scheduled(*, limit: int = SCHEDULED_MAX) -> list[dict]:
    """The next scheduled campaigns, soonest first, each with ``recipients``: the contacts on its lists who have
    not opted out (a contact on two lists counts twice here, once at launch)."""
    campaigns = list(Campaign.objects.filter(status=Campaign.Status.SCHEDULED).select_related("sender")
                     .prefetch_related("lists").order_by("scheduled_at", "pk")[:limit])
    counts = list_counts({lst.pk for c in campaigns for lst in c.lists.all()})
    return [{"campaign": c, "recipients": sum(counts[lst.pk].sendable for lst in c.lists.all())} for c in campaigns]


def campaigns_scheduled_count() -> int:
    return Campaign.objects.filter(status=Campaign.Status.SCHEDULED).count()


def failures_recent(*, now: datetime | None = None, days: int = FAILURES_DAYS) -> list[dict]:
    """Why the messages of the campaigns launched in the last ``days`` days failed, by cause, most frequent
    first: each with the cause (label, explanation, advice), how many messages it hit, and ``campaigns``: the
    (up to three) campaigns it hit most, each ``{"campaign": Campaign, "count": n}``. Read from the campaigns'
    tallies, which have no time: a campaign counts whole, whenever its messages failed."""
    since = (now or timezone.now()) - timedelta(days=days)
    ids = list(Campaign.objects.filter(launched_at__gte=since).values_list("pk", flat=True))
    causes = messaging.campaigns_failure_causes(campaign_ids=ids)
    top = {pk for entry in causes for pk, _n in entry["campaigns"][:3]}
    campaigns = Campaign.objects.in_bulk(top)
    for entry in causes:
        entry["campaigns"] = [{"campaign": campaigns[pk], "count": n} for pk, n in entry["campaigns"][:3]]
    return causes


def period_starts(*, now: datetime | None = None) -> dict[str, datetime]:
    """The start of today and of this week (Monday) in the current timezone (the staff member's own, see
    ``config.timezones``), as aware datetimes."""
    zone = timezone.get_current_timezone()
    today = timezone.localtime(now or timezone.now(), zone).date()
    return {
        "today": datetime.combine(today, time.min, tzinfo=zone),
        "week": datetime.combine(today - timedelta(days=today.weekday()), time.min, tzinfo=zone),
    }


def providers_volume(*, now: datetime | None = None) -> list[dict]:
    """Per provider, today's and this week's messages (``messaging.providers_volume``: sent, delivered,
    undelivered, failed, delivery rate), as ``periods``: ``[("today", figures or None), ("week", figures)]``;
    today and the week begin in the current timezone. Providers with figures this week."""
    now = now or timezone.now()
    starts = period_starts(now=now)
    week = messaging.providers_volume(since=starts["week"], until=now)
    today = {entry["provider"]: entry for entry in messaging.providers_volume(since=starts["today"], until=now)}
    return [{"provider": e["provider"], "provider_name": e["provider_name"],
             "periods": [("today", today.get(e["provider"])), ("week", e)]} for e in week]
