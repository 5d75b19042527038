"""The send path: one batch of messages (one, or up to SEND_BATCH_SIZE), per sender: circuit, claim,
personalize, pace, call the provider concurrently, record the outcomes. A single message goes the same way.

Whoever moves a message from ``queued`` (or ``errored``) to ``sending`` owns its send; nobody else can send it
(see ``claiming``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q

from .. import pacing
from ..models import Dispatch, Message, Sender
from ..providers import provider_for
from ..providers.base import (
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    ProviderError,
    SendResult,
    TransientError,
    causes,
)
from .circuit import circuit_open_cause, circuit_open_until, circuit_record
from .claiming import message_release, messages_claim, send_lease_seconds
from .outbound import (
    bodies_save,
    messages_for_send,
    messages_personalize,
    messages_wait_for_window,
    outbound_checked,
)
from .outcomes import backups_for, message_fail_over, send_error, sent_record
from .status import message_move

S = Message.Status
OUTCOMES = ("sent", "skipped", "errored", "failed", "unconfirmed", "deferred", "failover", "canceled")
CANCELED_NOTE = "Not sent: the campaign was canceled before its turn."


def messages_send(*, message_ids: list[int]) -> dict:
    """Send a batch. Returns how many messages ended each way (see OUTCOMES)."""
    outcome = dict.fromkeys(OUTCOMES, 0)
    for word in Counter(_send(message_ids).values()).elements():
        outcome[word if word in outcome else "skipped"] += 1
    return outcome


def message_send(*, message_id: int) -> str:
    """Send one message through the batch path. Returns what happened, in one word (``missing`` when there is
    no such message)."""
    return _send([message_id]).get(message_id, "missing")


def _send(message_ids: list[int]) -> dict[int, str]:
    """Per sender: a sender whose circuit is open hands each message to its backup (sent from there in the
    same call) or defers it until the circuit closes; the others go through ``sender_messages_send``."""
    words: dict[int, str] = {}
    groups: dict[int, list[int]] = {}
    for mid, sender_id in Message.objects.filter(pk__in=message_ids).values_list("pk", "sender_id"):
        groups.setdefault(sender_id, []).append(mid)
    work = list(groups.items())
    while work:
        sender_id, ids = work.pop(0)
        sender = Sender.objects.get(pk=sender_id)
        open_until = circuit_open_until(sender_id)
        if open_until is None:
            words.update(sender_messages_send(sender=sender, message_ids=sorted(ids)))
            continue
        waiting = list(Message.objects.filter(pk__in=ids, sender_id=sender_id, status__in=(S.QUEUED, S.ERRORED)))
        open_cause = circuit_open_cause(sender_id) or causes.UNREACHABLE
        backups = backups_for(waiting, circuit_closed=True)
        moved: dict[int, list[int]] = {}
        for message in waiting:
            backup = backups.get(message.pk)
            if backup and message_fail_over(message, backup, "the provider is failing", from_status=S.QUEUED,
                                            cause=open_cause, code="circuit_open"):
                moved.setdefault(backup.pk, []).append(message.pk)
            else:
                Message.objects.filter(pk=message.pk, status__in=(S.QUEUED, S.ERRORED)).update(
                    next_attempt_at=open_until, dispatched_at=None)
                words[message.pk] = "deferred"
        words.update({mid: "skipped" for mid in ids if mid not in words and all(mid not in v for v in moved.values())})
        work.extend(moved.items())
    return words


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


def send_pool_shutdown() -> None:
    """End the send threads of this process, each closing its database connection first (a process that is
    about to drop its database, or to exit)."""
    global _pool
    if _pool is not None and _pool_pid == os.getpid():
        threads = len(_pool._threads)
        if threads:
            everyone = threading.Barrier(threads)  # one task per thread: each waits until all have one

            def close() -> None:
                everyone.wait(timeout=30)
                connections.close_all()

            for future in [_pool.submit(close) for _ in range(threads)]:
                future.result()
        _pool.shutdown(wait=True)
    _pool = None


class _NotNow(Exception):
    """The call must not start now (the slot came too late, the campaign was paused or canceled, or the
    provider just asked us to slow down): the message is given back unsent, or canceled with its campaign."""

    def __init__(self, at: datetime | None = None, *, canceled: bool = False):
        super().__init__()
        self.at = at
        self.canceled = canceled


class _Gate:
    """What every call of one batch checks just before it starts: is its campaign's dispatch still sending,
    and has the provider not just answered 429 to another call of this batch. Dispatch states are read at most
    every half second, so a pause or a cancel stops a batch's remaining calls within that time, even those
    waiting for their pace slot (their messages are given back, or canceled, at once: the campaign's counts do
    not show them as being sent meanwhile)."""

    REFRESH_SECONDS = 0.5

    def __init__(self, campaign_ids: set[int]):
        self._lock = threading.Lock()
        self._campaign_ids = campaign_ids
        self._stopped: dict[int, str] = {}
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
                self._stopped = dict(
                    Dispatch.objects.filter(campaign_id__in=self._campaign_ids)
                    .filter(~Q(state=Dispatch.State.SENDING)).values_list("campaign_id", "state")
                )
                self._read_at = time.monotonic()
            stopped = [self._stopped[c] for c in campaign_ids if c in self._stopped]
            if stopped:
                return _NotNow(canceled=all(state == Dispatch.State.CANCELED for state in stopped))
        return None

    def wait(self, seconds: float, campaign_ids: set) -> _NotNow | None:
        """Sleep ``seconds`` (a pace slot), waking every REFRESH_SECONDS to see whether the campaign stopped
        meanwhile: its refusal then, at once."""
        until = time.monotonic() + seconds
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(left, self.REFRESH_SECONDS))
            if campaign_ids:
                with self._lock:
                    stopped = any(c in self._stopped for c in campaign_ids)
                if stopped or time.monotonic() - self._read_at > self.REFRESH_SECONDS:
                    refusal = self.refusal(campaign_ids)
                    if refusal is not None and refusal.at is None:  # stopped, not held by a 429
                        return refusal


def sender_messages_send(*, sender: Sender, message_ids: list[int]) -> dict[int, str]:
    """Send these messages of one sender whose circuit is closed: claim, hold those outside their sending
    window, personalize, pace, call, record. Returns what happened to each, in one word, by message id."""
    claimed, claimed_at = messages_claim(message_ids, sender_id=sender.pk)
    # The lease runs from the claim time written in the rows (the reconciler's reference), not from now.
    deadline = claimed_at.timestamp() + send_lease_seconds()
    words = {mid: "skipped" for mid in message_ids if mid not in set(claimed)}
    messages = messages_for_send(claimed)
    waiting = messages_wait_for_window(messages)  # outside their sending window: back to the queue, unsent
    if waiting:
        words.update(waiting)
        messages = [m for m in messages if m.pk not in waiting]
    for message in messages:
        message.sender = sender  # loaded once for the batch (its secrets decrypted once)
    personalized, unrenderable = messages_personalize(messages)
    if personalized:
        bodies_save(personalized)
    for message, error in unrenderable:  # this recipient's data breaks the template: only its message fails
        words[message.pk] = send_error(message, error)
    messages = [m for m in messages if m.pk not in words]
    try:
        provider = provider_for(sender)
    except ConfigurationError as exc:  # e.g. its secrets cannot be decrypted: each message fails, saying why
        unusable = PermanentError(str(exc), code="configuration")
        return words | {m.pk: send_error(m, unusable) for m in messages}
    ready: list[tuple[Message, OutboundMessage]] = []
    for message in messages:
        try:
            ready.append((message, outbound_checked(message, sender, provider)))
        except ProviderError as exc:
            words[message.pk] = send_error(message, exc)
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
        words.update({message.pk: message_release(message, at=resume_at) for message, _ in ready[granted:]})
        ready = ready[:granted]
        if not ready:
            return words
    size = provider.bulk_size
    chunks = [ready[i : i + size] for i in range(0, len(ready), size)]
    gate = _Gate({m.campaign_id for m, _ in ready if m.campaign_id})

    def call(start_chunk: tuple[int, list]) -> list:
        start, chunk = start_chunk
        # This thread's database connection outlives tasks (one per send thread): one the database dropped
        # (a restart, a failover) is closed here and opened again on first use, instead of failing every batch.
        close_old_connections()
        # A bulk request waits for the slot of its last message: never faster than the sender's pace.
        delay = first_slot + (start + len(chunk) - 1) * interval - time.time()
        if delay > 0:
            stopped = gate.wait(delay, {m.campaign_id for m, _ in chunk if m.campaign_id})
            if stopped is not None:
                return [stopped] * len(chunk)
        if time.time() > deadline:  # this thread waited too long for its turn
            return [_NotNow()] * len(chunk)
        refusal = gate.refusal({m.campaign_id for m, _ in chunk})
        if refusal is not None:
            return [refusal] * len(chunk)
        outbound = [o for _, o in chunk]
        try:
            return [provider.send(outbound[0])] if len(chunk) == 1 else provider.send_bulk(outbound)
        except ProviderError as exc:
            if isinstance(exc, TransientError) and exc.rate_limited:
                gate.hold(exc.retry_after or 1.0)  # the rest of this batch waits too
            return [exc] * len(chunk)

    starts = [i * size for i in range(len(chunks))]
    answers = list(_send_pool().map(call, zip(starts, chunks, strict=True)))
    results = [r for rs in answers for r in rs]
    provider_up = any(isinstance(r, SendResult) for r in results)
    if provider_up:
        circuit_record(sender.pk, ok=True)
    calls = [rs[0] for rs in answers if not isinstance(rs[0], _NotNow)]  # one answer per call made
    limited = sum(1 for r in calls if isinstance(r, TransientError) and r.rate_limited)
    if limited or provider_up:
        pacing.pace_after_batch(sender.pk, calls=len(calls), rate_limited=limited)
    sent: list[tuple[Message, SendResult]] = []
    first_of_call = {chunk[0][0].pk for chunk in chunks}  # a failed bulk call counts once, with its first message
    for (message, _), result in zip([pair for chunk in chunks for pair in chunk], results, strict=True):
        if isinstance(result, SendResult):
            sent.append((message, result))
        elif isinstance(result, _NotNow) and result.canceled:
            moved = message_move(message.pk, S.CANCELED, from_statuses=(S.SENDING,),
                                 fields={"error_message": CANCELED_NOTE})
            words[message.pk] = "canceled" if moved else "skipped"
        elif isinstance(result, _NotNow):
            words[message.pk] = message_release(message, at=result.at)
        else:
            words[message.pk] = send_error(message, result, provider_up=provider_up,
                                           counted=message.pk not in first_of_call)
    if sent:
        sent_record(sender, sent)
        words.update({message.pk: "sent" for message, _ in sent})
    return words
