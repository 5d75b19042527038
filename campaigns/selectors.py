"""Reads for campaigns and their pages. Messaging data comes through ``messaging.selectors`` only."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet

from messaging import selectors as messaging
from messaging.models import FINAL_STATUSES

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
    """Where the campaign's messages stand (``messaging.campaign_delivery``), its status, and the replies and
    opt-outs it caused."""
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


def campaign_recipient_figures(*, campaign: Campaign, counts: dict[str, int],
                               superseded: dict[str, int] | None = None) -> dict:
    """The campaign's recipients per status, told apart from its messages: a resend is a second message to the
    same recipient, so each status counts its messages (``counts``) less those a resend replaced. ``total`` is
    the recipients the campaign was launched to; ``done_percent`` the share with a final status;
    ``delivery_rate`` the share delivered of the recipients with an outcome (delivered, undelivered or
    failed), None before the first outcome. ``superseded``: the campaign's replaced messages by status, when the
    caller read them already (several campaigns at once)."""
    if superseded is None:
        superseded = messaging.campaign_superseded(campaign_id=campaign.pk)
    by_status = {status: max(0, n - superseded.get(status, 0)) for status, n in counts.items()}
    total = campaign.recipient_count or sum(by_status.values())
    final = sum(by_status.get(status, 0) for status in FINAL_STATUSES)
    outcomes = sum(by_status.get(status, 0) for status in ("delivered", "undelivered", "failed"))
    return {
        "total": total,
        "counts": by_status,
        "final": final,
        "done_percent": min(100.0, round(100 * final / total, 1)) if total else 0.0,
        "outcomes": outcomes,
        "delivery_rate": round(100 * by_status.get("delivered", 0) / outcomes, 1) if outcomes else None,
        "superseded": sum(superseded.values()),
    }


def campaign_dashboard(*, campaign: Campaign) -> dict:
    """Everything the campaign's page shows, as the page renders it first and as its stats endpoint answers
    while it sends: ``campaign_summary`` (messages per status as ``counts``), ``recipients`` (per status, with
    progress and delivery rate), the ``timeline`` of outcomes, the figures ``by_sender``, the ``failures`` by
    cause and ``failure_codes`` by cause, provider and code, and the ``failovers`` to the backup sender. Read
    from counters and tallies only: the same few rows at any size."""
    summary = campaign_summary(campaign=campaign)
    recipients = campaign_recipient_figures(campaign=campaign, counts=summary["counts"])
    failures = [{"cause": _cause_dict(f["cause"]), "count": f["count"]}
                for f in messaging.campaign_failure_causes(campaign_id=campaign.pk)]
    codes = [{**c, "cause": _cause_dict(c["cause"])} for c in messaging.campaign_failure_codes(campaign_id=campaign.pk)]
    failovers = [{**f, "cause": _cause_dict(f["cause"]), "circuit_open": f["code"] == "circuit_open"}
                 for f in messaging.campaign_failovers(campaign_id=campaign.pk)]
    return {
        **summary,
        "recipients": recipients,
        "timeline": messaging.campaign_timeline(campaign_id=campaign.pk),
        "by_sender": messaging.campaign_by_sender(campaign_id=campaign.pk),
        "failures": failures,
        "failure_codes": codes,
        "failovers": failovers,
    }


def _cause_dict(cause) -> dict:
    """A cause (``messaging.providers.base.cause_info``) as plain data for the page and its JSON."""
    return {"code": cause.code, "label": cause.label, "explanation": cause.explanation, "advice": cause.advice}


# ---- the campaign's results, one row per message ----------------------------------------------------------

RESULTS_PAGE = 50
_ID_MAX = 2**63 - 1  # the largest id a database column holds


def query_id(value) -> int | None:
    """An id read from a query string: ASCII digits within what an id column holds; None for anything else
    (a number too large for the database, "²" or "١٢", which Python calls digits, would fail the query)."""
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    number = int(text)
    return number if 0 < number <= _ID_MAX else None


@dataclass(frozen=True)
class ResultFilters:
    """What the results table (and its export) is narrowed to, read from the query string: ``status``,
    ``cause``, ``sender`` (an id), ``provider`` and ``q`` (words: a number, written any way, or a name)."""

    status: str = ""
    cause: str = ""
    sender: int | None = None
    provider: str = ""
    q: str = ""

    NAMES = ("status", "cause", "sender", "provider", "q")

    @classmethod
    def from_query(cls, query) -> ResultFilters:
        def text(name: str, limit: int) -> str:  # no NUL: no database column or query takes one
            return (query.get(name) or "").replace("\x00", "").strip()[:limit]

        return cls(status=text("status", 12), cause=text("cause", 20), sender=query_id(query.get("sender")),
                   provider=text("provider", 20), q=text("q", 100))

    def params(self) -> dict[str, str]:
        """The filters set, as query-string parameters (for links that keep them)."""
        values = {"status": self.status, "cause": self.cause, "sender": str(self.sender or ""),
                  "provider": self.provider, "q": self.q}
        return {name: value for name, value in values.items() if value}

    @property
    def only_status(self) -> bool:
        """Nothing but (at most) a status is filtered on: the counters know the total."""
        return not (self.cause or self.sender or self.provider or self.q)


def _phone_term(term: str) -> str:
    return re.sub(r"[^\d+]", "", term) if _PHONE_TERM.fullmatch(term) else ""


def campaign_results(*, campaign: Campaign, filters: ResultFilters, after: int | None = None,
                     before: int | None = None) -> QuerySet:
    """The campaign's messages narrowed by ``filters``, in id order (``before``: descending from it). The words
    of ``q`` that look like a number, joined (a number written with spaces is several words), must be in the
    number the message went to; every other word in the contact's first or last name."""
    phone = "".join(_phone_term(term) for term in filters.q.split() if _phone_term(term))
    names = [term for term in filters.q.split() if not _phone_term(term)]
    contact_ids = None
    if names:
        contacts = Contact.objects.all()
        for term in names:
            contacts = contacts.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term))
        contact_ids = contacts.values("pk")
    return messaging.campaign_messages(
        campaign_id=campaign.pk, status=filters.status or None, search=phone, cause=filters.cause,
        sender_id=filters.sender, provider=filters.provider, contact_ids=contact_ids, after=after, before=before)


@dataclass
class ResultsPage:
    """One page of the results table: its ``rows`` (messages, ascending), the ids to link the next page
    (``next_after``) and the previous one (``previous_before``) from, and ``total`` when the counters know it
    (no filter but the status), else None."""

    rows: list
    next_after: int | None
    previous_before: int | None
    total: int | None


def campaign_results_page(*, campaign: Campaign, filters: ResultFilters, after: int | None = None,
                          before: int | None = None, size: int = RESULTS_PAGE,
                          counts: dict[str, int] | None = None) -> ResultsPage:
    """A page of ``campaign_results`` by keyset (ids ``after`` or ``before`` one), each message with its contact
    and sender, reading one row more than it shows to know whether another page follows. Never counts the
    campaign's messages: ``total`` comes from the counters (``counts``, messages per status)."""
    query = campaign_results(campaign=campaign, filters=filters, after=after, before=before).select_related(
        "contact", "sender")
    rows = list(query[:size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if before is not None:
        rows.reverse()
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, after is not None and bool(rows)
    total = None
    if filters.only_status:
        counts = counts if counts is not None else messaging.campaign_counts(campaign_id=campaign.pk)
        total = counts.get(filters.status, 0) if filters.status else sum(counts.values())
    return ResultsPage(rows=rows, next_after=rows[-1].pk if rows and has_next else None,
                       previous_before=rows[0].pk if rows and has_previous else None, total=total)


def campaign_result_senders(*, campaign: Campaign, by_sender: list[dict] | None = None) -> list[tuple[int, str]]:
    """The senders the results can be narrowed to: the campaign's own and any its messages went through."""
    from messaging.selectors import senders_by_id

    ids = {campaign.sender_id, campaign.backup_sender_id, *campaign.more_senders.values_list("pk", flat=True)}
    ids |= {row["sender_id"] for row in (by_sender or [])}
    return [(s.pk, str(s)) for s in sorted(senders_by_id(pk for pk in ids if pk), key=lambda s: s.name)]


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
