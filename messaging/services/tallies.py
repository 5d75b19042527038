"""Pre-aggregated figures for the dashboards, kept in the transaction of each change: a campaign's outcomes per
minute (``CampaignMinute``) and per sender, cause and code (``CampaignTally``), a sender's outcomes per hour
(``SenderHour``) and the callbacks it received (``CallbackTally``). Pages read these few rows, never the message
table, so they cost the same for a hundred messages and for ten million.

Like the counters, each figure is spread over shards (one picked at random per call), so concurrent
transactions rarely wait on the same row, and every call locks its rows in one order: minute, tally, hour."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from ..models import (
    STATUS_RANK,
    CallbackTally,
    CampaignCounter,
    CampaignMinute,
    CampaignTally,
    Message,
    SenderHour,
)

S = Message.Status
SHARDS = CampaignCounter.SHARDS
FAILURES = (S.UNDELIVERED, S.FAILED)
# Events of a message counted on entering a status: accepted by the provider (``sent``, counted once, on the
# first move to a status the provider holds), then its final outcome.
ACCEPTED = (S.SENT, S.DELIVERED, S.UNDELIVERED)
OUTCOMES = (S.DELIVERED, S.UNDELIVERED, S.FAILED)


def _upsert(model, keys: dict, n: int, shard: int, *, last_at: datetime | None = None) -> None:
    table = model._meta.db_table
    columns = [*keys, "shard", "count"]
    values = [*keys.values(), shard, n]
    update = f"count = {table}.count + excluded.count"
    if last_at is not None:
        columns.append("last_at")
        values.append(connection.ops.adapt_datetimefield_value(last_at) if isinstance(last_at, datetime) else last_at)
        update += f", last_at = CASE WHEN excluded.last_at > {table}.last_at THEN excluded.last_at " \
                  f"ELSE {table}.last_at END"
    conflict = ", ".join([*keys, "shard"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(values))}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {update}",
            values,
        )


def _stamp(at: datetime, unit: str) -> str:
    at = at.replace(second=0, microsecond=0)
    if unit == "hour":
        at = at.replace(minute=0)
    return connection.ops.adapt_datetimefield_value(at)


def moved_events(old: str, new: str, held: bool = False) -> list[str]:
    """What a move from ``old`` to ``new`` counts: ``sent`` the first time the provider holds the message, and
    the final outcome. ``held``: the move is the provider's report about the message (a callback, a lookup), so
    the provider holds it even when the report is a failure (one that reached us before any report of its
    acceptance, or after an ambiguous send): ``failed`` then counts ``sent`` too."""
    events = []
    accepted = new in ACCEPTED or (held and new == S.FAILED)
    if accepted and STATUS_RANK[old] < STATUS_RANK[S.SENT]:
        events.append(S.SENT)
    if new in OUTCOMES:
        events.append(new)
    return events


def outcomes_tally(*, campaign_id: int | None, sender_id: int, old: str, new: str, n: int = 1, cause: str = "",
                   code: str = "", at: datetime | None = None, held: bool = False) -> None:
    """Count ``n`` messages of one campaign (None: outside any campaign) and sender just moved from ``old`` to
    ``new``; a failure with its cause and provider code (``held``: see ``moved_events``). Must run in the
    transaction of the move."""
    events = moved_events(old, new, held)
    if not events or n <= 0:
        return
    at = at or timezone.now()
    shard = random.randrange(SHARDS)
    minute, hour = _stamp(at, "minute"), _stamp(at, "hour")
    if campaign_id:
        for event in events:
            _upsert(CampaignMinute, {"campaign_id": campaign_id, "minute": minute, "status": event}, n, shard)
        for event in events:
            failure = event in FAILURES
            _upsert(CampaignTally, {"campaign_id": campaign_id, "sender_id": sender_id, "event": event,
                                    "cause": (cause or "unknown") if failure else "",
                                    "code": (code or "")[:40] if failure else ""}, n, shard)
    for event in events:
        _upsert(SenderHour, {"sender_id": sender_id, "hour": hour, "status": event}, n, shard)


def campaign_tally(*, campaign_id: int | None, sender_id: int, event: str, n: int = 1, cause: str = "",
                   code: str = "") -> None:
    """Count an event of a campaign that is not a status move (a failover, a superseded message, a reply, an
    opt-out ...). Must run in the transaction of what it counts."""
    if not campaign_id or n <= 0:
        return
    _upsert(CampaignTally, {"campaign_id": campaign_id, "sender_id": sender_id, "event": event,
                            "cause": (cause or "")[:20], "code": (code or "")[:40]},
            n, random.randrange(SHARDS))


def callback_tally(*, sender_id: int, accepted: bool, reason: str = "", at: datetime | None = None) -> None:
    """Count one callback the sender received: accepted, or refused with ``reason`` (short, no secret)."""
    at = at or timezone.now()
    _upsert(CallbackTally, {"sender_id": sender_id, "hour": _stamp(at, "hour"), "accepted": accepted,
                            "reason": reason[:120]}, 1, random.randrange(SHARDS), last_at=at)


# ---- folding shards --------------------------------------------------------------------------------------

# The time-bucketed figures, their bucket column and the columns that name one figure.
FOLDED = (
    (CampaignMinute, "minute", ("campaign_id", "minute", "status")),
    (SenderHour, "hour", ("sender_id", "hour", "status")),
    (CallbackTally, "hour", ("sender_id", "hour", "accepted", "reason")),
)
FOLD_AFTER_SECONDS = 120  # buckets this far in the past are no longer written to (but late rows are folded too)
FOLD_BATCH = 5000


def tallies_fold(*, now: datetime | None = None, batch: int = FOLD_BATCH) -> int:
    """Fold the shards of past buckets into shard 0: rows spread over shards so that concurrent writers do not
    wait on each other are summed once their minute (or hour) is over, so a timeline or a week of volume reads
    one row per bucket and status. Each batch deletes rows by id and returns what they held, then adds it to
    shard 0 in the same transaction: a row written meanwhile is never lost, only folded on the next call.
    Returns how many rows were folded."""
    from django.db import transaction

    cutoff = (now or timezone.now()) - timedelta(seconds=FOLD_AFTER_SECONDS)
    folded = 0
    for model, bucket, keys in FOLDED:
        table = model._meta.db_table
        unit = "minute" if bucket == "minute" else "hour"
        # An hour is over only once the cutoff is past its end.
        before = _stamp(cutoff, unit)
        extra = ", last_at" if model is CallbackTally else ""
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"""DELETE FROM {table} WHERE id IN (
                            SELECT id FROM {table} WHERE shard > 0 AND {bucket} < %s LIMIT %s)
                        RETURNING {", ".join(keys)}, count{extra}""",
                    [before, batch],
                )
                rows = cursor.fetchall()
                sums: dict[tuple, list] = {}
                for row in rows:
                    key, count = row[:len(keys)], row[len(keys)]
                    entry = sums.setdefault(key, [0, None])
                    entry[0] += count
                    if extra and (entry[1] is None or row[-1] > entry[1]):
                        entry[1] = row[-1]
                for key, (count, last_at) in sorted(sums.items(), key=lambda item: str(item[0])):
                    _upsert(model, dict(zip(keys, key, strict=True)), count, 0,
                            last_at=last_at if extra else None)
            folded += len(rows)
            if len(rows) < batch:
                break
    return folded
