"""Sending: claim, pace, personalize, call the provider, record the outcome; circuit breaker and failover.

Whoever moves a message from ``queued`` (or ``errored``) to ``sending`` owns its send; nobody else can send it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .. import pacing
from ..models import (
    Message,
    MessageEvent,
    Sender,
    SenderPace,
    Suppression,
)
from ..personalize import contact_context, render
from ..providers import provider_for
from ..providers.base import (
    AmbiguousError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    ProviderError,
    SendResult,
    TransientError,
)
from .events import events_apply_pending
from .status import counters_add, event_record, message_move

logger = logging.getLogger("messaging")
S = Message.Status


# ----------------------------------------------------------------------------------------------
# sending


def callback_url(*, sender: Sender, message_id: int | None = None) -> str:
    base = f"{settings.PUBLIC_BASE_URL}/webhooks/{sender.provider}/{sender.uuid}/status/"
    return f"{base}?m={message_id}" if message_id else base


def _claim(message_id: int, *, sender_id: int) -> bool:
    """Move queued/errored -> sending. Only the caller that gets True may send the message.

    A message of a campaign that is not sending (paused, canceled), a message moved to another sender
    meanwhile, and a message to a number that has opted out are never claimed."""
    claimed, _at = _claim_many([message_id], sender_id=sender_id)
    return bool(claimed)


def _outbound(message: Message) -> OutboundMessage:
    return OutboundMessage(
        id=message.pk,
        to=message.to,
        body=message.body,
        media_urls=tuple(message.media_urls or ()),
        status_callback_url=callback_url(sender=message.sender, message_id=message.pk),
    )


def _personalize(message: Message, *, save: bool = True, contacts: dict | None = None) -> bool:
    """Fill a campaign message's body from the campaign template and its contact, once, at send time.
    ``contacts`` (id -> fields), when given, spares loading each contact. Returns True when the message
    changed (and, with ``save``, stored it)."""
    if message.body or message.campaign_id is None:
        return False
    campaign = message.campaign
    contact = contacts.get(message.contact_id) if contacts is not None else message.contact
    message.body = render(campaign.body or "", contact_context(contact, phone=message.to))
    if not message.media_urls and campaign.media_urls:
        message.media_urls = list(campaign.media_urls)
    if save:
        Message.objects.filter(pk=message.pk).update(body=message.body, media_urls=message.media_urls)
    return True


def _contact_fields(contact_ids: set[int]) -> dict[int, dict]:
    """The template fields of many contacts in one query (the phone number is the message's own)."""
    contacts = Message._meta.get_field("contact").related_model.objects
    rows = contacts.filter(pk__in=contact_ids).values("id", "first_name", "last_name", "email", "custom_fields")
    return {row["id"]: row for row in rows}


def _personalized_save(messages: list[Message]) -> None:
    """Store the bodies (and media) filled in at send time, in a few set-based statements."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(messages), 500):
            part = messages[start:start + 500]
            values = ", ".join(["(%s, %s)"] * len(part))
            cursor.execute(
                f"WITH v(id, body) AS (VALUES {values}) UPDATE {table} SET body = v.body FROM v WHERE {table}.id = v.id",
                [x for m in part for x in (m.pk, m.body)],
            )
    by_media: dict[str, list[int]] = {}
    for message in messages:
        if message.media_urls:
            by_media.setdefault(json.dumps(message.media_urls), []).append(message.pk)
    for media, ids in by_media.items():  # the campaign's media: one group per campaign
        Message.objects.filter(pk__in=ids).update(media_urls=json.loads(media))


def _backoff(attempts: int) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 ... seconds (capped at 5 min), randomised."""
    ceiling = min(300.0, 2.0 ** max(1, attempts))
    return random.uniform(ceiling / 2, ceiling)


def send_recorded(*, message: Message, result: SendResult) -> None:
    """The provider accepted the message: record its id and ``sent``, then apply any early callbacks."""
    _record_sent_many(message.sender, [(message, result)])
    message.provider_message_id = message.provider_message_id or result.provider_message_id


def send_failed(*, message: Message, error: ProviderError) -> str:
    """Record a failed attempt. Returns the status the message moved to."""
    now = timezone.now()
    code = error.code or (str(error.http_status) if error.http_status else "")
    text = str(error)[:1000]
    with transaction.atomic():
        if isinstance(error, AmbiguousError):
            message_move(message.pk, S.UNCONFIRMED, from_statuses=(S.SENDING,), fields={"error_message": text})
            status = S.UNCONFIRMED
        elif isinstance(error, TransientError):
            attempts = message.attempts
            if error.rate_limited:
                attempts = max(0, attempts - 1)  # being slowed down is not a failed attempt
            if attempts >= settings.SEND_MAX_ATTEMPTS:
                message_move(message.pk, S.FAILED, from_statuses=(S.SENDING,), fields={"error_code": code, "error_message": text})
                status = S.FAILED
            else:
                delay = error.retry_after if error.retry_after is not None else _backoff(attempts)
                message_move(
                    message.pk,
                    S.ERRORED,
                    from_statuses=(S.SENDING,),
                    fields={
                        "error_code": code,
                        "error_message": text,
                        "attempts": attempts,
                        "next_attempt_at": now + timedelta(seconds=delay),
                        "dispatched_at": None,
                    },
                )
                status = S.ERRORED
        else:
            message_move(message.pk, S.FAILED, from_statuses=(S.SENDING,), fields={"error_code": code, "error_message": text})
            status = S.FAILED
        event_record(message, status, code=code, text=text)
    return status


# ---- circuit breaker and failover ----------------------------------------------------------------


def _circuit_open_until(sender_id: int) -> datetime | None:
    until = SenderPace.objects.filter(sender_id=sender_id).values_list("open_until", flat=True).first()
    return until if until and until > timezone.now() else None


def _circuit_record(sender_id: int, *, ok: bool) -> None:
    """Count consecutive provider-side failures; open the circuit at CIRCUIT_FAILURES."""
    if ok:
        SenderPace.objects.filter(sender_id=sender_id, consecutive_failures__gt=0).update(consecutive_failures=0)
        return
    with transaction.atomic():
        SenderPace.objects.get_or_create(sender_id=sender_id)
        SenderPace.objects.filter(sender_id=sender_id).update(consecutive_failures=F("consecutive_failures") + 1)
        SenderPace.objects.filter(
            sender_id=sender_id, consecutive_failures__gte=settings.CIRCUIT_FAILURES
        ).update(open_until=timezone.now() + timedelta(seconds=settings.CIRCUIT_OPEN_SECONDS), consecutive_failures=0)


def _backup_for(message: Message) -> Sender | None:
    """The campaign's backup sender, if there is one and the message is not already on it."""
    if not message.campaign_id:
        return None
    backup_id = message.campaign.backup_sender_id
    if not backup_id or backup_id == message.sender_id:
        return None
    return Sender.objects.filter(pk=backup_id, is_active=True).first()


def _fail_over(message: Message, backup: Sender, reason: str, *, from_status: str) -> bool:
    """Hand a message to the backup sender; it is sent again from there, under a new claim."""
    note = f"Moved to backup sender {backup.name}: {reason}"[:1000]
    with transaction.atomic():
        if from_status == S.SENDING:  # claimed and refused: back to errored, due now, on the backup
            moved = message_move(
                message.pk,
                S.ERRORED,
                from_statuses=(S.SENDING,),
                fields={"sender_id": backup.pk, "next_attempt_at": timezone.now(), "dispatched_at": None,
                        "provider_message_id": "", "error_message": note, "attempts": 0},
            )
        else:  # not claimed yet: only the sender changes
            moved = bool(
                Message.objects.filter(pk=message.pk, status__in=(S.QUEUED, S.ERRORED)).update(
                    sender_id=backup.pk, error_message=note
                )
            )
        if moved:
            event_record(message, S.ERRORED, source=MessageEvent.Source.SYSTEM, text=note)
    return moved


def message_send(*, message_id: int, pace: bool = True) -> str:
    """Claim, pace, personalize and send one message. Returns what happened, in one word."""
    message = Message.objects.select_related("sender", "campaign").filter(pk=message_id).first()
    if message is None:
        return "missing"
    if message.status not in (S.QUEUED, S.ERRORED):
        return "skipped"
    open_until = _circuit_open_until(message.sender_id)
    if open_until:
        backup = _backup_for(message)
        if backup and backup.pk and _circuit_open_until(backup.pk) is None:
            _fail_over(message, backup, "the provider is failing", from_status=S.ERRORED)
            message = Message.objects.select_related("sender", "campaign").get(pk=message_id)
        else:
            Message.objects.filter(pk=message_id, status__in=(S.QUEUED, S.ERRORED)).update(
                next_attempt_at=open_until, dispatched_at=None
            )
            return "deferred"
    sender = message.sender
    if pace:
        pacing.wait_for_slot(sender.pk, pacing.effective_mps(sender.pk, sender.mps))
    if not _claim(message_id, sender_id=sender.pk):
        return "skipped"
    message = Message.objects.select_related("sender", "campaign", "contact").get(pk=message_id)
    try:
        outbound = _prepare(message)
        result = provider_for(message.sender).send(outbound)
    except ProviderError as exc:
        if isinstance(exc, TransientError) and exc.rate_limited:
            pacing.slow_down(sender.pk)
        return _send_error(message, exc)
    _circuit_record(sender.pk, ok=True)
    pacing.speed_up(sender.pk)
    send_recorded(message=message, result=result)
    return "sent"


def _prepare(message: Message, *, save: bool = True, provider=None) -> OutboundMessage:
    """Personalize and check a claimed message; a message the provider cannot take fails now."""
    _personalize(message, save=save)
    try:
        provider = provider or provider_for(message.sender)
        problems = provider.check_limits(message.body, message.media_urls)
    except ConfigurationError as exc:
        raise PermanentError(str(exc), code="configuration") from None
    if problems:
        raise PermanentError(" ".join(problems), provider=provider.code, code="limits", recipient_side=True)
    return _outbound(message)


def _send_error(message: Message, exc: ProviderError, *, provider_up: bool = False) -> str:
    """Record a failed call. ``provider_up``: other calls of the same batch succeeded, so this failure is
    sporadic and does not count towards opening the sender's circuit."""
    sender_id = message.sender_id
    if isinstance(exc, TransientError) and exc.rate_limited:
        pacing.push_back(sender_id, exc.retry_after or 1.0)
    elif isinstance(exc, (TransientError, AmbiguousError)) and not provider_up:
        _circuit_record(sender_id, ok=False)
    provider_side = isinstance(exc, PermanentError) and not exc.recipient_side and exc.code != "limits"
    exhausted = (
        isinstance(exc, TransientError) and not exc.rate_limited and message.attempts >= settings.SEND_MAX_ATTEMPTS
    )
    if provider_side or exhausted:
        backup = _backup_for(message)
        if backup and _fail_over(message, backup, str(exc), from_status=S.SENDING):
            return "failover"
    return send_failed(message=message, error=exc)


_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def _send_pool() -> ThreadPoolExecutor:
    """One thread pool per worker process, reused by every batch, so each thread keeps one database
    connection and the HTTP session keeps its keep-alive connections."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=settings.SEND_THREADS, thread_name_prefix="send")
        _pool_pid = os.getpid()
    return _pool


@dataclass
class BatchOutcome:
    sent: int = 0
    skipped: int = 0
    errored: int = 0
    failed: int = 0
    unconfirmed: int = 0
    deferred: int = 0
    failover: int = 0


def messages_send(*, message_ids: list[int]) -> dict:
    """Send a batch: per sender, claim all in one statement, personalize in memory, make the provider
    calls concurrently on the process's thread pool (each at its reserved pace slot; in bulk requests where
    the provider has a bulk endpoint), then record the outcomes in a few set-based statements."""
    outcome = BatchOutcome()
    by_sender: dict[int, list[int]] = {}
    for mid, sender_id in Message.objects.filter(pk__in=message_ids).values_list("pk", "sender_id"):
        by_sender.setdefault(sender_id, []).append(mid)
    for sender_id, ids in by_sender.items():
        for word in _send_batch(Sender.objects.get(pk=sender_id), sorted(ids)):
            field = word if hasattr(outcome, word) else "skipped"
            setattr(outcome, field, getattr(outcome, field) + 1)
    return outcome.__dict__


def send_lease_seconds() -> float:
    """How long after its claim a worker may still start a provider call for a message.

    The reconciler treats a ``sending`` message as abandoned RECONCILE_AFTER_SECONDS after its claim. A
    worker therefore starts no call later than that minus the longest a call can take, so by the time the
    reconciler asks the provider, every call its owner started has finished (or timed out)."""
    return settings.RECONCILE_AFTER_SECONDS - (settings.PROVIDER_TIMEOUT + settings.PROVIDER_CONNECT_TIMEOUT + 1.0)


class _NotNow(Exception):
    """The call must not start now (the slot came too late, the campaign was paused or canceled, or the
    provider just asked us to slow down): the message is given back unsent."""

    def __init__(self, at: datetime | None = None):
        super().__init__()
        self.at = at


def _release(message: Message, *, at: datetime | None = None) -> str:
    """Give a claimed, surely unsent message back to the queue, due at ``at`` (the attempt does not count)."""
    message_move(message.pk, S.QUEUED, from_statuses=(S.SENDING,),
                 fields={"attempts": max(0, message.attempts - 1), "next_attempt_at": at or timezone.now(),
                         "dispatched_at": None})
    return "deferred"


class _Gate:
    """What every call of one batch checks just before it starts: is the campaign still sending, and has
    the provider not just answered 429 to another call of this batch. Campaign states are read at most
    every half second, so a pause stops a batch's remaining calls within that time."""

    REFRESH_SECONDS = 0.5

    def __init__(self, campaign_ids: set[int]):
        self._lock = threading.Lock()
        self._campaign_ids = campaign_ids
        self._stopped: set[int] = set()
        self._read_at = 0.0
        self.held_until = 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self.held_until = max(self.held_until, time.time() + seconds)

    def refusal(self, campaign_ids: set) -> _NotNow | None:
        with self._lock:
            if self.held_until > time.time():
                return _NotNow(datetime.fromtimestamp(self.held_until, tz=UTC))
            if self._campaign_ids and time.monotonic() - self._read_at > self.REFRESH_SECONDS:
                campaigns = Message._meta.get_field("campaign").related_model.objects
                self._stopped = set(
                    campaigns.filter(pk__in=self._campaign_ids).exclude(status="sending").values_list("pk", flat=True)
                )
                self._read_at = time.monotonic()
            if campaign_ids & self._stopped:
                return _NotNow()
        return None


def _send_batch(sender: Sender, message_ids: list[int]) -> list[str]:
    if _circuit_open_until(sender.pk):
        # The provider is failing: each message fails over to its backup or waits (per-message path).
        return [message_send(message_id=mid) for mid in message_ids]
    claimed, claimed_at = _claim_many(message_ids, sender_id=sender.pk)
    # The lease runs from the claim time written in the rows (the reconciler's reference), not from now.
    deadline = claimed_at.timestamp() + send_lease_seconds()
    words = ["skipped"] * (len(message_ids) - len(claimed))
    messages = list(Message.objects.select_related("campaign").filter(pk__in=claimed).order_by("id"))
    for message in messages:
        message.sender = sender  # loaded once for the batch (its secrets decrypted once)
    contacts = _contact_fields({m.contact_id for m in messages if m.contact_id and not m.body})
    try:
        provider = provider_for(sender)
    except ConfigurationError:
        provider = None  # each message fails with the reason (see _prepare)
    ready: list[tuple[Message, OutboundMessage]] = []
    personalized: list[Message] = []
    for message in messages:
        try:
            if _personalize(message, save=False, contacts=contacts):
                personalized.append(message)
            ready.append((message, _prepare(message, save=False, provider=provider)))
        except ProviderError as exc:
            words.append(_send_error(message, exc))
    if personalized:
        _personalized_save(personalized)
    if not ready:
        return words
    # Pace slots for exactly the messages we own, none past the lease (a bulk request goes at the slot of
    # its last message). Messages without a slot go back to the queue unsent: the sender can be slowed,
    # never sped past its limit.
    mps = pacing.effective_mps(sender.pk, sender.mps)  # the configured pace, lowered after provider 429s
    interval = 1.0 / mps
    first_slot, granted = pacing.reserve_within(sender.pk, mps, len(ready), not_after=deadline)
    if granted < len(ready):
        # Due again half a lease before the sender's schedule runs out, so the next claim can reserve the
        # slots that follow without a gap.
        resume_at = datetime.fromtimestamp(
            max(time.time(), pacing.next_free(sender.pk) - send_lease_seconds() / 2), tz=UTC
        )
        words.extend(_release(message, at=resume_at) for message, _ in ready[granted:])
        ready = ready[:granted]
        if not ready:
            return words
    size = provider.bulk_size
    chunks = [ready[i : i + size] for i in range(0, len(ready), size)]

    gate = _Gate({m.campaign_id for m, _ in ready if m.campaign_id})

    def call(index_chunk: tuple[int, list]) -> list:
        index, chunk = index_chunk
        # A bulk request waits for the slot of its last message: never faster than the sender's pace.
        slot = first_slot + (index + len(chunk) - 1) * interval
        delay = slot - time.time()
        if delay > 0:
            time.sleep(delay)
        if time.time() > deadline:  # this thread waited too long for its turn
            return [_NotNow()] * len(chunk)
        refusal = gate.refusal({m.campaign_id for m, _ in chunk})
        if refusal is not None:
            return [refusal] * len(chunk)
        outbound = [o for _, o in chunk]
        try:
            if len(chunk) == 1:
                return [provider.send(outbound[0])]
            return provider.send_bulk(outbound)
        except ProviderError as exc:
            if isinstance(exc, TransientError) and exc.rate_limited:
                gate.hold(exc.retry_after or 1.0)  # the rest of this batch waits too
            return [exc] * len(chunk)

    starts, position = [], 0
    for chunk in chunks:
        starts.append(position)
        position += len(chunk)
    answers = list(_send_pool().map(call, zip(starts, chunks, strict=False)))
    sent: list[tuple[Message, SendResult]] = []
    provider_up = any(isinstance(result, SendResult) for results in answers for result in results)
    if provider_up:
        _circuit_record(sender.pk, ok=True)
    if any(isinstance(r, TransientError) and r.rate_limited for results in answers for r in results):
        pacing.slow_down(sender.pk)  # once per batch, however many of its calls met the 429
    elif provider_up:
        pacing.speed_up(sender.pk)
    for chunk, results in zip(chunks, answers, strict=False):
        for (message, _), result in zip(chunk, results, strict=True):
            if isinstance(result, SendResult):
                sent.append((message, result))
            elif isinstance(result, _NotNow):
                words.append(_release(message, at=result.at))
            else:
                words.append(_send_error(message, result, provider_up=provider_up))
    if sent:
        _record_sent_many(sender, sent)
        words.extend(["sent"] * len(sent))
    return words


def _claim_many(message_ids: list[int], *, sender_id: int) -> tuple[list[int], datetime]:
    """``_claim`` for many messages of one sender, one statement per previous status. Returns the ids now
    ours and the claim time written in their rows. Messages to numbers that opted out after they were
    queued are canceled here instead: an opt-out always wins over a pending send."""
    now = timezone.now()
    if not message_ids:
        return [], now
    table = Message._meta.db_table
    campaign_table = Message._meta.get_field("campaign").related_model._meta.db_table
    suppression_table = Suppression._meta.db_table
    placeholders = ", ".join(["%s"] * len(message_ids))
    claimed: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        now = timezone.now()  # inside the transaction: after any wait for SQLite's write lock
        stamp = connection.ops.adapt_datetimefield_value(now)  # stored exactly as the ORM stores it
        for old in (S.QUEUED, S.ERRORED):
            cursor.execute(
                f"""UPDATE {table} SET status = %s, updated_at = %s, error_message = %s
                    WHERE id IN ({placeholders}) AND status = %s
                      AND EXISTS (SELECT 1 FROM {suppression_table} s WHERE s.phone = {table}."to" AND s.opted_out)
                    RETURNING id, campaign_id""",
                [S.CANCELED, stamp, "Not sent: the number opted out before its turn.", *message_ids, old],
            )
            _count_moves(cursor.fetchall(), old, S.CANCELED)
            cursor.execute(
                f"""UPDATE {table} SET status = %s, claimed_at = %s, updated_at = %s, attempts = attempts + 1
                    WHERE id IN ({placeholders}) AND status = %s AND sender_id = %s
                      AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                      AND (campaign_id IS NULL OR EXISTS (SELECT 1 FROM {campaign_table} c
                           WHERE c.id = {table}.campaign_id AND c.status = 'sending'))
                    RETURNING id, campaign_id""",
                [S.SENDING, stamp, stamp, *message_ids, old, sender_id, stamp],
            )
            rows = cursor.fetchall()
            claimed.extend(mid for mid, _campaign_id in rows)
            _count_moves(rows, old, S.SENDING)
    return claimed, now


def _count_moves(rows: list[tuple[int, int | None]], old: str, new: str) -> None:
    """Counters for rows (id, campaign_id) just moved from ``old`` to ``new``, in the caller's transaction."""
    per_campaign: dict = {}
    for _mid, campaign_id in rows:
        per_campaign[campaign_id] = per_campaign.get(campaign_id, 0) + 1
    for campaign_id, n in per_campaign.items():
        counters_add(campaign_id=campaign_id, deltas={old: -n, new: n})


def _record_sent_many(sender: Sender, sent: list[tuple[Message, SendResult]]) -> None:
    """``send_recorded`` for many messages in a few set-based statements."""
    table = Message._meta.db_table
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    values = ", ".join(["(%s, %s)"] * len(sent))
    params: list = []
    for message, result in sent:
        params += [message.pk, result.provider_message_id]
    with transaction.atomic(), connection.cursor() as cursor:
        per_campaign: dict = {}
        for old in (S.SENDING, S.UNCONFIRMED):
            cursor.execute(
                f"""WITH v(id, pid) AS (VALUES {values})
                    UPDATE {table} SET status = %s, provider_message_id = v.pid, sent_at = %s, updated_at = %s,
                           error_code = '', error_message = ''
                    FROM v WHERE {table}.id = v.id AND {table}.status = %s
                    RETURNING {table}.id, {table}.campaign_id""",
                [*params, S.SENT, stamp, stamp, old],
            )
            for _mid, campaign_id in cursor.fetchall():
                per_campaign.setdefault((campaign_id, old), 0)
                per_campaign[(campaign_id, old)] += 1
        for (campaign_id, old), n in per_campaign.items():
            counters_add(campaign_id=campaign_id, deltas={old: -n, S.SENT: n})
        # Messages a callback already moved forward keep their status; they still get the id and send time.
        cursor.execute(
            f"""WITH v(id, pid) AS (VALUES {values})
                UPDATE {table} SET provider_message_id = v.pid, sent_at = COALESCE({table}.sent_at, %s)
                FROM v WHERE {table}.id = v.id AND {table}.provider_message_id = ''""",
            [*params, stamp],
        )
        MessageEvent.objects.bulk_create(
            [
                MessageEvent(
                    sender_id=sender.pk,
                    message_id=message.pk,
                    source=MessageEvent.Source.SEND,
                    provider_message_id=result.provider_message_id,
                    dedupe_key=f"send:{message.pk}:{message.attempts}:{result.provider_message_id}"[:64],
                    status=S.SENT,
                    raw_status=S.SENT,
                    occurred_at=now,
                    applied=True,
                    payload=result.raw if isinstance(result.raw, dict) else {"items": result.raw},
                )
                for message, result in sent
            ],
            ignore_conflicts=True,
        )
        early = set(
            MessageEvent.objects.filter(
                sender_id=sender.pk, applied=False, provider_message_id__in=[r.provider_message_id for _, r in sent]
            ).values_list("provider_message_id", flat=True)
        )
        for provider_message_id in early:
            events_apply_pending(sender_id=sender.pk, provider_message_id=provider_message_id)




def message_create(*, sender: Sender, to: str, body: str, media_urls: list[str] | None = None, contact=None) -> Message:
    """Queue one message outside any campaign (test sends, single messages) and enqueue its send."""
    try:
        problems = provider_for(sender).check_limits(body, media_urls or [])
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None
    if problems:
        raise ValueError(" ".join(problems))
    with transaction.atomic():
        message = Message.objects.create(
            sender=sender, to=to, body=body, media_urls=media_urls or [], contact=contact,
            dispatched_at=timezone.now(),
        )
        transaction.on_commit(lambda: _enqueue_send([message.pk]))
    return message


def _enqueue_send(ids: list[int]) -> None:
    from ..tasks import send_batch

    send_batch.delay(ids)
