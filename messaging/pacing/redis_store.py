"""Pace kept in Redis: each primitive is one Lua script (atomic on the server), keys expire after an hour idle.

Keys carry the database's name (``pace:<database>:sender:<id>``, ``pace:<database>:factor:<id>``):
deployments (and test runs) sharing one Redis never share a pace.
"""

from __future__ import annotations

from django.db import connection

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

# The factor is absent at the configured pace (1.0): a key exists only while a sender is slowed down.
_FACTOR_SWAP_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '1')
if current ~= tonumber(ARGV[1]) then return 0 end
if tonumber(ARGV[2]) >= 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', 3600)
end
return 1
"""


def _namespace() -> str:
    """Read at each call: a test run switches to its test database after this store is made."""
    return f"pace:{connection.settings_dict.get('NAME')}"


class RedisStore:
    """One client (and its connection pool, thread-safe and renewed after a fork) per process."""

    def __init__(self, url: str):
        import redis  # only where Redis is the broker: the embedded setup never loads it

        self.client = redis.Redis.from_url(url)
        self._reserve = self.client.register_script(_RESERVE_LUA)
        self._push = self.client.register_script(_PUSH_LUA)
        self._factor_swap = self.client.register_script(_FACTOR_SWAP_LUA)

    @staticmethod
    def _slot_key(sender_id: int) -> str:
        return f"{_namespace()}:sender:{sender_id}"

    @staticmethod
    def _factor_key(sender_id: int) -> str:
        return f"{_namespace()}:factor:{sender_id}"

    def reserve(self, sender_id: int, now: float, interval: float, count: int,
                not_after: float | None) -> tuple[float, int]:
        bound = -1.0 if not_after is None else not_after
        first, granted = self._reserve(keys=[self._slot_key(sender_id)],
                                       args=[repr(now), repr(interval), count, repr(bound)])
        return float(first), int(float(granted))

    def push(self, sender_id: int, target: float) -> None:
        self._push(keys=[self._slot_key(sender_id)], args=[repr(target)])

    def next_free(self, sender_id: int) -> float:
        return float(self.client.get(self._slot_key(sender_id)) or 0)

    def factor(self, sender_id: int) -> float:
        value = self.client.get(self._factor_key(sender_id))
        return float(value) if value is not None else 1.0

    def factors(self, sender_ids: list[int]) -> dict[int, float]:
        if not sender_ids:
            return {}
        values = self.client.mget([self._factor_key(pk) for pk in sender_ids])
        return {pk: float(value) if value is not None else 1.0 for pk, value in zip(sender_ids, values, strict=True)}

    def factor_swap(self, sender_id: int, expected: float, new: float) -> bool:
        return bool(self._factor_swap(keys=[self._factor_key(sender_id)], args=[repr(expected), repr(new)]))
