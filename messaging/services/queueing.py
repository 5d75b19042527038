"""Queueing: new outbound messages, for a campaign's recipients in one statement, or one at a time.

Campaign messages are written by ``INSERT ... SELECT`` over the recipients the caller gives (any query of a
contact id and a phone number): the column list comes from the Message model, so a new column with a
default needs no change here. Bodies are personalized at send time (see ``outbound``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import Dispatch, Message, Sender, Suppression
from ..selectors import sender_content_problems
from .counters import counters_add
from .tallies import campaign_tally

logger = logging.getLogger("messaging")
S = Message.Status
RESENDABLE = (S.FAILED, S.UNDELIVERED)  # a resend goes to recipients whose latest message ended so


@dataclass(frozen=True)
class QueueResult:
    queued: int  # messages created
    suppressed: int  # recipients skipped because their number opted out


@dataclass(frozen=True)
class Value:
    """A plain value for one column of ``_insert_select`` (adapted as the model field adapts it)."""

    value: Any


def _insert_select(columns: dict[str, str | Value], source_sql: str, source_params: list) -> int:
    """``INSERT INTO message (every column) SELECT ... FROM source``: for each column, the SQL expression
    (``str``, no parameters) or ``Value`` given, else the model field's default (timestamps: now). A message
    that already exists (same campaign, number and round) is skipped. Returns the number of rows written."""
    now = timezone.now()
    names, expressions, params = [], [], []
    for field in Message._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(connection.ops.quote_name(field.column))
        given = columns.get(field.column)
        if isinstance(given, str):
            expressions.append(given)
            continue
        if isinstance(given, Value):
            value = given.value
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        elif field.has_default():
            value = field.get_default()
        elif field.null:
            value = None
        elif field.empty_strings_allowed:  # text columns
            value = ""
        else:
            raise ValueError(f"Message.{field.name} has no default: give it when queueing")
        expressions.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    sql = (f"INSERT INTO {Message._meta.db_table} ({', '.join(names)}) SELECT {', '.join(expressions)} "
           f"FROM {source_sql} ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *source_params])
        return max(cursor.rowcount, 0)


def _split(sender_ids: list[int], contact_column: str) -> str:
    """One sender per recipient, split evenly by contact id (integers from our own rows, never input)."""
    ids = [int(pk) for pk in sender_ids]
    if len(ids) == 1:
        return str(ids[0])
    cases = " ".join(f"WHEN {i} THEN {pk}" for i, pk in enumerate(ids))
    return f"CASE {contact_column} %% {len(ids)} {cases} END"  # %% is a literal % beside parameters


def _opted_out(phone_column: str) -> str:
    return (f"EXISTS (SELECT 1 FROM {Suppression._meta.db_table} s "
            f"WHERE s.phone = {phone_column} AND s.opted_out = TRUE)")


def messages_queue(
    *, campaign_id: int, recipients: QuerySet, sender_ids: list[int], media_urls: list[str] | None = None
) -> QueueResult:
    """Queue one message per recipient of a campaign (its first round). ``recipients`` is a query of values
    named ``contact_id`` and ``phone`` (E.164), one row per number; numbers that opted out are skipped and
    counted. Messages are split evenly across ``sender_ids``. Run it in the transaction that opens the
    campaign's dispatch."""
    sql, params = recipients.query.sql_with_params()
    with transaction.atomic():
        queued = _insert_select(
            {
                "sender_id": _split(sender_ids, "r.contact_id"),
                "campaign_id": Value(int(campaign_id)),
                "contact_id": "r.contact_id",
                "to": "r.phone",
                "media_urls": Value(list(media_urls or [])),
            },
            f"({sql}) r WHERE NOT {_opted_out('r.phone')}",
            list(params),
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) r WHERE {_opted_out('r.phone')}", list(params))
            suppressed = cursor.fetchone()[0]
        counters_add(campaign_id=campaign_id, deltas={S.QUEUED: queued})
    return QueueResult(queued=queued, suppressed=suppressed)


def messages_requeue_failed(*, campaign_id: int) -> int:
    """New messages, in a new round, for the recipients of a campaign whose latest message failed or was
    undelivered, from the sender and with the media of that message. Nobody who got (or may have got) a
    message receives another, and numbers that opted out are skipped. Returns how many were queued."""
    table = Message._meta.db_table
    with transaction.atomic():
        last = Message.objects.filter(campaign_id=campaign_id).order_by("-round").values_list("round", flat=True)
        new_round = (last.first() or 0) + 1
        resendable = ", ".join(f"'{status}'" for status in RESENDABLE)
        done = ", ".join(f"'{status}'" for status in (*RESENDABLE, S.CANCELED))
        dispatch = Dispatch.objects.filter(campaign_id=campaign_id).first()
        opted_out = _opted_out('f."to"')
        source = f"""{table} f
            WHERE f.campaign_id = %s AND f.status IN ({resendable})
              AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.campaign_id = f.campaign_id
                              AND o."to" = f."to" AND o.status NOT IN ({done}))
              AND NOT {opted_out}
            GROUP BY f.campaign_id, f."to" """
        created = _insert_select(
            {
                "sender_id": "MIN(f.sender_id)",
                "campaign_id": "f.campaign_id",
                "contact_id": "MIN(f.contact_id)",
                "round": Value(new_round),
                "to": 'f."to"',
                "media_urls": Value(list(dispatch.media_urls) if dispatch else []),
            },
            source,
            [campaign_id],
        )
        if created:
            counters_add(campaign_id=campaign_id, deltas={S.QUEUED: created})
            _superseded_tally(campaign_id, new_round)
    return created


def _superseded_tally(campaign_id: int, new_round: int) -> None:
    """Count the messages a resend just replaced (each new message's recipient's previous one), by status and
    sender, so the campaign's page tells recipients from messages."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT p.status, p.sender_id, COUNT(*) FROM {table} n
                JOIN {table} p ON p.campaign_id = n.campaign_id AND p."to" = n."to"
                 AND p.round = (SELECT MAX(q.round) FROM {table} q
                                WHERE q.campaign_id = n.campaign_id AND q."to" = n."to" AND q.round < n.round)
                WHERE n.campaign_id = %s AND n.round = %s
                GROUP BY p.status, p.sender_id ORDER BY p.sender_id, p.status""",
            [campaign_id, new_round],
        )
        rows = cursor.fetchall()
    for status, sender_id, n in rows:
        campaign_tally(campaign_id=campaign_id, sender_id=sender_id, event="superseded", cause=status, n=n)


def message_create(*, sender: Sender, to: str, body: str, media_urls: list[str] | None = None,
                   contact_id: int | None = None, kind: str = Message.Kind.MESSAGE,
                   in_reply_to: Message | None = None) -> Message:
    """Queue one message outside any campaign (test sends, answers to replies, keyword answers) and enqueue its
    send. ValueError, in plain words, when the sender's provider cannot take it. A keyword answer
    (``Message.Kind.KEYWORD``) goes to a number that has just opted out: it is the one message such a number
    still gets (the claim lets it through)."""
    problems = sender_content_problems(sender=sender, body=body, media_urls=media_urls or [])
    if problems:
        raise ValueError(" ".join(problems))
    with transaction.atomic():
        message = Message.objects.create(
            sender=sender, to=to, body=body, media_urls=media_urls or [], contact_id=contact_id,
            dispatched_at=timezone.now(), kind=kind, in_reply_to=in_reply_to,
        )
        transaction.on_commit(lambda: _enqueue_send([message.pk]))
    return message


def _enqueue_send(ids: list[int]) -> None:
    """Enqueue the send of messages just committed. A broker that cannot take it now loses nothing: the sweep
    enqueues single messages that were not picked up (``sweep``), so the caller (a webhook answering a keyword)
    is not failed for it."""
    from ..tasks import send_batch

    try:
        send_batch.delay(ids)
    except Exception:  # noqa: BLE001 - any broker error; the sweep sends them later
        logger.exception("send of messages %s not enqueued now; the sweep will", ids)
