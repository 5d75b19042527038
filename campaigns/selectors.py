"""Reads for campaigns and their pages. Messaging data comes through ``messaging.selectors`` only."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet

from messaging import selectors as messaging

from .models import Campaign, Contact, ContactList, ImportJob


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


def contact_timezones(contact_ids: Iterable[int]) -> dict[int, str]:
    """The zone of each of these contacts that has one, by id, in one query (registered with messaging, which
    reads a sending window in it)."""
    return dict(Contact.objects.filter(pk__in=list(contact_ids)).exclude(timezone="").values_list("id", "timezone"))


def campaign_summary(*, campaign: Campaign) -> dict:
    delivery = messaging.campaign_delivery(campaign_id=campaign.pk)
    replies = messaging.campaign_replies(campaign_id=campaign.pk)
    counts = delivery["counts"]
    reached = sum(counts.get(s, 0) for s in ("sent", "delivered", "undelivered"))
    replies["reply_rate"] = round(100 * replies["repliers"] / reached, 1) if reached else 0.0
    return {"status": campaign.status, "suppressed": campaign.suppressed_count,
            "paused_reason": campaign.paused_reason,
            "waiting_window": messaging.campaign_waiting_for_window(campaign_id=campaign.pk)
            if campaign.window_start is not None else 0,
            "replies": replies,
            **delivery}


def campaign_failures(*, campaign: Campaign) -> list[dict]:
    """Why the campaign's messages failed, by cause (for its page)."""
    return messaging.campaign_failure_causes(campaign_id=campaign.pk)


def campaign_recipients(*, campaign: Campaign, status: str | None = None, search: str = "") -> QuerySet:
    """The campaign's messages for its recipients table, each with its contact."""
    return messaging.campaign_messages(campaign_id=campaign.pk, status=status, search=search).select_related("contact")


def campaign_audience(*, campaign: Campaign) -> QuerySet:
    """One row per number the campaign's lists hold, of contacts that have not opted out and whose number is not
    flagged (a provider reported it invalid or unable to take SMS): ``contact_id`` and
    ``phone`` values, in contact order (what ``messaging.services.messages_queue`` takes)."""
    from django.db.models import F

    from .models import ListMembership

    members = ListMembership.objects.filter(contact_list__in=campaign.lists.all()).values("contact_id")
    return (Contact.objects.filter(pk__in=members, opted_out=False, number_problem="").order_by("id")
            .values("phone", contact_id=F("id")))


def campaign_opted_out_count(*, campaign: Campaign) -> int:
    """Contacts of the campaign's lists that have opted out (skipped at launch)."""
    from .models import ListMembership

    members = ListMembership.objects.filter(contact_list__in=campaign.lists.all()).values("contact_id")
    return Contact.objects.filter(pk__in=members, opted_out=True).count()


@dataclass(frozen=True)
class ListCounts:
    """A contact list's members, and how many of them have opted out or are on a fixed line (landline)."""

    members: int = 0
    opted_out: int = 0
    landline: int = 0

    @property
    def sendable(self) -> int:
        """Members a campaign sends to (opted-out contacts are skipped at launch)."""
        return self.members - self.opted_out


def list_counts(list_ids: Iterable[int]) -> dict[int, ListCounts]:
    """The counts of each given list, by id, in one aggregate query over the memberships joined to their
    contacts. A list without members (or an unknown id) counts zero."""
    from .models import ListMembership

    ids = [int(pk) for pk in list_ids]
    counts = {pk: ListCounts() for pk in ids}
    if not ids:
        return counts
    rows = (
        ListMembership.objects.filter(contact_list_id__in=ids).order_by().values("contact_list_id")
        .annotate(members=Count("pk"), opted_out=Count("pk", filter=Q(contact__opted_out=True)),
                  landline=Count("pk", filter=Q(contact__is_fixed_line=True)))
    )
    for row in rows:
        list_id = row.pop("contact_list_id")
        counts[list_id] = ListCounts(**row)
    return counts


_PHONE_TERM = re.compile(r"[\d\s().+\-]*\d[\d\s().+\-]*")


def list_members(contact_list: ContactList, search: str = "") -> QuerySet:
    """The contacts of a list for its members table, each with ``added_at`` (when it joined the list), in
    contact order (the order the memberships' index serves). ``search``: every word must be found in the
    number (written any way: spaces, dashes and brackets are ignored), a name or the email."""
    members = Contact.objects.filter(listmembership__contact_list=contact_list).annotate(
        added_at=F("listmembership__added_at"))
    for term in search.split():
        if _PHONE_TERM.fullmatch(term):
            members = members.filter(phone__contains=re.sub(r"[^\d+]", "", term))
        else:
            members = members.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term)
                                     | Q(email__icontains=term) | Q(phone__contains=term))
    return members.order_by("id")


def list_recent_imports(contact_list: ContactList, limit: int = 5) -> list[ImportJob]:
    """The newest imports into a list, for its page."""
    return list(contact_list.import_jobs.select_related("created_by").order_by("-id")[:limit])
