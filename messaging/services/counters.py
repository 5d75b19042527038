"""Per-campaign message counts by status: the one writer of CampaignCounter.

Every status change adds to the counters in the transaction of the change, so a read (a few rows per
campaign, whatever its size) always agrees with ``COUNT(*)`` by status.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from django.db import connection

from ..models import CampaignCounter


def counters_add(*, campaign_id: int | None, deltas: dict[str, int]) -> None:
    """Add to a campaign's per-status counters. Must run inside the transaction of the change."""
    if not campaign_id:
        return
    table = CampaignCounter._meta.db_table
    shard = random.randrange(CampaignCounter.SHARDS)
    with connection.cursor() as cursor:
        # Always lock counter rows in the same order, so two transactions never wait on each other in a cycle.
        for status, delta in sorted(deltas.items()):
            if not delta:
                continue
            cursor.execute(
                f"INSERT INTO {table} (campaign_id, status, shard, count) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT (campaign_id, status, shard) DO UPDATE SET count = {table}.count + excluded.count",
                [campaign_id, status, shard, delta],
            )


def counters_move(campaign_ids: Iterable[int | None], old: str, new: str) -> None:
    """Counters for messages just moved from ``old`` to ``new``, given each moved message's campaign id (one
    entry per message), in the caller's transaction."""
    for campaign_id, n in Counter(campaign_ids).items():
        counters_add(campaign_id=campaign_id, deltas={old: -n, new: n})
