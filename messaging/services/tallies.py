"""Pre-aggregated figures for the dashboards, kept in the transaction of each change: a campaign's outcomes per
minute (``CampaignMinute``) and per sender, cause and code (``CampaignTally``), a sender's outcomes per hour
(``SenderHour``) and the callbacks it received (``CallbackTally``). Pages read these few rows, never the message
table, so they cost the same for a hundred messages and for ten million.

Like the counters, each figure is spread over shards (one picked at random per call), so concurrent
transactions rarely wait on the same row, and every call locks its rows in one order: minute, tally, hour."""

from __future__ import annotations

import random
from datetime import datetime

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
        values.append(connection.ops.adapt_datetimefield_value(last_at))
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


def moved_events(old: str, new: str) -> list[str]:
    """What a move from ``old`` to ``new`` counts: ``sent`` the first time the provider holds the message, and
    the final outcome."""
    events = []
    if new in ACCEPTED and STATUS_RANK[old] < STATUS_RANK[S.SENT]:
        events.append(S.SENT)
    if new in OUTCOMES:
        events.append(new)
    return events


def outcomes_tally(*, campaign_id: int | None, sender_id: int, old: str, new: str, n: int = 1, cause: str = "",
                   code: str = "", at: datetime | None = None) -> None:
    """Count ``n`` messages of one campaign (None: outside any campaign) and sender just moved from ``old`` to
    ``new``; a failure with its cause and provider code. Must run in the transaction of the move."""
    events = moved_events(old, new)
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
