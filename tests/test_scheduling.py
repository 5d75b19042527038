"""Scheduled campaigns start on time from the database-driven tick, once, even with two beats running and
every process restarted around the scheduled time."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_schedule
from messaging.models import Message
from tests.support import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_scheduled_campaign_starts_once_with_two_beats_and_restarts(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    campaign = make_campaign(make_sender("plivo", mps=100), [make_audience(30)])
    due = timezone.now() + timedelta(seconds=6)
    campaign_schedule(campaign=campaign, at=due)

    first = [workers.start(beat=True), workers.start(beat=True)]  # two beats: a misconfiguration we survive
    time.sleep(2)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"  # not before its time
    for process in first:
        process.kill()  # everything goes down before the scheduled time...
    while timezone.now() < due + timedelta(seconds=1):
        time.sleep(0.2)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"  # ...and nothing ran it meanwhile

    workers.start(beat=True)  # ...and comes back after it
    workers.start(beat=True)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=60, interval=0.5,
               message="the scheduled campaign to run and complete")
    campaign.refresh_from_db()
    assert campaign.launched_at >= due
    assert Message.objects.filter(campaign=campaign).count() == 30
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 30
    ledger = sandbox.ledger()
    assert ledger["accepted"] == 30 and ledger["duplicates"] == 0


def test_two_beats_running_through_the_due_times_launch_each_campaign_once(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    """Both beats are up when the campaigns come due (each sends its own tick every second): every campaign
    starts once (one dispatch), and its recipients each get one message."""
    from messaging.models import Dispatch

    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    sender = make_sender("plivo", mps=200)
    campaigns = []
    for n in range(4):
        campaign = make_campaign(sender, [make_audience(25, start=100 * n)], name=f"Scheduled {n}")
        campaign_schedule(campaign=campaign, at=timezone.now() + timedelta(seconds=3 + n))
        campaigns.append(campaign)
    workers.start(beat=True)
    workers.start(beat=True)
    wait_until(lambda: all(Campaign.objects.get(pk=c.pk).status == "completed" for c in campaigns), timeout=90,
               interval=0.5, message="every scheduled campaign to run and complete")
    for campaign in campaigns:
        campaign.refresh_from_db()
        assert campaign.launched_at >= campaign.scheduled_at
        assert Message.objects.filter(campaign=campaign).count() == 25
        assert Dispatch.objects.filter(campaign_id=campaign.pk).count() == 1
    ledger = sandbox.ledger(detail=True)
    assert ledger["accepted"] == 100 and ledger["duplicates"] == 0
    assert len({r["to"] for r in ledger["messages"]}) == 100
