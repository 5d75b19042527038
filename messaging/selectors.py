"""Reads for messaging, and everything other apps may ask about it: consent, campaign delivery counts, a
campaign's messages, and what a sender's provider allows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from .models import (
    FINAL_STATUSES,
    PENDING_STATUSES,
    CampaignCounter,
    CampaignMinute,
    CampaignTally,
    ConsentEvent,
    Dispatch,
    Message,
    Sender,
    Suppression,
)
from .phones import phone_e164
from .providers import provider_class, provider_for
from .providers import sender_problem as provider_sender_problem
from .providers.base import ConfigurationError, MediaFile, cause_info, causes
from .providers.codes import error_meaning
from .windows import WAITING_NOTE

S = Message.Status
# The statuses a campaign message can have, in the order staff read them (``received`` is inbound only).
MESSAGE_STATUSES = tuple(status for status in S.values if status != S.RECEIVED)


# ---- consent ------------------------------------------------------------------------------------


def is_opted_out(phone: str) -> bool:
    """Whether one number has opted out (the consent ledger's current state). Any way of writing the number
    that phonenumbers reads is accepted; something that is not a phone number has not opted out."""
    try:
        phone = phone_e164(phone)
    except ValueError:
        return False
    return Suppression.objects.filter(phone=phone, opted_out=True).exists()


def phones_opted_out(phones: list[str]) -> set[str]:
    """Which of these E.164 numbers have opted out. On PostgreSQL the numbers travel as one array parameter
    (binding thousands of values one by one costs more than the query)."""
    if not phones:
        return set()
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(f"SELECT phone FROM {Suppression._meta.db_table} WHERE opted_out AND phone = ANY(%s)",
                           [phones])
            return {phone for (phone,) in cursor.fetchall()}
    found: set[str] = set()
    for start in range(0, len(phones), 900):
        found.update(Suppression.objects.filter(phone__in=phones[start:start + 900], opted_out=True)
                     .values_list("phone", flat=True))
    return found


# ---- campaign delivery ----------------------------------------------------------------------------


def _by_status(rows) -> dict[str, int]:
    counts = dict.fromkeys(MESSAGE_STATUSES, 0)
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def campaign_counts(*, campaign_id: int) -> dict[str, int]:
    """Messages per status for one campaign, from the counters (constant time at any size)."""
    return _by_status(CampaignCounter.objects.filter(campaign_id=campaign_id).values("status")
                      .annotate(n=Sum("count")).order_by())


def campaigns_counts(*, campaign_ids) -> dict[int, dict[str, int]]:
    """``campaign_counts`` of several campaigns, in one query over their counters."""
    ids = [int(pk) for pk in campaign_ids]
    rows: dict[int, list] = {pk: [] for pk in ids}
    for row in (CampaignCounter.objects.filter(campaign_id__in=ids).values("campaign_id", "status")
                .annotate(n=Sum("count")).order_by()):
        rows[row["campaign_id"]].append(row)
    return {pk: _by_status(found) for pk, found in rows.items()}


def campaign_counts_exact(*, campaign_id: int) -> dict[str, int]:
    """The same counts by COUNT(*), for checks and repairs."""
    return _by_status(Message.objects.filter(campaign_id=campaign_id).values("status")
                      .annotate(n=Count("id")).order_by())


def campaign_delivery(*, campaign_id: int) -> dict:
    """Where a campaign's messages stand: counts by status, how many are pending and final, how many were sent
    and await their delivery receipt, and the share that is final."""
    counts = campaign_counts(campaign_id=campaign_id)
    total = sum(counts.values())
    final = sum(counts.get(s, 0) for s in FINAL_STATUSES)
    return {
        "counts": counts,
        "total": total,
        "pending": sum(counts.get(s, 0) for s in PENDING_STATUSES),
        "final": final,
        "awaiting_receipt": counts.get(S.SENT, 0),
        "done_percent": round(100 * final / total, 1) if total else 0.0,
    }


def campaign_settled(*, campaign_id: int) -> bool:
    """Whether a campaign has nothing left to send or to wait for: no message is pending, and every ``sent``
    one has either its delivery receipt or, FINAL_RECONCILE_AFTER_SECONDS after sending, been looked up at the
    provider (some carriers never return receipts; such a message can still move forward later)."""
    counts = campaign_counts(campaign_id=campaign_id)
    if any(counts.get(status, 0) for status in PENDING_STATUSES):
        return False
    messages = Message.objects.filter(campaign_id=campaign_id)
    if messages.filter(status__in=PENDING_STATUSES).exists():
        return False  # counters and rows disagree: trust the rows
    receipt_due = timezone.now() - timedelta(seconds=settings.FINAL_RECONCILE_AFTER_SECONDS)
    return not messages.filter(status=S.SENT).filter(Q(sent_at__gte=receipt_due) | Q(checked_at__isnull=True)).exists()


def campaign_waiting_for_window(campaign_id: int) -> int:
    """How many of a campaign's messages are queued until their sending window opens in their recipient's
    local time (given back unsent by the send path, due later than now). They are pending: the campaign does
    not complete before they are sent."""
    return Message.objects.filter(campaign_id=campaign_id, status=S.QUEUED, next_attempt_at__gt=timezone.now(),
                                  error_message__startswith=WAITING_NOTE).count()


def campaign_messages(*, campaign_id: int, status: str | None = None, search: str = "", cause: str = "",
                      sender_id: int | None = None, provider: str = "", contact_ids=None, after: int | None = None,
                      before: int | None = None) -> QuerySet[Message]:
    """A campaign's messages in the order they were queued (by id), filtered: of one ``status``, failure
    ``cause``, ``sender_id`` or ``provider``; to numbers containing ``search``; of the contacts ``contact_ids``
    (ids or a subquery, which the caller builds: a search by name). Keyset bounds: ``after`` an id (ascending
    from it), or ``before`` an id (descending from it, the previous page read backwards). No COUNT here: a
    caller slices the page it shows."""
    messages = Message.objects.filter(campaign_id=campaign_id)
    if status:
        messages = messages.filter(status=status)
    if cause:
        messages = messages.filter(error_cause=cause)
    if sender_id:
        messages = messages.filter(sender_id=sender_id)
    if provider:
        messages = messages.filter(sender_id__in=Sender.objects.filter(provider=provider).values("pk"))
    if search:
        messages = messages.filter(to__contains=search)
    if contact_ids is not None:
        messages = messages.filter(contact_id__in=contact_ids)
    if before is not None:
        return messages.filter(id__lt=before).order_by("-id")
    if after is not None:
        messages = messages.filter(id__gt=after)
    return messages.order_by("id")


# ---- replies ----------------------------------------------------------------------------------------

CONVERSATION_MAX = 200  # the most recent messages a conversation page shows


def _tally_rows(campaign_id: int, events) -> list[dict]:
    return list(CampaignTally.objects.filter(campaign_id=campaign_id, event__in=list(events)).order_by()
                .values("sender_id", "event", "cause", "code").annotate(n=Sum("count")))


def campaign_replies(*, campaign_id: int) -> dict:
    """What a campaign's messages caused: replies (and from how many numbers), opt-outs by keyword or reported
    by the provider, and help requests. A reply belongs to the campaign whose message it answers (the most
    recent one from that sender to that number when it came). Read from the tallies (``services.tallies``):
    a few rows at any size."""
    figures = dict.fromkeys(("replies", "repliers", "helps", "opt_outs"), 0)
    names = {"reply": "replies", "replier": "repliers", "help": "helps", "opt_out": "opt_outs"}
    for row in _tally_rows(campaign_id, names):
        figures[names[row["event"]]] += row["n"]
    return figures


def campaign_failure_causes(*, campaign_id: int) -> list[dict]:
    """A campaign's failed and undelivered messages grouped by cause, most frequent first: each with the cause
    (label, explanation, advice) and how many messages it hit."""
    by_cause: dict[str, int] = {}
    for row in _tally_rows(campaign_id, (S.FAILED, S.UNDELIVERED)):
        by_cause[row["cause"] or causes.UNKNOWN] = by_cause.get(row["cause"] or causes.UNKNOWN, 0) + row["n"]
    ranked = sorted(by_cause.items(), key=lambda item: (-item[1], item[0]))
    return [{"cause": cause_info(cause), "count": n} for cause, n in ranked]


def campaign_failure_codes(*, campaign_id: int) -> list[dict]:
    """A campaign's failures by cause, provider and provider code, most frequent first: each with the cause,
    the provider's name, the code, what the provider documents it to mean, and how many messages it hit."""
    senders = _sender_names(campaign_id)
    grouped: dict[tuple[str, str, str], int] = {}
    for row in _tally_rows(campaign_id, (S.FAILED, S.UNDELIVERED)):
        provider = senders.get(row["sender_id"], {}).get("provider", "")
        key = (row["cause"] or causes.UNKNOWN, provider, row["code"])
        grouped[key] = grouped.get(key, 0) + row["n"]
    out = []
    for (cause, provider, code), n in sorted(grouped.items(), key=lambda item: (-item[1], item[0])):
        out.append({"cause": cause_info(cause), "provider": provider, "provider_name": _provider_name(provider),
                    "code": code, "meaning": error_meaning(provider, code) if code else "", "count": n})
    return out


def campaign_by_sender(*, campaign_id: int) -> list[dict]:
    """Per sender the campaign's messages went through: accepted by the provider (``sent``), ``delivered``,
    ``undelivered``, ``failed``, and ``failover_in`` (messages moved to it as the backup sender), with the
    sender's ``name`` and ``provider``. Senders in the order of their first figure."""
    senders = _sender_names(campaign_id)
    figures: dict[int, dict] = {}
    for row in _tally_rows(campaign_id, (S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, "failover")):
        entry = figures.setdefault(row["sender_id"], {
            "sender_id": row["sender_id"], **senders.get(row["sender_id"], {"name": "", "provider": ""}),
            S.SENT: 0, S.DELIVERED: 0, S.UNDELIVERED: 0, S.FAILED: 0, "failover_in": 0})
        entry["failover_in" if row["event"] == "failover" else row["event"]] += row["n"]
    for entry in figures.values():
        entry["provider_name"] = _provider_name(entry["provider"])
        outcomes = entry[S.DELIVERED] + entry[S.UNDELIVERED] + entry[S.FAILED]
        entry["delivery_rate"] = round(100 * entry[S.DELIVERED] / outcomes, 1) if outcomes else None
    return sorted(figures.values(), key=lambda e: e["sender_id"])


def campaign_failovers(*, campaign_id: int) -> list[dict]:
    """Messages moved to a backup sender, by backup sender, cause and code of the failure that moved them (a
    ``code`` of ``circuit_open``: the main sender's circuit was open), most first."""
    senders = _sender_names(campaign_id)
    rows = sorted(_tally_rows(campaign_id, ("failover",)), key=lambda r: (-r["n"], r["sender_id"]))
    return [{"backup": senders.get(row["sender_id"], {}).get("name", ""), "backup_id": row["sender_id"],
             "cause": cause_info(row["cause"] or causes.UNKNOWN), "code": row["code"], "count": row["n"]}
            for row in rows]


def campaign_superseded(*, campaign_id: int) -> dict[str, int]:
    """Messages a resend replaced with a new one to the same recipient, by the status they ended in."""
    return campaigns_superseded(campaign_ids=[campaign_id])[campaign_id]


def campaigns_superseded(*, campaign_ids) -> dict[int, dict[str, int]]:
    """``campaign_superseded`` of several campaigns, in one query over their tallies."""
    ids = [int(pk) for pk in campaign_ids]
    counts: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    for row in (CampaignTally.objects.filter(campaign_id__in=ids, event="superseded").values("campaign_id", "cause")
                .annotate(n=Sum("count")).order_by()):
        found = counts[row["campaign_id"]]
        found[row["cause"]] = found.get(row["cause"], 0) + row["n"]
    return counts


TIMELINE_MINUTES_MAX = 180  # a longer campaign's timeline is drawn per hour


def campaign_timeline(*, campaign_id: int) -> dict:
    """Messages accepted by the provider (``sent``), ``delivered`` and ``failed`` (failed or undelivered) per
    minute, or per hour (``unit``) once the campaign spans more than TIMELINE_MINUTES_MAX minutes: ``points``,
    oldest first, each ``{"at": ISO time, "sent": n, "delivered": n, "failed": n}``, without gaps."""
    minutes = CampaignMinute.objects.filter(campaign_id=campaign_id).order_by()
    bounds = minutes.aggregate(first=Min("minute"), last=Max("minute"))
    first, last = bounds["first"], bounds["last"]
    if first is None:
        return {"unit": "minute", "points": []}
    hourly = (last - first) > timedelta(minutes=TIMELINE_MINUTES_MAX)
    step = timedelta(hours=1) if hourly else timedelta(minutes=1)
    # Summed by the database, per hour for a long campaign: a few hundred rows reach Python at most.
    if hourly:
        rows = list(minutes.annotate(at=TruncHour("minute", tzinfo=UTC)).values("at", "status")
                    .annotate(n=Sum("count")).values_list("at", "status", "n"))
    else:
        rows = list(minutes.values("minute", "status").annotate(n=Sum("count")).values_list("minute", "status", "n"))

    def bucket(at):
        return at.replace(minute=0, second=0, microsecond=0) if hourly else at.replace(second=0, microsecond=0)

    points: dict = {}
    at = bucket(first)
    while at <= bucket(last):
        points[at] = {"sent": 0, "delivered": 0, "failed": 0}
        at += step
    for at, status, n in rows:
        name = "failed" if status in (S.FAILED, S.UNDELIVERED) else status
        if name in ("sent", "delivered", "failed"):
            points[bucket(at)][name] += n
    return {"unit": "hour" if hourly else "minute",
            "points": [{"at": at.isoformat(), **figures} for at, figures in points.items()]}


def _sender_names(campaign_id: int) -> dict[int, dict]:
    ids = CampaignTally.objects.filter(campaign_id=campaign_id).order_by().values("sender_id").distinct()
    return {row["pk"]: {"name": row["name"], "provider": row["provider"]}
            for row in Sender.objects.filter(pk__in=ids).values("pk", "name", "provider")}


def _provider_name(code: str) -> str:
    try:
        return provider_class(code).name
    except LookupError:
        return code


def replies_unread_count() -> int:
    return Message.objects.filter(direction=Message.Direction.INBOUND, read_at__isnull=True).count()


def conversation(*, address: str) -> list[Message]:
    """What we sent to an address and what it wrote, oldest first (the most recent CONVERSATION_MAX). Each
    message has ``campaign_name``: its campaign's, or for a reply, the one of the message it answers."""
    rows = list(Message.objects.filter(to=address).select_related("sender").order_by("-id")[:CONVERSATION_MAX])
    rows.reverse()
    names = dispatch_names(m.campaign_id or m.reply_campaign_id for m in rows)
    for m in rows:
        m.campaign_name = names.get(m.campaign_id or m.reply_campaign_id, "")
    return rows


def address_opted_out(address: str) -> bool:
    """Whether an address, as stored (a number, a short code, a sender ID), has opted out."""
    return bool(address) and Suppression.objects.filter(phone=address, opted_out=True).exists()


def consent_last_change(address: str) -> ConsentEvent | None:
    return ConsentEvent.objects.filter(phone=address).order_by("-id").first() if address else None


def dispatch_names(campaign_ids) -> dict[int, str]:
    """Campaign names by id, as the send path knows them (pages that list messages show them)."""
    ids = {cid for cid in campaign_ids if cid}
    return dict(Dispatch.objects.filter(campaign_id__in=ids).values_list("campaign_id", "name")) if ids else {}


# ---- what a sender's provider allows --------------------------------------------------------------


def sender_problem(*, sender: Sender) -> str:
    """Why this sender cannot be used as stored (its secrets cannot be decrypted, a secret kept in the wrong
    place), in words that name it and never a secret; "" when it can."""
    return provider_sender_problem(sender)


def sender_callbacks_unprotected(*, sender: Sender) -> bool:
    """Whether this sender's callbacks can only be proven by a callback password (its provider signs nothing,
    or its options ask for credentials in the callback URL) and it has none: every callback of it is refused
    until one is set."""
    try:
        needed = provider_class(sender.provider).callback_password_needed(sender.options or {})
    except LookupError:
        return False
    return needed and not sender.callback_password


def senders_callbacks_unprotected() -> QuerySet[Sender]:
    """The senders ``sender_callbacks_unprotected`` flags (for an overview of what staff must fix)."""
    candidates = Sender.objects.filter(callback_password="").only("pk", "provider", "options", "callback_password")
    return Sender.objects.filter(pk__in=[s.pk for s in candidates if sender_callbacks_unprotected(sender=s)])


# ---- sender health --------------------------------------------------------------------------------

HEALTH_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class CallbackRefusal:
    reason: str  # as the webhook counted it, e.g. "403 signature refused: X-Plivo-Signature-V3 does not match"
    count: int
    last_at: datetime


@dataclass(frozen=True)
class SenderHealth:
    """What staff check first on a sender's page: its circuit, its pace, and the callbacks it got."""

    circuit_open: bool
    open_until: datetime | None  # when the open circuit closes; the last time it did when closed
    open_reason: str  # why the circuit last opened ("" when it never did)
    consecutive_failures: int  # provider failures in a row so far
    failures_to_open: int  # CIRCUIT_FAILURES
    configured_mps: float
    effective_mps: float
    rate_factor: float  # share of the configured pace in use
    last_accepted_at: datetime | None  # last callback accepted, ever
    last_refused_at: datetime | None  # last callback refused, ever
    accepted: int  # callbacks accepted over the window
    refused: int  # callbacks refused over the window
    refusals: list[CallbackRefusal]  # why, most frequent first
    since: datetime  # start of the window

    @property
    def pace_reduced(self) -> bool:
        return self.rate_factor < 1.0

    @property
    def callbacks_warning(self) -> str:
        """Why staff should look now ("" when nothing is wrong): refusals with no acceptance, or more refusals
        than acceptances, over the window."""
        if self.refused and not self.accepted:
            return (f"{self.refused} callback{'s' if self.refused != 1 else ''} refused and none accepted in the last "
                    "day: this sender's delivery reports and replies are not reaching us.")
        if self.refused > self.accepted:
            return (f"More callbacks refused ({self.refused}) than accepted ({self.accepted}) in the last day: many "
                    "delivery reports and replies are not reaching us.")
        return ""


def sender_health(sender: Sender, *, now: datetime | None = None) -> SenderHealth:
    """The sender's circuit (open or closed, why, failures so far), its pace (configured and in use), and its
    callbacks: the last one accepted, and those accepted and refused (by reason) over the last 24 hours, read
    from the pre-aggregated ``CallbackTally`` rows (a few per hour, whatever the traffic)."""
    from . import pacing
    from .models import CallbackTally, SenderPace

    now = now or timezone.now()
    since = now - HEALTH_WINDOW
    pace = (SenderPace.objects.filter(sender_id=sender.pk)
            .values("open_until", "open_reason", "consecutive_failures").first()) or {}
    open_until = pace.get("open_until")
    tallies = CallbackTally.objects.filter(sender_id=sender.pk)
    # The last callback of each kind is in the newest hour that has one: read that hour only, not the history.
    last = {}
    for accepted in (True, False):
        kind = tallies.filter(accepted=accepted)
        newest = kind.order_by("-hour").values("hour")[:1]
        last[accepted] = kind.filter(hour=Subquery(newest)).aggregate(last=Max("last_at"))["last"]
    accepted = refused = 0
    refusals = []
    for row in (tallies.filter(hour__gte=since).values("accepted", "reason")
                .annotate(n=Sum("count"), last=Max("last_at")).order_by()):
        if row["accepted"]:
            accepted += row["n"]
        else:
            refused += row["n"]
            refusals.append(CallbackRefusal(reason=row["reason"] or "refused", count=row["n"], last_at=row["last"]))
    refusals.sort(key=lambda r: (-r.count, r.reason))
    factor = pacing.rate_factor(sender.pk)
    return SenderHealth(
        circuit_open=bool(open_until and open_until > now),
        open_until=open_until,
        open_reason=pace.get("open_reason") or "",
        consecutive_failures=pace.get("consecutive_failures") or 0,
        failures_to_open=settings.CIRCUIT_FAILURES,
        configured_mps=sender.mps,
        effective_mps=pacing.effective_mps(sender.pk, sender.mps),
        rate_factor=factor,
        last_accepted_at=last.get(True),
        last_refused_at=last.get(False),
        accepted=accepted,
        refused=refused,
        refusals=refusals,
        since=since,
    )


def sender_content_problems(*, sender: Sender, body: str, media_urls: list[str]) -> list[str]:
    """Why this sender's provider would refuse this text and media, in plain words (empty when it would not):
    its documented limits, or a sender whose stored secrets cannot be used."""
    try:
        return provider_for(sender).check_limits(body, list(media_urls or []))
    except ConfigurationError as exc:
        return [str(exc)]


def senders_media_problems(*, senders: list[Sender], urls: list[str]) -> tuple[list[str], list[str]]:
    """(problems, warnings) for these media URLs on each sender's provider: each URL's size is asked of its
    server (HEAD, a short timeout; network calls: never inside a transaction), once per provider. A file over
    a provider's documented limit is a problem; a URL whose size cannot be learned is a warning. Problems name
    the sender when there are several."""
    problems: list[str] = []
    warnings: list[str] = []
    checked: set[str] = set()
    for sender in senders:
        if not urls or sender.provider in checked:
            continue
        checked.add(sender.provider)  # the limits are the provider's: one HEAD per URL and provider
        try:
            found, warned = provider_for(sender).check_media(list(urls))
        except ConfigurationError:
            continue  # reported by sender_content_problems
        prefix = f"{sender.name}: " if len(senders) > 1 else ""
        problems.extend(prefix + p for p in found)
        warnings.extend(w for w in warned if w not in warnings)
    return problems, warnings


def opted_out_phones() -> QuerySet:
    """The numbers the consent ledger says not to message, as a subquery of ``phone`` values."""
    return Suppression.objects.filter(opted_out=True).values("phone")


def sender_pace(*, sender: Sender) -> float:
    """Messages per second the sender sends at now: its configured pace, lowered while its provider answers
    429 (see ``messaging.pacing``)."""
    from . import pacing

    return pacing.effective_mps(sender.pk, sender.mps)


def senders_by_id(ids) -> list[Sender]:
    return list(Sender.objects.filter(pk__in=list(ids)))


def campaign_resendable(*, campaign_id: int) -> list[Message]:
    """The latest failed or undelivered message of each recipient that a resend to failed would message again
    (what ``services.messages_requeue_failed`` queues): nobody who got, may get or may have got a message, and
    no number that opted out. Each with ``to``, ``body``, ``contact_id`` and ``sender_id`` (the sender the resend goes
    through: the lowest of the recipient's failed messages, as the resend picks it)."""
    from .services.queueing import RESENDABLE

    messages = Message.objects.filter(campaign_id=campaign_id)
    busy = messages.exclude(status__in=(*RESENDABLE, S.CANCELED)).values("to")
    rows = (messages.filter(status__in=RESENDABLE).exclude(to__in=busy).exclude(to__in=opted_out_phones())
            .only("id", "to", "body", "sender_id", "contact_id").order_by("to", "-round"))
    latest: dict[str, Message] = {}
    for row in rows.iterator(chunk_size=2000):
        first = latest.setdefault(row.to, row)
        first.sender_id = min(first.sender_id, row.sender_id)
    return list(latest.values())


def senders_media_file_problems(*, senders: list[Sender], files: list[MediaFile], urls: list[str] | None = None
                                ) -> tuple[list[str], list[str]]:
    """(problems, warnings) for one message's media on each sender's provider, once per provider: ``files``
    already known (uploads not stored yet) and, when given, ``urls`` whose size and type are asked of their
    servers (HEAD, a short timeout; network calls: never inside a transaction). Problems are the provider's
    documented limits: media at all, how many (files and URLs together), each file's size or the total, each
    file's type; they name the sender when there are several. Warnings are what a URL's server did not say."""
    problems: list[str] = []
    warnings: list[str] = []
    checked: set[str] = set()
    for sender in senders:
        if (not files and not urls) or sender.provider in checked:
            continue
        checked.add(sender.provider)
        try:
            adapter = provider_for(sender)
        except ConfigurationError:
            continue  # reported by sender_content_problems
        url_files, warned = adapter.media_files(list(urls or []))
        prefix = f"{sender.name}: " if len(senders) > 1 else ""
        problems.extend(prefix + p for p in adapter.check_media_files([*url_files, *files]))
        warnings.extend(w for w in warned if w not in warnings)
    return problems, warnings


# ---- overview -------------------------------------------------------------------------------------------
# The admin home's figures. Each reads the tallies (``services.tallies``) and the senders' small tables, never
# the message table: the home costs the same at a hundred messages and at ten million.

PACE_MINUTES = 5  # a campaign's pace: messages the provider accepted per minute over this many last minutes
CALLBACKS_REFUSED_HOURS = 24  # refused callbacks are listed for this many last hours
FAILURE_EVENTS = (S.FAILED, S.UNDELIVERED)


def _hour_start(at):
    """The UTC hour ``at`` falls in (the tallies count per UTC hour)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _all_sender_ids() -> list[int]:
    # Hour tallies are keyed by sender first: naming the senders lets the database read them by its index.
    return list(Sender.objects.order_by().values_list("pk", flat=True))


def campaigns_accepted_per_minute(*, campaign_ids, minutes: int = PACE_MINUTES, now=None) -> dict[int, float]:
    """For each of these campaigns, the messages its providers accepted per minute over the last ``minutes``
    minutes and the current one (``CampaignMinute``); 0.0 for a campaign that sent nothing in that time."""
    ids = [int(pk) for pk in campaign_ids]
    pace = dict.fromkeys(ids, 0.0)
    if not ids:
        return pace
    now = now or timezone.now()
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    elapsed = (now - since).total_seconds() / 60
    rows = (CampaignMinute.objects.filter(campaign_id__in=ids, minute__gte=since, status=S.SENT).order_by()
            .values("campaign_id").annotate(n=Sum("count")))
    for row in rows:
        pace[row["campaign_id"]] = round(row["n"] / elapsed, 1)
    return pace


def providers_volume(*, since, until=None) -> list[dict]:
    """Messages per provider from ``since`` (to ``until``, default now): accepted by the provider (``sent``),
    ``delivered``, ``undelivered`` and ``failed``, and the ``delivery_rate`` (percent of delivered among the
    messages that reached an outcome; None before any). Read from the senders' hour tallies (``SenderHour``),
    which count by the UTC hour: a period starting within an hour (a timezone half an hour off UTC) counts
    that whole hour. Providers by name; only providers with figures in the period."""
    from .models import SenderHour

    hours = SenderHour.objects.filter(sender_id__in=_all_sender_ids(), hour__gte=_hour_start(since))
    if until is not None:
        hours = hours.filter(hour__lt=until)
    rows = hours.order_by().values("sender__provider", "status").annotate(n=Sum("count"))
    by_provider: dict[str, dict] = {}
    for row in rows:
        code = row["sender__provider"]
        entry = by_provider.setdefault(code, {"provider": code, "provider_name": _provider_name(code), S.SENT: 0,
                                              S.DELIVERED: 0, S.UNDELIVERED: 0, S.FAILED: 0})
        if row["status"] in entry:
            entry[row["status"]] += row["n"]
    for entry in by_provider.values():
        outcomes = entry[S.DELIVERED] + entry[S.UNDELIVERED] + entry[S.FAILED]
        entry["outcomes"] = outcomes
        entry["delivery_rate"] = round(100 * entry[S.DELIVERED] / outcomes, 1) if outcomes else None
    return sorted(by_provider.values(), key=lambda e: (e["provider_name"].lower(), e["provider"]))


def campaigns_failure_causes(*, campaign_ids) -> list[dict]:
    """The failed and undelivered messages of these campaigns by cause, most frequent first (``CampaignTally``):
    each with the cause (label, explanation, advice), how many messages it hit, and ``campaigns``: the
    campaigns it hit, as ``(campaign_id, count)``, most hit first."""
    ids = [int(pk) for pk in campaign_ids]
    if not ids:
        return []
    rows = (CampaignTally.objects.filter(campaign_id__in=ids, event__in=FAILURE_EVENTS).order_by()
            .values("campaign_id", "cause").annotate(n=Sum("count")))
    by_cause: dict[str, dict[int, int]] = {}
    for row in rows:
        hit = by_cause.setdefault(row["cause"] or causes.UNKNOWN, {})
        hit[row["campaign_id"]] = hit.get(row["campaign_id"], 0) + row["n"]
    out = [{"cause": cause_info(cause), "count": sum(hit.values()),
            "campaigns": sorted(hit.items(), key=lambda item: (-item[1], item[0]))}
           for cause, hit in by_cause.items()]
    return sorted(out, key=lambda e: (-e["count"], e["cause"].code))


def _callbacks_refused(sender_ids: list[int], since) -> dict[int, dict]:
    from django.db.models import Max

    from .models import CallbackTally

    rows = (CallbackTally.objects.filter(sender_id__in=sender_ids, hour__gte=_hour_start(since), accepted=False)
            .order_by().values("sender_id", "reason").annotate(n=Sum("count"), last_at=Max("last_at")))
    refused: dict[int, dict] = {}
    for row in rows:
        entry = refused.setdefault(row["sender_id"], {"count": 0, "reasons": {}, "last_at": row["last_at"]})
        entry["count"] += row["n"]
        entry["reasons"][row["reason"] or "no reason recorded"] = row["n"]
        entry["last_at"] = max(entry["last_at"], row["last_at"])
    for entry in refused.values():
        entry["reason"], entry["reason_count"] = sorted(entry.pop("reasons").items(), key=lambda i: (-i[1], i[0]))[0]
    return refused


def senders_attention(*, now=None) -> list[dict]:
    """The senders staff must look at, by name, each ``{"sender": Sender, "problems": [...]}``; a problem is
    ``{"kind", "title", "detail"}`` in plain words, ``kind`` one of:

    - ``circuit_open``: nothing is sent through it until ``until`` (its circuit opened; the detail says why);
    - ``credentials``: its stored credentials cannot be used (``sender_problem``), for an active sender;
    - ``callbacks_unprotected``: an active sender without the callback password its provider needs (every
      delivery report and reply is refused);
    - ``callbacks_refused``: callbacks refused in the last CALLBACKS_REFUSED_HOURS hours, with the most
      frequent reason and when the last one came;
    - ``pace_reduced``: an active sender sending below its configured pace because the provider answered
      "too many requests" (429), with the pace in use."""
    from . import pacing
    from .models import SenderPace

    now = now or timezone.now()
    senders = {s.pk: s for s in Sender.objects.order_by("name", "pk")}
    problems: dict[int, list[dict]] = {}

    def add(sender_id: int, kind: str, title: str, detail: str, **extra) -> None:
        problems.setdefault(sender_id, []).append({"kind": kind, "title": title, "detail": detail, **extra})

    for pace in SenderPace.objects.filter(sender_id__in=list(senders), open_until__gt=now).order_by("sender_id"):
        add(pace.sender_id, "circuit_open", "Sending stopped for now",
            pace.open_reason or "The provider failed several times in a row.", until=pace.open_until)
    unprotected = set(senders_callbacks_unprotected().values_list("pk", flat=True))
    refused = _callbacks_refused(list(senders), now - timedelta(hours=CALLBACKS_REFUSED_HOURS))
    factors = pacing.rate_factors(pk for pk, s in senders.items() if s.is_active)
    for sender in senders.values():
        if sender.is_active:
            problem = sender_problem(sender=sender)
            if problem:
                add(sender.pk, "credentials", "Credentials cannot be used", problem)
            if sender.pk in unprotected:
                add(sender.pk, "callbacks_unprotected", "Delivery reports and replies refused",
                    "Its provider's callbacks can only be checked with a callback password, and none is set: "
                    "every delivery report and reply it sends is refused until one is entered.")
        if sender.pk in refused:
            entry = refused[sender.pk]
            add(sender.pk, "callbacks_refused", f"{entry['count']} callbacks refused in the last "
                f"{CALLBACKS_REFUSED_HOURS} hours",
                f"Most often: {entry['reason']} ({entry['reason_count']}).", last_at=entry["last_at"])
        if sender.is_active:
            factor = factors[sender.pk]
            if factor < 1:
                add(sender.pk, "pace_reduced", f"Sending slower: {round(100 * factor)}% of its pace",
                    f"The provider answered \u201ctoo many requests\u201d, so it sends {sender.mps * factor:.3g} "
                    f"messages per second instead of {sender.mps:.3g}; the pace comes back by itself while the "
                    "provider accepts it, or lower the configured pace to what the provider allows.")
    return [{"sender": senders[pk], "problems": found} for pk, found in
            sorted(problems.items(), key=lambda item: (senders[item[0]].name.lower(), item[0]))]
