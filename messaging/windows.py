"""Sending windows in each recipient's local time: which zone a recipient is in, whether a window is open at a
given instant there, and when it next opens. Pure functions of their arguments (no database, no clock).

A window is a range of wall-clock times, ``[start, end)``, read on the clock the recipient sees: 09:00–21:00
is open from 09:00 up to, not including, 21:00. When ``end`` is earlier than ``start`` the window crosses
midnight (20:00–02:00 is open in the evening and in the small hours). ``start == end`` is no window at all:
always open.

Daylight-saving changes follow from reading the recipient's wall clock (``zoneinfo``, PEP 495 ``fold``):

- When the clocks go forward past the opening time (02:30 on a spring-forward day in America/New_York, a
  time that does not exist that night), the window opens when the clocks do: at 03:00 local. A window that
  lies wholly inside the skipped hour does not open that day.
- When the clocks go back and the opening time occurs twice (01:30 on a fall-back day), the window opens at
  the first of them (``fold=0``). Inside the repeated hour a time is in or out of the window by what the
  clock shows, both times it shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones
from phonenumbers.tzdata import TIMEZONE_LONGEST_PREFIX

DEFAULT_ZONE = "UTC"  # when even the campaign's zone is missing or not a known zone
WAITING_NOTE = "Waiting for its sending window"  # how a message held for its window begins its error_message


@dataclass(frozen=True)
class Window:
    """When messages may go out, in each recipient's local time; ``timezone`` is the campaign's zone, for
    recipients whose own zone is not known."""

    start: time
    end: time
    timezone: str = ""

    @property
    def always_open(self) -> bool:
        return self.start == self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


# ---- which zone ----------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def zone_valid(name: str) -> bool:
    """Whether ``name`` is a zone the system's time zone database knows (``Etc/Unknown`` is not one)."""
    if not name or not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=16384)
def _zones_for_prefix(key: str) -> tuple[str, ...]:
    """The zones phonenumbers gives the numbers that ``key`` stands for (see ``_prefix_key``)."""
    try:
        parsed = phonenumbers.parse(key, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(zone for zone in number_zones.time_zones_for_number(parsed) if zone_valid(zone))


def _prefix_key(phone: str) -> str | None:
    """The cache key of an E.164 number: its first TIMEZONE_LONGEST_PREFIX digits, the rest as zeros.

    phonenumbers finds a number's zones by the longest of its prefixes in its data (at most
    TIMEZONE_LONGEST_PREFIX digits, country code included), after checking the number's type, which its
    metadata decides from the leading digits and the length. Numbers that share both share their zones, so
    one lookup serves every number of a prefix (checked against every region's example numbers and random
    numbers around them)."""
    text = (phone or "").strip()
    if not text.startswith("+"):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return None
    return "+" + digits[:TIMEZONE_LONGEST_PREFIX] + "0" * max(0, len(digits) - TIMEZONE_LONGEST_PREFIX)


def recipient_timezone(phone: str, contact_timezone: str, fallback: str) -> str:
    """The zone a recipient's window is read in: the contact's own zone when it is a known one; else the one
    its number's country and area code give (when they give several, ``fallback`` if it is one of them, else
    the first); else ``fallback`` (the campaign's zone), or UTC when that is not a known zone either."""
    contact_timezone = (contact_timezone or "").strip()
    if zone_valid(contact_timezone):
        return contact_timezone
    fallback = (fallback or "").strip()
    if not zone_valid(fallback):
        fallback = DEFAULT_ZONE
    key = _prefix_key(phone)
    zones = _zones_for_prefix(key) if key else ()
    if not zones or fallback in zones:
        return fallback
    return zones[0]


# ---- open, and when ------------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("A sending window needs an aware datetime.")
    return at


def _wall_open(window: Window, wall: time) -> bool:
    if window.always_open:
        return True
    if window.start < window.end:
        return window.start <= wall < window.end
    return wall >= window.start or wall < window.end  # crosses midnight


def window_open(window: Window, tz_name: str, at: datetime) -> bool:
    """Whether the window is open at the instant ``at`` (aware) on the clocks of ``tz_name``."""
    if window.always_open:
        return True
    local = _aware(at).astimezone(ZoneInfo(tz_name))
    return _wall_open(window, local.time().replace(tzinfo=None))


def _change_between(zone: ZoneInfo, low: int, high: int) -> datetime:
    """The moment the clocks of ``zone`` change between the POSIX seconds ``low`` and ``high``, whose offsets
    differ (one change between them): the first second with the offset of ``high``. zoneinfo does not list
    its transitions, so it is found by halving (tz data is in whole seconds)."""
    after = datetime.fromtimestamp(high, tz=zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz=zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, tz=UTC)


def _instants_showing(zone: ZoneInfo, wall: datetime) -> list[datetime]:
    """The UTC instants at which the clocks of ``zone`` reach ``wall`` (naive): one for an ordinary time, two
    when the clocks go back over it (the first first), and the moment the clocks go forward when they skip
    it."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return [first] if second == first else [first, second]
    # Skipped: fold=1 reads it with the offset after the change (an instant before the change), fold=0 with
    # the offset before (an instant after it).
    return [_change_between(zone, int(second.timestamp()), int(first.timestamp()))]


def _clocks_back(zone: ZoneInfo, day: date) -> list[datetime]:
    """The moment the clocks of ``zone`` go back on ``day``, if they do: the clock then shows an earlier time
    again, which may be inside a window it had left."""
    low = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    high = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    if high.astimezone(zone).utcoffset() >= low.astimezone(zone).utcoffset():
        return []
    return [_change_between(zone, int(low.timestamp()), int(high.timestamp()))]


def next_opening(window: Window, tz_name: str, at: datetime) -> datetime:
    """The first instant from ``at`` (aware) at which the window is open on the clocks of ``tz_name``, in UTC:
    ``at`` itself when it is open then."""
    at = _aware(at).astimezone(UTC)
    if window_open(window, tz_name, at):
        return at
    zone = ZoneInfo(tz_name)
    # From the day before: where the clocks go back over midnight, the evening before comes round again.
    first_day = at.astimezone(zone).date() - timedelta(days=1)
    candidates: list[datetime] = []
    for offset in range(9):  # a window that lies in a skipped hour misses that day; nothing skips a week
        day = first_day + timedelta(days=offset)
        candidates += _instants_showing(zone, datetime.combine(day, window.start)) + _clocks_back(zone, day)
    for instant in sorted(candidates):
        if instant > at and window_open(window, tz_name, instant):
            return instant
    raise ValueError(f"The window {window} never opens in {tz_name}.")
