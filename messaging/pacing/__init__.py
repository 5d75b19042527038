"""Per-sender pacing shared by every worker process on every machine.

Each send reserves the sender's next free slot: ``slot = max(now, next_free); next_free = slot + 1/mps``,
then sleeps until its slot (a batch reserves consecutive slots in one step, never past its send lease). The
reservation is one atomic step in Redis (a short Lua script) when the broker is Redis, and one conditional
UPDATE in the database otherwise. A provider 429 pushes ``next_free`` forward by the provider's retry hint,
slowing every worker at once. A worker that dies after reserving wastes its slot: pacing can undershoot, never
overshoot. Slots are wall-clock times, so the machines running workers keep their clocks in step (NTP), as
any fleet does.

The pace in use adapts to the provider, batch by batch (``pace_after_batch``): the sender's rate factor is
scaled by the share of the batch's calls the provider took, then RECOVERY_STEP of the configured pace is given
back, within MIN_FACTOR and the configured pace. A batch without a 429 so gains a step; one where half the calls
or more met a 429 halves the pace (the most one batch takes away). A sender configured faster than its provider
allows settles just above the provider's real limit (where the calls refused come back as the step given back)
instead of bursting into 429s again and again, while the odd 429 of a provider that refuses a few calls
whatever the pace costs nothing: 5% refused, then the step given back, leaves the pace where it was. The factor
lives beside the slots (Redis or the database), shared by every worker.

This module is the interface; the state lives in a store (``PaceStore``): ``redis_store.RedisStore`` or
``db_store.DatabaseStore``, each a handful of atomic primitives. The store follows the broker setting
(``store()``), one per broker URL and process.

Written by hand because the needed primitive (a shared slot reservation) is a few lines in either
store, and every rate-limit library found adds a dependency for one atomic step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from django.conf import settings

from .db_store import DatabaseStore
from .redis_store import RedisStore

logger = logging.getLogger("messaging.pacing")

MIN_FACTOR = 1 / 64
RECOVERY_STEP = 0.05

__all__ = [
    "MIN_FACTOR", "RECOVERY_STEP", "DatabaseStore", "PaceStore", "RedisStore", "effective_mps", "next_free",
    "pace_after_batch", "push_back", "rate_factor", "reserve", "reserve_within", "slow_down", "speed_up", "store",
    "wait_for_slot",
]


class PaceStore(Protocol):
    """Where a sender's next free slot and rate factor live. Every method is one atomic step, whichever
    process or machine calls it."""

    def reserve(self, sender_id: int, now: float, interval: float, count: int,
                not_after: float | None) -> tuple[float, int]:
        """``first = max(now, next_free)``; grant up to ``count`` slots ``interval`` apart from ``first``, none
        later than ``not_after`` (no bound when None), and move ``next_free`` past the granted ones only.
        Returns ``(first, granted)``."""

    def push(self, sender_id: int, target: float) -> None:
        """``next_free = max(next_free, target)``: never pulls it closer."""

    def next_free(self, sender_id: int) -> float:
        """The stored next free slot (unix seconds; 0.0 when none is stored)."""

    def factor(self, sender_id: int) -> float:
        """The stored rate factor (1.0 when none is stored)."""

    def factors(self, sender_ids: list[int]) -> dict[int, float]:
        """``factor`` of several senders at once."""

    def factor_swap(self, sender_id: int, expected: float, new: float) -> bool:
        """Set the rate factor to ``new`` if it is still ``expected``. False (and nothing changed) when another
        worker changed it in between."""


_stores: dict[str, PaceStore] = {}


def _uses_redis(broker_url: str) -> bool:
    return broker_url.startswith(("redis://", "rediss://"))


def store() -> PaceStore:
    """The store this process paces with: Redis when the broker is Redis, the database otherwise. Made once per
    broker URL (it follows the setting, which tests change)."""
    url = settings.CELERY_BROKER_URL
    found = _stores.get(url)
    if found is None:
        found = _stores.setdefault(url, RedisStore(url) if _uses_redis(url) else DatabaseStore())
    return found


def reserve(sender_id: int, mps: float, count: int = 1) -> float:
    """Reserve the sender's next ``count`` slots; returns the wall-clock time (unix seconds) of the first.
    Slot ``i`` is at ``first + i / mps``."""
    first, _granted = reserve_within(sender_id, mps, count)
    return first


def reserve_within(sender_id: int, mps: float, count: int, not_after: float | None = None) -> tuple[float, int]:
    """Reserve up to ``count`` consecutive slots, none later than ``not_after`` (unix seconds). Returns the
    first slot's time and how many were granted (possibly 0). Slots not granted are not consumed, so a
    worker that cannot use its slots in time never pushes the sender's schedule further out."""
    interval = 1.0 / max(mps, 0.001)
    return store().reserve(sender_id, time.time(), interval, count, not_after)


def next_free(sender_id: int) -> float:
    """When the sender's next slot is free (unix seconds)."""
    return max(time.time(), store().next_free(sender_id))


def wait_for_slot(sender_id: int, mps: float) -> None:
    slot = reserve(sender_id, mps)
    delay = slot - time.time()
    if delay > 0:
        time.sleep(delay)


def push_back(sender_id: int, seconds: float) -> None:
    """The provider asked us to slow down: no slot for this sender before now + seconds."""
    store().push(sender_id, time.time() + max(seconds, 0.0))


# ---- adaptive pace -------------------------------------------------------------------------------


def rate_factor(sender_id: int) -> float:
    """The share of the configured pace in use now (1.0 unless the provider pushed back lately)."""
    return store().factor(sender_id)


def rate_factors(sender_ids) -> dict[int, float]:
    """``rate_factor`` of several senders, in one read."""
    return store().factors([int(pk) for pk in sender_ids])


def effective_mps(sender_id: int, mps: float) -> float:
    """The pace to send at: the configured one, scaled by the rate factor."""
    return max(mps * rate_factor(sender_id), 0.001)


def _factor_change(sender_id: int, change: Callable[[float], float]) -> float:
    """Apply ``change`` to the factor, optimistically: read, compute, compare-and-set, and read again if another
    worker changed it meanwhile (so concurrent changes all count)."""
    pace = store()
    while True:
        current = pace.factor(sender_id)
        new = change(current)
        if new == current or pace.factor_swap(sender_id, current, new):
            return new


def slow_down(sender_id: int) -> float:
    """The provider answered 429: halve the sender's pace (not below MIN_FACTOR). Returns the new factor."""
    factor = _factor_change(sender_id, lambda factor: max(MIN_FACTOR, factor / 2))
    logger.warning("sender %s: the provider asked to slow down; pace lowered to %.0f%% of the configured one",
                   sender_id, factor * 100)
    return factor


def pace_after_batch(sender_id: int, *, calls: int, rate_limited: int) -> float:
    """A batch made ``calls`` provider calls, of which ``rate_limited`` were answered 429: adapt the sender's
    pace (see the module docstring). Returns the new factor."""
    if calls <= 0:
        return rate_factor(sender_id)
    refused = min(1.0, rate_limited / calls)
    if refused == 0:
        return speed_up(sender_id)
    if refused >= 0.5:
        return slow_down(sender_id)
    before = rate_factor(sender_id)
    factor = _factor_change(
        sender_id, lambda factor: min(1.0, max(MIN_FACTOR, factor * (1 - refused) + RECOVERY_STEP)))
    if factor < before:
        logger.warning("sender %s: the provider refused %d of %d calls (429); pace lowered to %.0f%% of the "
                       "configured one", sender_id, rate_limited, calls, factor * 100)
    return factor


def speed_up(sender_id: int) -> float:
    """A batch went out without a 429: give back a step of the configured pace. Returns the new factor."""
    if rate_factor(sender_id) >= 1.0:
        return 1.0  # the usual case: one read, no write
    return _factor_change(sender_id, lambda factor: min(1.0, factor + RECOVERY_STEP))
