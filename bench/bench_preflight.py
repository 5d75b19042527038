"""Confirmation benchmark: how long the figures shown before a launch take for a large audience.

Not a test: it prints figures. It runs on a throwaway database made with Django's test-database machinery
(SQLite in a temporary VAR_DIR by default; PostgreSQL when DATABASE_URL says so):

    .venv/bin/python bench/bench_preflight.py --recipients 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_preflight.py

The audience is spread over US area codes and a few countries, with first names from a pool of a few
thousand (as real lists repeat names), 1% opted out, 2% on a second list, and a sending window; the template
uses a field with a fallback. The tables are analyzed after loading, as a live database's are (without
statistics PostgreSQL walks the million contacts by index, about four times slower). Printed: the confirmation's time for a plain message, a personalized one, and a
personalized one with a window, and the compose preview's time.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import tempfile
import time
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "DATABASE_URL" not in os.environ:
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="bench-preflight-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A throwaway database, throwaway keys: the benchmark runs with DEBUG off, as production does, and its workers
# inherit them.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("CREDENTIALS_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

PREFIXES = ["+1212", "+1415", "+1312", "+1713", "+1305", "+1206", "+1617", "+1404", "+44207", "+61290"]


def make_audience(n: int):
    from campaigns.models import Contact, ContactList, ListMembership

    first, second = ContactList.objects.create(name="bench main"), ContactList.objects.create(name="bench extra")
    chunk = 20_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            prefix = PREFIXES[i % len(PREFIXES)]
            subscriber = f"{2000000 + i // len(PREFIXES):07d}"
            phone = f"{prefix}{subscriber[1:] if prefix == '+61290' else subscriber}"
            rows.append(Contact(phone=phone, first_name="" if i % 50 == 0 else f"Name{i % 3000}",
                                opted_out=i % 100 == 7))
        Contact.objects.bulk_create(rows, batch_size=chunk, ignore_conflicts=True)
    ids = list(Contact.objects.values_list("id", flat=True))
    for start in range(0, len(ids), chunk):
        ListMembership.objects.bulk_create(
            [ListMembership(contact_id=cid, contact_list=first) for cid in ids[start:start + chunk]], batch_size=chunk)
    ListMembership.objects.bulk_create(
        [ListMembership(contact_id=cid, contact_list=second) for cid in ids[::50]], batch_size=chunk)
    return [first, second], len(ids)


def timed(label: str, call):
    started = time.perf_counter()
    result = call()
    print(f"{label}: {time.perf_counter() - started:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args()

    from campaigns import preflight
    from campaigns.models import Campaign
    from messaging.models import Sender

    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"database: {connection.vendor}")
        lists, n = timed(f"audience of {args.recipients:,} built", lambda: make_audience(args.recipients))
        with connection.cursor() as cursor:  # planner statistics, as a live database keeps them
            timed("ANALYZE", lambda: cursor.execute("ANALYZE"))
        sender = Sender.objects.create(name="bench", provider="plivo", address="+14155550100", mps=50,
                                       credentials={"auth_id": "MABENCH", "auth_token": "bench-token"})
        for label, body, window in (
            ("plain", "Our sale starts today. Reply STOP to opt out.", None),
            ("personalized", 'Hi {{ first_name|default:"there" }}, our sale starts today.', None),
            ("personalized + window", 'Hi {{ first_name|default:"there" }}, our sale starts today.',
             (clock(9), clock(21))),
        ):
            campaign = Campaign.objects.create(name=label, sender=sender, body=body, timezone="America/New_York",
                                               window_start=window[0] if window else None,
                                               window_end=window[1] if window else None)
            campaign.lists.set(lists)
            figures = timed(f"confirmation, {label}", lambda c=campaign: preflight.campaign_preflight(campaign=c))
            print(f"  {figures.recipients:,} recipients, {figures.opted_out:,} opted out, {figures.duplicates:,} "
                  f"duplicates, {figures.segments:,} segments, cost {figures.cost_total} {figures.currency}, "
                  f"{figures.outside_window:,} outside their window")
        timed("compose preview", lambda: preflight.compose_preview(
            body='Hi {{ first_name|default:"there" }}, our sale starts today.', list_ids=[lst.pk for lst in lists]))
        print(f"contacts: {n:,}")
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
