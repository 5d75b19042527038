"""Per-sender pacing shared by every worker process on every machine.

Each send reserves the sender's next free slot: ``slot = max(now, next_free); next_free = slot + 1/mps``,
then sleeps until its slot (a batch reserves consecutive slots in one step, never past its send lease). The reservation is one atomic step in Redis (a short Lua script) when the
broker is Redis, and one conditional UPDATE in the database otherwise. A provider 429 pushes
``next_free`` forward by the provider's retry hint, slowing every worker at once. A worker that dies
after reserving wastes its slot: pacing can undershoot, never overshoot. Slots are wall-clock times, so
the machines running workers keep their clocks in step (NTP), as any fleet does.

The pace in use adapts to the provider: a batch that met a 429 halves the sender's rate factor (down to
MIN_FACTOR of the configured pace), and every batch sent without one gives back RECOVERY_STEP of it, up to
the configured pace (additive increase, multiplicative decrease). A sender configured faster than its
provider allows so settles near the provider's real limit instead of bursting into 429s again and again.
The factor lives beside the slots (Redis or the database), shared by every worker.

Written by hand because the needed primitive (a shared slot reservation) is a few lines in either
store, and every rate-limit library found adds a dependency for one atomic step.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger("messaging.pacing")

_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local not_after = tonumber(ARGV[4])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = math.max(now, nxt)
local granted = count
if not_after >= 0 then
  granted = math.max(0, math.min(count, math.floor((not_after - first) / interval) + 1))
end
if granted > 0 then redis.call('SET', KEYS[1], tostring(first + granted * interval), 'EX', 3600) end
return {tostring(first), tostring(granted)}
"""

_PUSH_LUA = """
local target = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if target > nxt then redis.call('SET', KEYS[1], tostring(target), 'EX', 3600) end
return 1
"""

_local = threading.local()


def _redis():
    client = getattr(_local, "redis", None)
    if client is None:
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        _local.redis = client
        _local.reserve = client.register_script(_RESERVE_LUA)
        _local.push = client.register_script(_PUSH_LUA)
    return client


def _uses_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def _namespace() -> str:
    """Keys carry the database's name: deployments (and test runs) sharing one Redis never share a pace."""
    return f"pace:{connection.settings_dict.get('NAME')}"


def _key(sender_id: int) -> str:
    return f"{_namespace()}:sender:{sender_id}"


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
    now = time.time()
    bound = -1.0 if not_after is None else not_after
    if _uses_redis():
        _redis()
        first, granted = _local.reserve(keys=[_key(sender_id)], args=[repr(now), repr(interval), count, repr(bound)])
        return float(first), int(float(granted))
    from .models import SenderPace

    table = SenderPace._meta.db_table
    lock = " FOR UPDATE" if connection.vendor != "sqlite" else ""  # SQLite: the IMMEDIATE transaction locks
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (sender_id, next_free, consecutive_failures) VALUES (%s, %s, 0) "
            f"ON CONFLICT (sender_id) DO NOTHING",
            [sender_id, 0.0],
        )
        cursor.execute(f"SELECT next_free FROM {table} WHERE sender_id = %s{lock}", [sender_id])
        first = max(now, float(cursor.fetchone()[0]))
        granted = count if not_after is None else max(0, min(count, int((not_after - first) // interval) + 1))
        if granted:
            cursor.execute(f"UPDATE {table} SET next_free = %s WHERE sender_id = %s",
                           [first + granted * interval, sender_id])
    return first, granted


def next_free(sender_id: int) -> float:
    """When the sender's next slot is free (unix seconds)."""
    if _uses_redis():
        value = _redis().get(_key(sender_id))
        return max(time.time(), float(value or 0))
    from .models import SenderPace

    value = SenderPace.objects.filter(sender_id=sender_id).values_list("next_free", flat=True).first()
    return max(time.time(), value or 0.0)


def wait_for_slot(sender_id: int, mps: float) -> None:
    slot = reserve(sender_id, mps)
    delay = slot - time.time()
    if delay > 0:
        time.sleep(delay)


def push_back(sender_id: int, seconds: float) -> None:
    """The provider asked us to slow down: no slot for this sender before now + seconds."""
    target = time.time() + max(seconds, 0.0)
    if _uses_redis():
        _redis()
        _local.push(keys=[_key(sender_id)], args=[repr(target)])
        return
    from .models import SenderPace

    table = SenderPace._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (sender_id, next_free, consecutive_failures) VALUES (%s, %s, 0) "
                f"ON CONFLICT (sender_id) DO NOTHING",
            [sender_id, 0.0],
        )
        cursor.execute(
            f"UPDATE {table} SET next_free = %s WHERE sender_id = %s AND next_free < %s", [target, sender_id, target]
        )


# ---- adaptive pace -------------------------------------------------------------------------------

MIN_FACTOR = 1 / 64
RECOVERY_STEP = 0.05


def _factor_key(sender_id: int) -> str:
    return f"{_namespace()}:factor:{sender_id}"


def rate_factor(sender_id: int) -> float:
    """The share of the configured pace in use now (1.0 unless the provider pushed back lately)."""
    if _uses_redis():
        value = _redis().get(_factor_key(sender_id))
        return float(value) if value is not None else 1.0
    from .models import SenderPace

    value = SenderPace.objects.filter(sender_id=sender_id).values_list("rate_factor", flat=True).first()
    return value if value is not None else 1.0


def effective_mps(sender_id: int, mps: float) -> float:
    """The pace to send at: the configured one, scaled by the rate factor."""
    return max(mps * rate_factor(sender_id), 0.001)


def _factor_set(sender_id: int, change) -> float:
    if _uses_redis():
        from redis.exceptions import WatchError

        client = _redis()
        with client.pipeline() as pipe:  # optimistic: retried if another worker changed it meanwhile
            while True:
                try:
                    pipe.watch(_factor_key(sender_id))
                    raw = pipe.get(_factor_key(sender_id))
                    new = change(float(raw) if raw is not None else 1.0)
                    pipe.multi()
                    if new >= 1.0:
                        pipe.delete(_factor_key(sender_id))
                    else:
                        pipe.set(_factor_key(sender_id), repr(new), ex=3600)
                    pipe.execute()
                    return new
                except WatchError:  # another worker changed it meanwhile: read it again
                    continue
    from .models import SenderPace

    with transaction.atomic():
        SenderPace.objects.get_or_create(sender_id=sender_id)
        pace = SenderPace.objects.select_for_update().get(sender_id=sender_id)
        new = change(pace.rate_factor)
        if new != pace.rate_factor:
            SenderPace.objects.filter(sender_id=sender_id).update(rate_factor=new)
        return new


def slow_down(sender_id: int) -> float:
    """The provider answered 429: halve the sender's pace (not below MIN_FACTOR). Returns the new factor."""
    factor = _factor_set(sender_id, lambda factor: max(MIN_FACTOR, factor / 2))
    logger.warning("sender %s: the provider asked to slow down; pace lowered to %.0f%% of the configured one",
                   sender_id, factor * 100)
    return factor


def speed_up(sender_id: int) -> float:
    """A batch went out without a 429: give back a step of the configured pace. Returns the new factor."""
    if rate_factor(sender_id) >= 1.0:
        return 1.0  # the usual case: one read, no write
    return _factor_set(sender_id, lambda factor: min(1.0, factor + RECOVERY_STEP))

