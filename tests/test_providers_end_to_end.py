"""One campaign split across five senders, one per provider, all on the emulator, sent by real workers: every
recipient reaches delivered through its provider's own wire format, signatures and callbacks."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from messaging.models import Message
from messaging.providers import PROVIDERS
from messaging.selectors import campaign_counts, campaign_counts_exact
from tests.support import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_one_campaign_split_across_five_providers_delivers_end_to_end(
    workers, sandbox, make_sender, make_audience, make_campaign
):
    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    senders = [make_sender(provider, mps=50) for provider in sorted(PROVIDERS)]
    campaign = make_campaign(senders[0], [make_audience(40)], body="Hi {{ first_name }}, one campaign, five providers.")
    campaign.more_senders.set(senders[1:])
    workers.start(concurrency=2, beat=True)
    assert campaign_launch(campaign=campaign).recipients == 40
    per_sender = {p: Message.objects.filter(campaign=campaign, sender__provider=p).count() for p in PROVIDERS}
    assert per_sender == {provider: 8 for provider in PROVIDERS}  # split evenly, one sender per recipient

    try:
        wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=90, interval=0.5,
                   message="the campaign to complete")
    except AssertionError:
        for m in Message.objects.filter(campaign=campaign).exclude(status="delivered")[:10]:
            print(m.sender.provider, m.to, m.status, m.error_code, m.error_message)
        print(workers.logs()[-8000:])
        raise
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 40
    ledger = sandbox.ledger()
    assert ledger["duplicates"] == 0
    for provider in PROVIDERS:
        assert ledger[f"accepted_{provider}"] == 8, provider
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)
    assert not Message.objects.filter(campaign=campaign, provider_message_id="").exists()
