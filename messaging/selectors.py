"""Reads for messaging, and everything other apps may ask about it: consent, campaign delivery counts, a
campaign's messages, and what a sender's provider allows."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from .models import (
    FINAL_STATUSES,
    PENDING_STATUSES,
    CampaignCounter,
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


def campaign_messages(*, campaign_id: int, status: str | None = None, search: str = "") -> QuerySet[Message]:
    """A campaign's messages in the order they were queued, optionally of one status or to numbers containing
    ``search``."""
    messages = Message.objects.filter(campaign_id=campaign_id).order_by("id")
    if status:
        messages = messages.filter(status=status)
    if search:
        messages = messages.filter(to__contains=search)
    return messages


# ---- replies ----------------------------------------------------------------------------------------

CONVERSATION_MAX = 200  # the most recent messages a conversation page shows


def campaign_replies(*, campaign_id: int) -> dict:
    """What a campaign's messages caused: replies (and from how many numbers), opt-outs by keyword or reported
    by the provider, and help requests. A reply belongs to the campaign whose message it answers (the most
    recent one from that sender to that number when it came). Read from the replies and the campaign's failures,
    never from the whole ledger."""
    replies = Message.objects.filter(reply_campaign_id=campaign_id)
    figures = replies.aggregate(replies=Count("id"), repliers=Count("to", distinct=True),
                                helps=Count("id", filter=Q(keyword=Message.Keyword.HELP)))
    opted_out_reports = Message.objects.filter(campaign_id=campaign_id, status__in=(S.FAILED, S.UNDELIVERED),
                                               error_cause=causes.OPTED_OUT)
    caused = (Q(message_id__in=replies.filter(keyword=Message.Keyword.OPT_OUT).values("pk"))
              | Q(message_id__in=opted_out_reports.values("pk")))
    opt_outs = ConsentEvent.objects.filter(caused, action=ConsentEvent.Action.OPT_OUT).count()
    return {**figures, "opt_outs": opt_outs}


def campaign_failure_causes(*, campaign_id: int) -> list[dict]:
    """A campaign's failed and undelivered messages grouped by cause, most frequent first: each with the cause
    (label, explanation, advice) and how many recipients it hit."""
    rows = (Message.objects.filter(campaign_id=campaign_id, status__in=(S.FAILED, S.UNDELIVERED))
            .values("error_cause").annotate(n=Count("id")).order_by("-n"))
    return [{"cause": cause_info(row["error_cause"] or "unknown"), "count": row["n"]} for row in rows]


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
