"""Recording what a provider call did: accepted (``sent``, in a few set-based statements), refused now or
for good, or unknown; and failing a message over to its campaign's backup sender."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .. import pacing
from ..models import Dispatch, Message, MessageEvent, Sender
from ..providers.base import AmbiguousError, PermanentError, ProviderError, SendResult, TransientError, causes
from .causes import cause_of, failure_act
from .circuit import circuit_open_now, circuit_open_until, circuit_record
from .counters import counters_move
from .events import events_apply_pending
from .history import event_new, event_record, events_store
from .status import message_move
from .tallies import campaign_tally, outcomes_tally

S = Message.Status


def sent_record(sender: Sender, sent: list[tuple[Message, SendResult]]) -> None:
    """The provider accepted these messages: record each one's provider id and ``sent``, then apply the
    callbacks that arrived before we knew the id."""
    table = Message._meta.db_table
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    values = ", ".join(["(%s, %s)"] * len(sent))
    params: list = []
    for message, result in sent:
        params += [message.pk, result.provider_message_id]
    with transaction.atomic(), connection.cursor() as cursor:
        for old in (S.SENDING, S.UNCONFIRMED):
            cursor.execute(
                f"""WITH v(id, pid) AS (VALUES {values})
                    UPDATE {table} SET status = %s, provider_message_id = v.pid, sent_at = %s, updated_at = %s,
                           error_code = '', error_message = '', error_cause = ''
                    FROM v WHERE {table}.id = v.id AND {table}.status = %s
                    RETURNING {table}.id, {table}.campaign_id""",
                [*params, S.SENT, stamp, stamp, old],
            )
            campaign_ids = [campaign_id for _mid, campaign_id in cursor.fetchall()]
            counters_move(campaign_ids, old, S.SENT)
            for campaign_id, n in sorted(Counter(campaign_ids).items(), key=lambda item: item[0] or 0):
                outcomes_tally(campaign_id=campaign_id, sender_id=sender.pk, old=old, new=S.SENT, n=n, at=now)
        # Messages a callback already moved forward keep their status; they still get the id and send time.
        cursor.execute(
            f"""WITH v(id, pid) AS (VALUES {values})
                UPDATE {table} SET provider_message_id = v.pid, sent_at = COALESCE({table}.sent_at, %s)
                FROM v WHERE {table}.id = v.id AND {table}.provider_message_id = ''""",
            [*params, stamp],
        )
        events_store([
            event_new(sender_id=sender.pk, message_id=message.pk, source=MessageEvent.Source.SEND, status=S.SENT,
                      provider_message_id=result.provider_message_id, occurred_at=now, payload=result.raw,
                      dedupe_key=f"send:{message.pk}:{message.attempts}:{result.provider_message_id}")
            for message, result in sent
        ])
        early = set(
            MessageEvent.objects.filter(
                sender_id=sender.pk, applied=False, provider_message_id__in=[r.provider_message_id for _, r in sent]
            ).values_list("provider_message_id", flat=True)
        )
        for provider_message_id in early:
            events_apply_pending(sender_id=sender.pk, provider_message_id=provider_message_id)


def send_recorded(*, message: Message, result: SendResult) -> None:
    """``sent_record`` for one message."""
    sent_record(message.sender, [(message, result)])
    message.provider_message_id = message.provider_message_id or result.provider_message_id


def _backoff(attempts: int) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 ... seconds (capped at 5 min), randomised."""
    ceiling = min(300.0, 2.0 ** max(1, attempts))
    return random.uniform(ceiling / 2, ceiling)


def send_failed(*, message: Message, error: ProviderError) -> str:
    """Record a failed attempt: ``unconfirmed`` (the provider may have it), ``errored`` (retried after a
    backoff, or the provider's hint) or ``failed``. Returns the status the message moved to."""
    code = error.code or (str(error.http_status) if error.http_status else "")
    text = str(error)[:1000]
    provider = message.sender.provider
    cause = cause_of(provider, error.code, http_status=error.http_status)
    failed = {"error_code": code, "error_message": text, "error_cause": cause}
    with transaction.atomic():
        if isinstance(error, AmbiguousError):
            status, fields = S.UNCONFIRMED, {"error_message": text}
        elif isinstance(error, TransientError):
            attempts = message.attempts
            if error.rate_limited:
                attempts = max(0, attempts - 1)  # being slowed down is not a failed attempt
            if attempts >= settings.SEND_MAX_ATTEMPTS:
                status, fields = S.FAILED, failed
            else:
                delay = error.retry_after if error.retry_after is not None else _backoff(attempts)
                status = S.ERRORED
                fields = {**failed, "attempts": attempts, "dispatched_at": None,
                          "next_attempt_at": timezone.now() + timedelta(seconds=delay)}
        else:
            status, fields = S.FAILED, failed
        moved = message_move(message.pk, status, from_statuses=(S.SENDING,), fields=fields)
        event_record(message, status, code=code, text=text)
        if moved and status == S.FAILED:
            failure_act(message_id=message.pk, cause=cause, provider=provider, code=code, sender_id=message.sender_id,
                        refused=True)
    return status


def backups_for(messages: list[Message], *, circuit_closed: bool = False) -> dict[int, Sender]:
    """The backup sender of each message that has one (its campaign's, active, not the message's own sender;
    with ``circuit_closed``, only one whose circuit is closed right now), by message id."""
    campaign_ids = {m.campaign_id for m in messages if m.campaign_id}
    if not campaign_ids:
        return {}
    backup_ids = dict(Dispatch.objects.filter(campaign_id__in=campaign_ids, backup_sender__isnull=False)
                      .values_list("campaign_id", "backup_sender_id"))
    senders = {s.pk: s for s in Sender.objects.filter(pk__in=set(backup_ids.values()), is_active=True)
               if not circuit_closed or circuit_open_until(s.pk) is None}
    out = {}
    for message in messages:
        backup = senders.get(backup_ids.get(message.campaign_id))
        if backup is not None and backup.pk != message.sender_id:
            out[message.pk] = backup
    return out


def message_fail_over(message: Message, backup: Sender, reason: str, *, from_status: str, cause: str = "",
                      code: str = "") -> bool:
    """Hand a message to the backup sender; it is sent again from there, under a new claim. ``cause`` and
    ``code``: of the failure that moved it, counted for the campaign's page."""
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
            moved = bool(Message.objects.filter(pk=message.pk, status__in=(S.QUEUED, S.ERRORED))
                         .update(sender_id=backup.pk, error_message=note))
        if moved:
            event_record(message, S.ERRORED, source=MessageEvent.Source.SYSTEM, text=note)
            campaign_tally(campaign_id=message.campaign_id, sender_id=backup.pk, event="failover",
                           cause=cause or causes.UNREACHABLE, code=code)
    return moved


def send_error(message: Message, exc: ProviderError, *, provider_up: bool = False, counted: bool = False) -> str:
    """Record a failed call. ``provider_up``: other calls of the same batch succeeded, so this failure is
    sporadic and does not count towards opening the sender's circuit. ``counted``: the call carried several
    messages (a bulk request) and its failure was counted with another of them: one failed call is one failure,
    however many messages it carried. A failure of the provider's side (its refusal of our account or request,
    or retries exhausted) fails over to the backup sender when there is one. Returns what happened, in one
    word."""
    if isinstance(exc, TransientError) and exc.rate_limited:
        if not counted:
            pacing.push_back(message.sender_id, exc.retry_after or 1.0)
    elif isinstance(exc, (TransientError, AmbiguousError)) and not provider_up and not counted:
        circuit_record(message.sender_id, ok=False, reason=str(exc)[:200])
    provider_side = isinstance(exc, PermanentError) and not exc.recipient_side and exc.code != "limits"
    exhausted = (
        isinstance(exc, TransientError) and not exc.rate_limited and message.attempts >= settings.SEND_MAX_ATTEMPTS
    )
    if provider_side or exhausted:
        backup = backups_for([message]).get(message.pk)
        code = exc.code or (str(exc.http_status) if exc.http_status else "")
        cause = cause_of(message.sender.provider, exc.code, http_status=exc.http_status)
        if backup and cause == causes.ACCOUNT:  # the main sender would refuse the next messages too
            circuit_open_now(message.sender_id, reason=f"{causes.cause_info(cause).label} ({message.sender.provider} "
                                                       f"code {code})")
        if backup and message_fail_over(message, backup, str(exc), from_status=S.SENDING, cause=cause, code=code):
            return "failover"
    return send_failed(message=message, error=exc)
