"""Campaign controls and provider trouble with real worker processes, the real broker and the emulator:
pause, resume, cancel, resend to failed, test send, failover to a backup sender, 5xx bursts and a provider
that rate-limits harder than the sender's configured pace. Every test ends with the books checked at the
emulator's ledger: nobody got a message twice, nobody was lost."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from campaigns.models import Campaign
from campaigns.services import (
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resend_failed,
    campaign_resume,
    campaign_test_send,
)
from messaging.models import FINAL_STATUSES, Message
from messaging.selectors import campaign_counts, campaign_counts_exact
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAST_REPAIR = {"DISPATCH_STALE_SECONDS": "4", "RECONCILE_AFTER_SECONDS": "8", "SWEEP_SECONDS": "1"}
ALWAYS_DELIVERED = {"delivered": 1.0, "undelivered": 0.0, "failed": 0.0}


def _status(campaign) -> str:
    return Campaign.objects.get(pk=campaign.pk).status


def _wait_completed(campaign, workers, timeout=90) -> None:
    try:
        wait_until(lambda: _status(campaign) == "completed", timeout=timeout, interval=0.5,
                   message="the campaign to complete")
    except AssertionError:
        print(workers.logs()[-6000:])
        raise


def _books(campaign, sandbox) -> dict:
    ledger = sandbox.ledger(detail=True)
    assert ledger["duplicates"] == 0, {k: v for k, v in ledger.items() if k != "messages"}
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)
    return ledger


def _under_way(workers, sandbox, make_sender, make_audience, make_campaign):
    """A 60-recipient campaign at 10 messages/second, launched, with its first messages accepted."""
    sandbox.config(latency_ms=5, **ALWAYS_DELIVERED)
    campaign = make_campaign(make_sender("plivo", mps=10), [make_audience(60)])
    workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    campaign_launch(campaign=campaign)
    wait_until(lambda: sandbox.ledger()["accepted"] >= 10, timeout=60, interval=0.05, message="sending under way")
    return campaign


def _in_flight_done(campaign) -> None:
    wait_until(lambda: not Message.objects.filter(campaign=campaign, status="sending").exists(), timeout=15,
               message="in-flight sends to finish")


def test_pause_stops_sending_and_resume_sends_only_what_was_left(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    campaign = _under_way(workers, sandbox, make_sender, make_audience, make_campaign)

    campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk))
    # Calls already started finish; none starts later than one gate refresh after the pause.
    _in_flight_done(campaign)
    at_pause = sandbox.ledger()["accepted"]
    time.sleep(3)
    assert sandbox.ledger()["accepted"] == at_pause, "messages went out while the campaign was paused"
    assert at_pause < 60
    assert _status(campaign) == "paused"

    campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk))
    _wait_completed(campaign, workers)
    ledger = _books(campaign, sandbox)
    assert ledger["accepted"] == 60
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 60


def test_cancel_stops_sending_and_cancels_every_waiting_message(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    campaign = _under_way(workers, sandbox, make_sender, make_audience, make_campaign)

    campaign_cancel(campaign=Campaign.objects.get(pk=campaign.pk))
    _in_flight_done(campaign)
    wait_until(lambda: not Message.objects.filter(campaign=campaign).exclude(status__in=FINAL_STATUSES).exists(),
               timeout=30, message="every message final")
    accepted = sandbox.ledger()["accepted"]
    time.sleep(2)
    assert sandbox.ledger()["accepted"] == accepted < 60
    assert _status(campaign) == "canceled"
    assert Message.objects.filter(campaign=campaign, status="canceled").count() == 60 - accepted
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == accepted
    _books(campaign, sandbox)


def test_resend_to_failed_reaches_only_the_recipients_whose_message_failed(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(latency_ms=5, outcomes_by_suffix={"5550003": "failed", "5550007": "undelivered"},
                   **ALWAYS_DELIVERED)
    campaign = make_campaign(make_sender("plivo", mps=50), [make_audience(20)])
    workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    campaign_launch(campaign=campaign)
    _wait_completed(campaign, workers)
    assert Message.objects.filter(campaign=campaign, status__in=("failed", "undelivered")).count() == 2

    sandbox.config(outcomes_by_suffix={})  # the carrier problem is over
    assert campaign_resend_failed(campaign=Campaign.objects.get(pk=campaign.pk)) == 2
    _wait_completed(campaign, workers)
    assert campaign_resend_failed(campaign=Campaign.objects.get(pk=campaign.pk)) == 0  # nobody left to retry

    ledger = _books(campaign, sandbox)
    per_number = Counter(m["to"] for m in ledger["messages"])
    assert ledger["accepted"] == 22
    assert {n for n, k in per_number.items() if k == 2} == {"12125550003", "12125550007"}
    assert max(per_number.values()) == 2
    second = Message.objects.filter(campaign=campaign, round=1)
    assert sorted(second.values_list("to", flat=True)) == ["+12125550003", "+12125550007"]
    assert set(second.values_list("status", flat=True)) == {"delivered"}


def test_a_test_send_reaches_one_number_outside_the_campaigns_counts(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(**ALWAYS_DELIVERED)
    campaign = make_campaign(make_sender("plivo"), [make_audience(5)], body="Hi {{ first_name|default:'there' }}")
    workers.start(concurrency=1, beat=True, extra_env=FAST_REPAIR)
    message = campaign_test_send(campaign=campaign, phone="+1 212 555 0199")
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", timeout=30,
               message="the test message delivered")
    assert Message.objects.get(pk=message.pk).body == "Hi there"
    assert _status(campaign) == "draft" and not Message.objects.filter(campaign=campaign).exists()
    assert sandbox.ledger()["accepted"] == 1


def test_a_provider_that_is_down_fails_over_to_the_backup_sender(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(latency_ms=5, **ALWAYS_DELIVERED)
    down = make_sender("plivo", name="Primary (down)", api_base_url=f"http://127.0.0.1:{free_port()}", mps=50)
    backup = make_sender("plivo", name="Backup", mps=50)
    campaign = make_campaign(down, [make_audience(20)], backup_sender=backup)
    workers.start(concurrency=2, beat=True,
                  extra_env={**FAST_REPAIR, "CIRCUIT_FAILURES": "3", "CIRCUIT_OPEN_SECONDS": "60"})
    campaign_launch(campaign=campaign)
    _wait_completed(campaign, workers)

    ledger = _books(campaign, sandbox)
    assert ledger["accepted"] == 20
    assert all(m["sender"].endswith(backup.address.lstrip("+")) for m in ledger["messages"])
    assert set(Message.objects.filter(campaign=campaign).values_list("sender_id", flat=True)) == {backup.pk}
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 20


def test_a_burst_of_server_errors_delays_messages_without_failing_or_doubling_them(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(latency_ms=5, error_5xx=1.0, **ALWAYS_DELIVERED)
    campaign = make_campaign(make_sender("plivo", mps=20), [make_audience(30)])
    workers.start(concurrency=2, beat=True,
                  extra_env={**FAST_REPAIR, "CIRCUIT_FAILURES": "5", "CIRCUIT_OPEN_SECONDS": "2"})
    campaign_launch(campaign=campaign)
    wait_until(lambda: sandbox.ledger().get("rejected_5xx", 0) >= 5, timeout=30, interval=0.05, message="the outage")
    time.sleep(2)
    sandbox.config(error_5xx=0.0)  # the provider recovers
    _wait_completed(campaign, workers)

    ledger = _books(campaign, sandbox)
    assert ledger["accepted"] == 30
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 30


def test_a_provider_stricter_than_the_configured_pace_slows_the_sender_instead_of_failing(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(latency_ms=5, sender_mps=5, **ALWAYS_DELIVERED)
    campaign = make_campaign(make_sender("plivo", mps=20), [make_audience(40)])  # configured 4x too fast
    workers.start(concurrency=2, beat=True, extra_env=FAST_REPAIR)
    workers.start(concurrency=2, extra_env=FAST_REPAIR)
    campaign_launch(campaign=campaign)
    _wait_completed(campaign, workers)

    ledger = _books(campaign, sandbox)
    assert ledger.get("rejected_429_rate", 0) > 0  # the provider did push back...
    logs = "".join(p.log_path.read_text(errors="replace") for p in workers.processes)
    lowered = [int(n) for n in re.findall(r"pace lowered to (\d+)% of the configured one", logs)]
    assert lowered and min(lowered) < 100  # ...and the sender's pace followed
    assert ledger["accepted"] == 40  # ...and every message still went out, once
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 40
