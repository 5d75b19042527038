"""Reads for campaigns and their pages. Messaging data comes through ``messaging.selectors`` only."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from messaging import selectors as messaging

from .models import Campaign, Contact


def contact_template_context(contact: Contact) -> dict:
    """The template variables of one contact (saved or not): its custom fields, then the standard fields,
    which win. Messaging adds ``phone`` (the number the message goes to)."""
    context = dict(contact.custom_fields or {})
    context.update(first_name=contact.first_name or "", last_name=contact.last_name or "", email=contact.email or "")
    return context


def contact_template_fields(contact_ids: Iterable[int]) -> dict[int, dict]:
    """``contact_template_context`` of many contacts in one query, by id (registered with messaging)."""
    rows = Contact.objects.filter(pk__in=list(contact_ids)).values("id", "first_name", "last_name", "email",
                                                                   "custom_fields")
    out = {}
    for row in rows:
        context = dict(row["custom_fields"] or {})
        context.update(first_name=row["first_name"] or "", last_name=row["last_name"] or "",
                       email=row["email"] or "")
        out[row["id"]] = context
    return out


def campaign_summary(*, campaign: Campaign) -> dict:
    return {"status": campaign.status, "suppressed": campaign.suppressed_count,
            **messaging.campaign_delivery(campaign_id=campaign.pk)}


def campaign_recipients(*, campaign: Campaign, status: str | None = None, search: str = "") -> QuerySet:
    """The campaign's messages for its recipients table, each with its contact."""
    return messaging.campaign_messages(campaign_id=campaign.pk, status=status, search=search).select_related("contact")


def campaign_audience(*, campaign: Campaign) -> QuerySet:
    """One row per number the campaign's lists hold, of contacts that have not opted out: ``contact_id`` and
    ``phone`` values, in contact order (what ``messaging.services.messages_queue`` takes)."""
    from django.db.models import F

    from .models import ListMembership

    members = ListMembership.objects.filter(contact_list__in=campaign.lists.all()).values("contact_id")
    return (Contact.objects.filter(pk__in=members, opted_out=False).order_by("id")
            .values("phone", contact_id=F("id")))


def campaign_opted_out_count(*, campaign: Campaign) -> int:
    """Contacts of the campaign's lists that have opted out (skipped at launch)."""
    from .models import ListMembership

    members = ListMembership.objects.filter(contact_list__in=campaign.lists.all()).values("contact_id")
    return Contact.objects.filter(pk__in=members, opted_out=True).count()
