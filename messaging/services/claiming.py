"""The claim: whoever moves a message from ``queued`` (or ``errored``) to ``sending`` owns its send, and
nobody else can send it. Also the send lease, and giving a claimed message back unsent."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from ..models import Dispatch, Message, Suppression
from .counters import counters_move
from .status import message_move, messages_move

S = Message.Status
OPTED_OUT_NOTE = "Not sent: the number opted out before its turn."


def send_lease_seconds() -> float:
    """How long after its claim a worker may still start a provider call for a message.

    The reconciler treats a ``sending`` message as abandoned RECONCILE_AFTER_SECONDS after its claim. A
    worker therefore starts no call later than that minus the longest a call can take, so by the time the
    reconciler asks the provider, every call its owner started has finished (or timed out)."""
    return settings.RECONCILE_AFTER_SECONDS - (settings.PROVIDER_TIMEOUT + settings.PROVIDER_CONNECT_TIMEOUT + 1.0)


def messages_claim(message_ids: list[int], *, sender_id: int) -> tuple[list[int], datetime]:
    """Move queued/errored messages of this sender to ``sending``, one statement per previous status.
    Returns the ids now ours (only their caller may send them) and the claim time written in their rows.

    Never claimed: a message not due yet, a message moved to another sender meanwhile, a message whose
    campaign's dispatch is not ``sending`` (paused, canceled). A message to a number that opted out after it
    was queued is canceled here instead: an opt-out always wins over a pending send (except the keyword answer
that confirms the opt-out itself)."""
    now = timezone.now()
    if not message_ids:
        return [], now
    table = Message._meta.db_table
    dispatch_table = Dispatch._meta.db_table
    suppression_table = Suppression._meta.db_table
    placeholders = ", ".join(["%s"] * len(message_ids))
    claimed: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        now = timezone.now()  # inside the transaction: after any wait for SQLite's write lock
        stamp = connection.ops.adapt_datetimefield_value(now)  # stored exactly as the ORM stores it
        for old in (S.QUEUED, S.ERRORED):
            cursor.execute(
                f"""UPDATE {table} SET status = %s, updated_at = %s, error_message = %s
                    WHERE id IN ({placeholders}) AND status = %s AND kind <> %s
                      AND EXISTS (SELECT 1 FROM {suppression_table} s WHERE s.phone = {table}."to" AND s.opted_out)
                    RETURNING id, campaign_id""",
                [S.CANCELED, stamp, OPTED_OUT_NOTE, *message_ids, old, Message.Kind.KEYWORD],
            )
            counters_move([campaign_id for _mid, campaign_id in cursor.fetchall()], old, S.CANCELED)
            cursor.execute(
                f"""UPDATE {table} SET status = %s, claimed_at = %s, updated_at = %s, attempts = attempts + 1
                    WHERE id IN ({placeholders}) AND status = %s AND sender_id = %s
                      AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                      AND (campaign_id IS NULL OR EXISTS (SELECT 1 FROM {dispatch_table} d
                           WHERE d.campaign_id = {table}.campaign_id AND d.state = %s))
                    RETURNING id, campaign_id""",
                [S.SENDING, stamp, stamp, *message_ids, old, sender_id, stamp, Dispatch.State.SENDING],
            )
            rows = cursor.fetchall()
            claimed.extend(mid for mid, _campaign_id in rows)
            counters_move([campaign_id for _mid, campaign_id in rows], old, S.SENDING)
    return claimed, now


def message_claim(message_id: int, *, sender_id: int) -> bool:
    """``messages_claim`` for one message: True when the caller now owns its send."""
    claimed, _at = messages_claim([message_id], sender_id=sender_id)
    return bool(claimed)


def messages_release(message_ids: list[int], *, at: datetime, note: str = "") -> int:
    """``message_release`` for many claimed messages due again at the same time, in one statement per
    campaign, with ``note`` (when given) saying why they wait. Returns how many were given back."""
    fields = {"attempts": Greatest(F("attempts") - 1, 0), "next_attempt_at": at, "dispatched_at": None}
    if note:
        fields["error_message"] = note
    return messages_move(Message.objects.filter(pk__in=message_ids), S.QUEUED, from_statuses=(S.SENDING,),
                         fields=fields)


def message_release(message: Message, *, at: datetime | None = None) -> str:
    """Give a claimed, surely unsent message back to the queue, due at ``at`` (the attempt does not count)."""
    message_move(message.pk, S.QUEUED, from_statuses=(S.SENDING,),
                 fields={"attempts": max(0, message.attempts - 1), "next_attempt_at": at or timezone.now(),
                         "dispatched_at": None})
    return "deferred"
