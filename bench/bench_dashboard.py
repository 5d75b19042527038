"""Dashboard benchmark: how long the pages staff watch take with a million and ten million messages stored.

Not a test: it prints figures. It runs on a throwaway database made with Django's test-database machinery
(SQLite in a temporary VAR_DIR by default; PostgreSQL when DATABASE_URL says so, the production setup):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_dashboard.py
    .venv/bin/python bench/bench_dashboard.py --sizes 100000,1000000 --requests 30

Stored: one long campaign that holds almost every message (sent over days, about 1 in 20 failed with a spread
of provider codes, some moved to a backup sender, some resent), a 10,000-recipient campaign beside it, the
per-minute and per-sender figures such a campaign leaves (``CampaignMinute``, ``CampaignTally``), a week of
per-hour figures for five senders (``SenderHour``) and their callbacks (``CallbackTally``), written over all
shards and then folded as the sweep folds past buckets. The messages are written with one INSERT ... SELECT per
chunk, then the tables are analyzed, as a live database's are.

Timed, each ``--requests`` times through the whole Django stack (a logged-in superuser, DEBUG off): the big
campaign's page and its live figures (the JSON its page polls), the small campaign's page, the recipients
filtered by status and cause, the admin home's overview and a sender's page. Printed: p50 and p95 per page
and size (target: p95 at most 100 ms).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "DATABASE_URL" not in os.environ:
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="bench-dashboard-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("CREDENTIALS_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PER_SECOND = 100  # the big campaign's pace: ten million messages take 28 hours
# (status, share, cause, code) of the big campaign's messages; failures spread over documented Plivo codes.
MIX = [("delivered", 0.90, "", ""), ("sent", 0.03, "", ""), ("undelivered", 0.02, "carrier_filtered", "30"),
       ("undelivered", 0.01, "invalid_number", "50"), ("failed", 0.01, "account", "40"),
       ("failed", 0.01, "content", "110"), ("undelivered", 0.01, "unreachable", "20"), ("queued", 0.01, "", "")]


def series(first: int, last: int) -> str:
    """A FROM clause of integers x from ``first`` to ``last``."""
    if connection.vendor == "postgresql":
        return f"generate_series({first}, {last}) AS g(x)"
    return (f"(WITH RECURSIVE g(x) AS (SELECT {first} UNION ALL SELECT x + 1 FROM g WHERE x < {last}) "
            "SELECT x FROM g) g")


def messages_insert(campaign_id: int, sender_ids: list[int], first: int, last: int, *, chunk: int = 500_000) -> None:
    """Messages ``first`` to ``last`` of a campaign, statuses as MIX, one INSERT ... SELECT per chunk."""
    from messaging.models import Message

    table = Message._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(START)
    cases, bound = [], 0
    for status, share, cause, code in MIX:
        bound += int(share * 1000)
        cases.append((bound, status, cause, code))
    status = "CASE " + " ".join(f"WHEN x %% 1000 < {b} THEN '{s}'" for b, s, _c, _k in cases) + " ELSE 'delivered' END"
    cause = "CASE " + " ".join(f"WHEN x %% 1000 < {b} THEN '{c}'" for b, _s, c, _k in cases) + " ELSE '' END"
    code = "CASE " + " ".join(f"WHEN x %% 1000 < {b} THEN '{k}'" for b, _s, _c, k in cases) + " ELSE '' END"
    senders = "CASE " + " ".join(f"WHEN x %% {len(sender_ids)} = {i} THEN {pk}" for i, pk in enumerate(sender_ids)) \
        + f" ELSE {sender_ids[0]} END"
    to = "'+1' || CAST(2000000000 + x AS TEXT)" if connection.vendor == "postgresql" else "'+1' || (2000000000 + x)"
    for start in range(first, last + 1, chunk):
        end = min(last, start + chunk - 1)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {table} (sender_id, campaign_id, round, "to", body, media_urls, direction, status,
                        provider_message_id, provider_status, error_code, error_message, error_cause, kind, keyword,
                        attempts, created_at, updated_at, sent_at)
                    SELECT {senders}, %s, 0, {to}, 'Our sale starts today. Reply STOP to opt out.', '[]',
                        'outbound', {status}, 'pm-' || x, '', {code}, '', {cause}, 'message', '', 1, %s, %s, %s
                    FROM {series(start, end)}""",
                [campaign_id, stamp, stamp, stamp],
            )


def figures_insert(campaign, senders, messages: int) -> None:
    """The per-minute and per-sender figures ``messages`` leave (as ``services.tallies`` writes them, in every
    shard), for the campaign and its senders."""
    from messaging.models import CampaignCounter, CampaignMinute, CampaignTally

    shards = CampaignCounter.SHARDS
    CampaignMinute.objects.filter(campaign=campaign).delete()
    CampaignTally.objects.filter(campaign=campaign).delete()
    CampaignCounter.objects.filter(campaign=campaign).delete()
    minutes = max(1, messages // (PER_SECOND * 60))
    per_minute = messages / minutes
    rows = []
    for m in range(minutes):
        at = START + timedelta(minutes=m)
        for status, share in (("sent", 0.98), ("delivered", 0.90), ("undelivered", 0.05), ("failed", 0.02)):
            for shard in range(shards):
                rows.append(CampaignMinute(campaign=campaign, minute=at, status=status, shard=shard,
                                           count=int(per_minute * share / shards)))
        if len(rows) > 20_000:
            CampaignMinute.objects.bulk_create(rows, batch_size=5000)
            rows = []
    CampaignMinute.objects.bulk_create(rows, batch_size=5000)
    tallies, counters = [], []
    for sender in senders:
        for status, share, cause, code in MIX:
            for shard in range(shards):
                n = int(messages * share / len(senders) / shards)
                if status in ("undelivered", "failed", "delivered"):
                    tallies.append(CampaignTally(campaign=campaign, sender=sender, event=status, cause=cause,
                                                 code=code, shard=shard, count=n))
                counters.append(CampaignCounter(campaign=campaign, status=status, shard=shard, count=n))
        for event, cause in (("failover", "unreachable"), ("superseded", "failed"), ("reply", ""), ("replier", ""),
                             ("help", ""), ("opt_out", "")):
            tallies.append(CampaignTally(campaign=campaign, sender=sender, event=event, cause=cause,
                                         count=messages // 1000))
    merged: dict = {}
    for row in counters:
        key = (row.status, row.shard)
        if key in merged:
            merged[key].count += row.count
        else:
            merged[key] = row
    CampaignCounter.objects.bulk_create(merged.values())
    merged = {}
    for row in tallies:
        key = (row.sender_id, row.event, row.cause, row.code, row.shard)
        if key in merged:
            merged[key].count += row.count
        else:
            merged[key] = row
    CampaignTally.objects.bulk_create(merged.values(), batch_size=5000)


def senders_week(senders) -> None:
    from messaging.models import CallbackTally, CampaignCounter, SenderHour

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows, callbacks = [], []
    for sender in senders:
        for h in range(24 * 7):
            hour = now - timedelta(hours=h)
            for status, n in (("sent", 30_000), ("delivered", 28_000), ("undelivered", 1_000), ("failed", 500)):
                for shard in range(CampaignCounter.SHARDS):
                    rows.append(SenderHour(sender=sender, hour=hour, status=status, shard=shard, count=n // 8))
            callbacks.append(CallbackTally(sender=sender, hour=hour, accepted=True, count=29_000, last_at=hour))
            callbacks.append(CallbackTally(sender=sender, hour=hour, accepted=False, count=3, last_at=hour,
                                           reason="403 signature refused: X-Plivo-Signature-V3 does not match"))
    SenderHour.objects.bulk_create(rows, batch_size=5000)
    CallbackTally.objects.bulk_create(callbacks, batch_size=5000)


def timings(client, url: str, requests: int) -> tuple[float, float]:
    for _ in range(2):  # warm: templates compiled, connections open
        response = client.get(url, secure=True)
        assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, secure=True)
        if hasattr(response, "streaming_content"):
            for _chunk in response.streaming_content:
                pass
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(round(0.95 * len(samples))) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000", help="messages stored, comma-separated, ascending")
    parser.add_argument("--requests", type=int, default=40, help="requests per page and size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from campaigns.models import Campaign
    from messaging.models import Sender
    from messaging.services.tallies import tallies_fold

    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"database: {connection.vendor}; {args.requests} requests per page")
        senders = [Sender.objects.create(name=f"bench {p}", provider=p, address=f"+1415555010{i}", mps=PER_SECOND,
                                         credentials={})
                   for i, p in enumerate(["plivo", "bandwidth", "cloudvno", "sendblue", "fonedynamics"])]
        big = Campaign.objects.create(name="big", sender=senders[0], backup_sender=senders[1], status="sending",
                                      body="Our sale starts today.", launched_at=START)
        small = Campaign.objects.create(name="small", sender=senders[2], status="completed", body="Hello.",
                                        launched_at=START)
        Campaign.objects.bulk_create([Campaign(name=f"scheduled {i}", sender=senders[3], status="scheduled",
                                               scheduled_at=datetime.now(UTC) + timedelta(hours=i + 1))
                                      for i in range(5)])
        messages_insert(small.pk, [senders[2].pk], 1, 10_000)
        figures_insert(small, [senders[2]], 10_000)
        Campaign.objects.filter(pk=small.pk).update(recipient_count=10_000)
        senders_week(senders)
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "a-long-password-1")
        client = Client()
        client.force_login(user)
        stored = 10_000
        pages = {
            "campaign page (big)": reverse("admin:campaigns_campaign_change", args=[big.pk]),
            "live figures (big)": reverse("campaigns:campaign_stats", args=[big.pk]),
            "campaign page (small, beside big)": reverse("admin:campaigns_campaign_change", args=[small.pk]),
            "recipients failed (big)": reverse("admin:campaigns_campaign_change", args=[big.pk])
            + "?recipient_status=failed",
            "admin home (overview)": reverse("admin:index"),
            "sender page": reverse("admin:messaging_sender_change", args=[senders[0].pk]),
        }
        results = {}
        for size in sizes:
            first = stored + 1
            last = size
            started = time.perf_counter()
            messages_insert(big.pk, [s.pk for s in senders[:2]], first, last)
            figures_insert(big, senders[:2], last - 10_000)
            Campaign.objects.filter(pk=big.pk).update(recipient_count=last - 10_000)
            folded = tallies_fold()  # as the sweep does, once a bucket's minute or hour is over
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            stored = last
            print(f"{size:,} messages stored ({time.perf_counter() - started:.0f} s to write; {folded:,} figure rows "
                  "folded)")
            for label, url in pages.items():
                p50, p95 = timings(client, url, args.requests)
                results[(label, size)] = (p50, p95)
                print(f"  {label:<36} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        print("\nsummary (p95, ms): " + ", ".join(
            f"{label} " + "/".join(f"{results[(label, s)][1]:.0f}" for s in sizes) for label in pages))
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
