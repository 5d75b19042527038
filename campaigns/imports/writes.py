"""The database side of an import chunk: one multi-row statement per kind of write, on any backend.

On PostgreSQL, rows are inserted with COPY into a temporary staging table, then ``INSERT ... SELECT ...
ON CONFLICT DO NOTHING``; lookups take the chunk's numbers as one array parameter. Both run on a plain
psycopg cursor of Django's connection (so in the same transaction): passing thousands of values as array
parameters through Django's client-side binding quoted every element in Python, half of the import's time.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone

from messaging.selectors import phones_opted_out

from ..models import Contact, ListMembership

UPDATABLE = ("first_name", "last_name", "email", "timezone")


@contextmanager
def _cursor():
    """A cursor for statements with large parameters (see the module's docstring)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor  # errors come out as Django's (DataError, IntegrityError, ...), as from its own cursors


def _existing(phones: list[str]) -> dict[str, tuple]:
    """Existing contacts by E.164: (id, first, last, email, timezone, custom_fields). Raw SQL so the
    phone index is used and no value is parsed again."""
    table = Contact._meta.db_table
    found: dict[str, tuple] = {}
    columns = f"SELECT id, phone, first_name, last_name, email, timezone, custom_fields FROM {table}"
    postgres = connection.vendor == "postgresql"
    with _cursor() as cursor:
        for start in range(0, len(phones), 5000 if postgres else 900):
            part = phones[start:start + (5000 if postgres else 900)]
            if postgres:
                cursor.execute(f"{columns} WHERE phone = ANY(%s)", [part])
            else:
                cursor.execute(f"{columns} WHERE phone IN ({', '.join(['%s'] * len(part))})", part)
            for cid, phone, first, last, email, tz, custom in cursor.fetchall():
                if isinstance(custom, (str, bytes)):
                    custom = json.loads(custom or "{}")
                found[phone] = (cid, first, last, email, tz, custom or {})
    return found


def _insert_rows(table: str, columns: list[str], types: list[str], rows: list[tuple], conflict: str) -> None:
    """Insert many rows, skipping conflicts. PostgreSQL: COPY into a staging table, then one INSERT ...
    SELECT. Others: multi-row VALUES, in statements that stay under the backend's limit on query parameters."""
    if not rows:
        return
    names = ", ".join(columns)
    with _cursor() as cursor:
        if connection.vendor == "postgresql":
            stage = f"import_stage_{table}"
            definition = ", ".join(f"{name} {kind}" for name, kind in zip(columns, types, strict=True))
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({definition}) ON COMMIT DELETE ROWS")
            cursor.execute(f"TRUNCATE {stage}")  # rows of an earlier piece of the same chunk
            with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {conflict}")
            return
        width = len(columns)
        size = max(1, min(1000, (connection.features.max_query_params or 10000) // width))
        one = "(" + ", ".join(["%s"] * width) + ")"
        for start in range(0, len(rows), size):
            part = rows[start:start + size]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(part))} {conflict}",
                           [v for r in part for v in r])


def contacts_write(*, pending: dict, update: bool, contact_list_id: int | None) -> dict:
    """New contacts by a plain multi-row INSERT (ON CONFLICT DO NOTHING: a number inserted by someone else
    meanwhile is then simply an existing contact), changed ones by bulk_update, then list memberships."""
    phones = list(pending)
    existing = _existing(phones)
    suppressed = phones_opted_out([p for p in phones if p not in existing])
    now = timezone.now()
    created = updated = skipped = 0
    new_rows: list[tuple] = []
    changed: list[Contact] = []
    stamp = connection.ops.adapt_datetimefield_value(now)
    for phone, (row, duplicate) in pending.items():
        old = existing.get(phone)
        if old is None:
            f = row.fields
            new_rows.append((
                phone, f.get("first_name", ""), f.get("last_name", ""), f.get("email", ""), f.get("timezone", ""),
                json.dumps(row.custom), phone in suppressed, row.phone.fixed_line,
                stamp, stamp,
            ))
            created += 1
            continue
        cid, first, last, email, tz, custom = old
        if not update:
            skipped += not duplicate
            continue
        before = {"first_name": first, "last_name": last, "email": email, "timezone": tz}
        after = {**before, **row.fields}
        merged = {**custom, **row.custom}
        if after != before or merged != custom:
            changed.append(Contact(pk=cid, custom_fields=merged, is_fixed_line=row.phone.fixed_line,
                                   updated_at=now, **after))
            updated += not duplicate
        else:
            skipped += not duplicate
    table = Contact._meta.db_table
    if new_rows:
        _insert_rows(
            table,
            ["phone", "first_name", "last_name", "email", "timezone", "custom_fields", "opted_out", "is_fixed_line",
             "created_at", "updated_at"],
            ["text", "text", "text", "text", "text", "jsonb", "boolean", "boolean", "timestamptz", "timestamptz"],
            new_rows,
            "ON CONFLICT (phone) DO NOTHING",
        )
    if changed:
        Contact.objects.bulk_update(changed, [*UPDATABLE, "custom_fields", "is_fixed_line", "updated_at"],
                                    batch_size=500)
    if contact_list_id:
        ids = [old[0] for old in existing.values()]
        if new_rows:
            ids += [v[0] for v in _existing([r[0] for r in new_rows]).values()]
        _insert_rows(
            ListMembership._meta.db_table,
            ["contact_id", "contact_list_id", "added_at"],
            ["bigint", "bigint", "timestamptz"],
            [(cid, contact_list_id, stamp) for cid in ids],
            "ON CONFLICT (contact_list_id, contact_id) DO NOTHING",
        )
    return {"created": created, "updated": updated, "skipped": skipped}
