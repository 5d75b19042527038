"""The whole path on real parts: a campaign launched, sent by a real Celery worker process over HTTP to the
emulator, status callbacks back through the webhook, every recipient final."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from messaging.models import Message
from messaging.selectors import campaign_counts, campaign_counts_exact
from tests.support import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_campaign_reaches_delivered_through_a_real_worker(workers, sandbox, make_sender, make_audience, make_campaign):
    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    sender = make_sender("plivo")
    audience = make_audience(25)
    campaign = make_campaign(sender, [audience], body="Hello {{ first_name }}!")
    workers.start(beat=True)

    result = campaign_launch(campaign=campaign)
    assert result.recipients == 25

    def all_delivered():
        return Message.objects.filter(campaign=campaign, status="delivered").count() == 25

    try:
        wait_until(all_delivered, timeout=60, message="every recipient delivered")
        wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=30,
                   message="the campaign to complete")
    except AssertionError:
        print(workers.logs())
        raise
    ledger = sandbox.ledger()
    assert ledger["accepted"] == 25 and ledger["duplicates"] == 0
    message = Message.objects.filter(campaign=campaign).select_related("contact").first()
    assert message.body == f"Hello {message.contact.first_name}!"
    assert message.sent_at and message.delivered_at and message.provider_message_id
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)
