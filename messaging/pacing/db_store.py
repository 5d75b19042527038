"""Pace kept in the database, in each sender's ``SenderPace`` row: a reservation is one transaction holding
the row's lock (``SELECT ... FOR UPDATE``; on SQLite the IMMEDIATE transaction is the lock)."""

from __future__ import annotations

from django.db import connection, transaction


def _pace_model():
    """Imported when first used: loading the pacing package needs no models."""
    from ..models import SenderPace

    return SenderPace


def _ensure_row(cursor, table: str, sender_id: int) -> None:
    cursor.execute(
        f"INSERT INTO {table} (sender_id, next_free, consecutive_failures) VALUES (%s, %s, 0) "
        f"ON CONFLICT (sender_id) DO NOTHING",
        [sender_id, 0.0],
    )


class DatabaseStore:
    """Stateless: every call uses the calling thread's database connection."""

    def reserve(self, sender_id: int, now: float, interval: float, count: int,
                not_after: float | None) -> tuple[float, int]:
        table = _pace_model()._meta.db_table
        lock = " FOR UPDATE" if connection.vendor != "sqlite" else ""  # SQLite: the IMMEDIATE transaction locks
        with transaction.atomic(), connection.cursor() as cursor:
            _ensure_row(cursor, table, sender_id)
            cursor.execute(f"SELECT next_free FROM {table} WHERE sender_id = %s{lock}", [sender_id])
            first = max(now, float(cursor.fetchone()[0]))
            granted = count if not_after is None else max(0, min(count, int((not_after - first) // interval) + 1))
            if granted:
                cursor.execute(f"UPDATE {table} SET next_free = %s WHERE sender_id = %s",
                               [first + granted * interval, sender_id])
        return first, granted

    def push(self, sender_id: int, target: float) -> None:
        table = _pace_model()._meta.db_table
        with transaction.atomic(), connection.cursor() as cursor:
            _ensure_row(cursor, table, sender_id)
            cursor.execute(f"UPDATE {table} SET next_free = %s WHERE sender_id = %s AND next_free < %s",
                           [target, sender_id, target])

    def next_free(self, sender_id: int) -> float:
        value = _pace_model().objects.filter(sender_id=sender_id).values_list("next_free", flat=True).first()
        return value or 0.0

    def factor(self, sender_id: int) -> float:
        value = _pace_model().objects.filter(sender_id=sender_id).values_list("rate_factor", flat=True).first()
        return value if value is not None else 1.0

    def factors(self, sender_ids: list[int]) -> dict[int, float]:
        found = dict(_pace_model().objects.filter(sender_id__in=sender_ids).values_list("sender_id", "rate_factor"))
        return {pk: found.get(pk, 1.0) for pk in sender_ids}

    def factor_swap(self, sender_id: int, expected: float, new: float) -> bool:
        model = _pace_model()
        with transaction.atomic(), connection.cursor() as cursor:
            _ensure_row(cursor, model._meta.db_table, sender_id)  # a sender without a row is at 1.0
            changed = model.objects.filter(sender_id=sender_id, rate_factor=expected).update(rate_factor=new)
        return changed == 1
