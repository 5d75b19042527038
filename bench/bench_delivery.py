"""Delivery benchmark: launch time of a large campaign and the send rate of real workers.

Not a test: it prints figures. It runs on a throwaway database made with Django's test-database machinery
(SQLite in a temporary VAR_DIR by default; PostgreSQL when DATABASE_URL says so) and on the configured broker:

    .venv/bin/python bench/bench_delivery.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/bench_delivery.py --recipients 100000 --send 5000 --latency-ms 150

Phases:
  1. launch: N contacts in one list, then ``campaign_launch`` (fan-out INSERT ... SELECT): seconds, peak RSS.
  2. send: a second campaign of M recipients sent by W worker processes against the emulator answering in
     L ms; messages per second from the first to the last acceptance at the emulator, per worker too.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "DATABASE_URL" not in os.environ:
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="bench-delivery-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A throwaway database, throwaway keys: the benchmark runs with DEBUG off, as production does, and its workers
# inherit them.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("CREDENTIALS_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import get_runner  # noqa: E402,F401

from tests.support import PYTHON, Process, database_url, delete_queue, free_port, http_json, wait_until


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_audience(n: int, name: str, prefix: str):
    from campaigns.models import Contact, ContactList, ListMembership

    contact_list = ContactList.objects.create(name=name)
    chunk = 10_000
    table = ListMembership._meta.db_table
    for start in range(0, n, chunk):
        Contact.objects.bulk_create(
            [Contact(phone=f"{prefix}{i:07d}", first_name=f"P{i}") for i in range(start, min(n, start + chunk))],
            batch_size=chunk,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (contact_id, contact_list_id, added_at) "
            f"SELECT id, %s, %s FROM {Contact._meta.db_table} WHERE phone LIKE %s",
            [contact_list.pk, django.utils.timezone.now(), f"{prefix}%"],
        )
    return contact_list


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000, help="launch phase size")
    parser.add_argument("--send", type=int, default=3000, help="send phase size")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2, help="processes per worker")
    parser.add_argument("--threads", type=int, default=32, help="SEND_THREADS per process")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    args = parser.parse_args()

    from django.conf import settings

    from campaigns.models import Campaign
    from campaigns.services import campaign_launch
    from config.celery import app, queue_for
    from messaging.models import Message, Sender

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    if "CELERY_QUEUE" not in os.environ:
        # The queue of the database the workers below are given (queues are named after the database): set
        # before anything is enqueued.
        app.conf.task_default_queue = queue_for(connection.settings_dict["NAME"])
    workers: list[Process] = []
    sandbox = None
    try:
        vendor = connection.vendor
        broker = settings.CELERY_BROKER_URL.split(":")[0]
        print(f"database: {vendor}   broker: {broker}")

        # ---- launch ----
        started = time.perf_counter()
        audience = make_audience(args.recipients, "bench launch", "+1646")
        built = time.perf_counter() - started
        sender = Sender.objects.create(name="bench", provider="plivo", address="+14155550100", mps=100_000,
                                       credentials={"auth_id": "MABENCH", "auth_token": "bench-token"})
        campaign = Campaign.objects.create(name="launch bench", sender=sender, body="Hi {{ first_name }}")
        campaign.lists.set([audience])
        rss_before = rss_mb()
        started = time.perf_counter()
        result = campaign_launch(campaign=campaign)
        launch_s = time.perf_counter() - started
        print(f"launch: {result.recipients:,} recipients in {launch_s:.2f} s "
              f"({result.recipients / launch_s:,.0f}/s; audience built in {built:.1f} s); "
              f"peak RSS {rss_mb():.0f} MB (before launch {rss_before:.0f} MB)")
        Campaign.objects.filter(pk=campaign.pk).update(status="canceled")  # not sent: the send phase is separate

        # ---- send ----
        port = free_port()
        sandbox = Process([PYTHON, "manage.py", "provider_sandbox", "--port", str(port), "--latency-ms",
                           str(args.latency_ms), "--callback-delay-ms", "200"], log=Path(tempfile.mktemp()))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _up(url), timeout=30, message="emulator")
        # Callbacks go nowhere here (they are not measured): the emulator does not retry them.
        http_json(f"{url}/sandbox/config", {"delivered": 1.0, "undelivered": 0.0, "failed": 0.0, "callback_retries": 0})
        web_port = free_port()
        env = {
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",  # nobody listens: callbacks are not measured
            "OUTBOUND_ALLOWED_HOSTS": f"127.0.0.1:{port}",  # the local emulator (outbound calls are public only)
            "SEND_THREADS": str(args.threads),
            "LOG_LEVEL": "WARNING",
        }
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            env["BROKER_FOLDER"] = str(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
        app.control.purge()
        for n in range(args.workers):
            workers.append(Process([PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "WARNING",
                                    "-n", f"bench{n}@%h", "--concurrency", str(args.concurrency),
                                    "--without-gossip", "--without-mingle"], env=env))
        time.sleep(3)
        sender.api_base_url = url
        sender.save()
        send_audience = make_audience(args.send, "bench send", "+1917")
        send_campaign = Campaign.objects.create(name="send bench", sender=sender, body="Hi {{ first_name }}")
        send_campaign.lists.set([send_audience])
        campaign_launch(campaign=send_campaign)
        from campaigns.services import campaign_dispatch

        def done():
            campaign_dispatch(campaign_id=send_campaign.pk)  # no beat here: keep the queue fed
            return http_json(f"{url}/sandbox/ledger")["accepted"] >= args.send

        wait_until(done, timeout=1800, interval=1.0, message="all messages accepted")
        times = sorted(r["at"] for r in http_json(f"{url}/sandbox/ledger?detail=1")["messages"])
        span = times[-1] - times[0]
        ledger = http_json(f"{url}/sandbox/ledger")
        rate = (len(times) - 1) / span if span else float("inf")
        print(f"send: {len(times):,} messages in {span:.1f} s = {rate:,.0f} msg/s with provider latency "
              f"{args.latency_ms:.0f} ms; {args.workers} worker(s) x {args.concurrency} processes x "
              f"{args.threads} threads = {rate / args.workers:,.0f} msg/s per worker; duplicates "
              f"{ledger['duplicates']}")
        sent = Message.objects.filter(campaign=send_campaign).exclude(status__in=("queued", "sending")).count()
        print(f"send: {sent:,} of {args.send:,} recorded past 'sending' in the database")
    finally:
        for worker in workers:
            worker.stop()
        if sandbox:
            sandbox.stop()
        if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            delete_queue(app, app.conf.task_default_queue)  # named after the throwaway database
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _up(url: str) -> bool:
    try:
        http_json(f"{url}/sandbox/ledger")
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
