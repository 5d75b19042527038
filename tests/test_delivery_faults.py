"""Exactly once under faults, with real worker processes, the real broker and the emulator.

Each test counts at the emulator's ledger: every message accepted exactly once (no duplicates, none lost),
whatever was killed or refused on the way."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from messaging.models import FINAL_STATUSES, Message
from messaging.selectors import campaign_counts, campaign_counts_exact
from tests.support import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAST_REPAIR = {"DISPATCH_STALE_SECONDS": "4", "RECONCILE_AFTER_SECONDS": "8", "SWEEP_SECONDS": "1"}


def _all_final(campaign) -> bool:
    return not Message.objects.filter(campaign=campaign).exclude(status__in=FINAL_STATUSES).exists()


def _check_books(campaign, sandbox, expected: int) -> None:
    ledger = sandbox.ledger()
    assert ledger["duplicates"] == 0, ledger
    assert ledger["distinct"] == expected, ledger
    assert Message.objects.filter(campaign=campaign).count() == expected
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)


def test_worker_killed_mid_campaign_loses_nothing_and_sends_nothing_twice(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(latency_ms=40, delivered=1.0, undelivered=0.0, failed=0.0)
    sender = make_sender("plivo", mps=30)
    campaign = make_campaign(sender, [make_audience(300)])
    first = workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    campaign_launch(campaign=campaign)

    wait_until(lambda: sandbox.ledger()["accepted"] >= 60, timeout=60, interval=0.05,
               message="sending to be under way")
    first.kill()  # SIGKILL the worker, its pool and its beat mid-batch: no acks, no cleanup
    accepted_at_kill = sandbox.ledger()["accepted"]
    assert accepted_at_kill < 300, "the campaign finished before the kill; the test proves nothing"

    workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    try:
        wait_until(lambda: _all_final(campaign), timeout=180, interval=0.5, message="every message final")
        wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=30,
                   message="the campaign to complete")
    except AssertionError:
        print(workers.logs()[-6000:])
        raise
    _check_books(campaign, sandbox, 300)
    assert sandbox.ledger()["accepted"] == 300
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 300


def test_server_errors_rate_limits_ambiguous_answers_and_messy_callbacks(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(
        latency_ms=10, error_5xx=0.1, rate_429=0.1, ambiguous=0.05, duplicate_callbacks=0.2,
        reorder_callbacks=0.2, delivered=0.8, undelivered=0.1, failed=0.1, seed=7,
    )
    sender = make_sender("plivo", mps=200)
    campaign = make_campaign(sender, [make_audience(250)])
    workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    workers.start(concurrency=2, extra_env=FAST_REPAIR)
    campaign_launch(campaign=campaign)
    try:
        wait_until(lambda: _all_final(campaign), timeout=180, interval=0.5, message="every message final")
        wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=30,
                   message="the campaign to complete")
    except AssertionError:
        print(workers.logs()[-6000:])
        raise
    ledger = sandbox.ledger()
    assert ledger["rejected_5xx"] > 0 and ledger["rejected_429"] > 0 and ledger.get("ambiguous", 0) > 0, ledger
    _check_books(campaign, sandbox, 250)
    # Every message was accepted by the provider exactly once, whatever it answered on the way.
    assert ledger["accepted"] == 250
    statuses = set(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert statuses <= {"delivered", "undelivered", "failed"}


def test_pacing_holds_across_workers_without_leaving_429s_unhandled(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    mps = 5.0
    sandbox.config(latency_ms=5, sender_mps=mps, delivered=1.0, undelivered=0.0, failed=0.0)
    sender = make_sender("plivo", mps=mps)
    campaign = make_campaign(sender, [make_audience(40)])
    workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    workers.start(concurrency=2, extra_env=FAST_REPAIR)
    campaign_launch(campaign=campaign)
    try:
        wait_until(lambda: _all_final(campaign), timeout=60, interval=0.5, message="every message final")
    except AssertionError:
        for m in Message.objects.filter(campaign=campaign).exclude(status__in=FINAL_STATUSES):
            print("STUCK", m.pk, m.status, m.attempts, m.next_attempt_at, m.dispatched_at, m.claimed_at, m.error_message)
        print(Campaign.objects.get(pk=campaign.pk).status, sandbox.ledger())
        raise
    ledger = sandbox.ledger(detail=True)
    records = sorted(r["at"] for r in ledger["messages"])
    assert len(records) == 40, {k: v for k, v in ledger.items() if k != "messages"}
    rate = (len(records) - 1) / (records[-1] - records[0])
    print(f"paced at {rate:.2f} msg/s for a limit of {mps}")
    assert abs(rate - mps) / mps <= 0.10, f"sent at {rate:.2f} msg/s for a limit of {mps}"
    # The emulator enforces the same limit (one interval of tolerance for network jitter): had the workers
    # together gone faster than the sender's pace at any moment, it would have answered 429.
    assert ledger.get("rejected_429", 0) == 0, {k: v for k, v in ledger.items() if k != "messages"}
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 40
    _check_books(campaign, sandbox, 40)
