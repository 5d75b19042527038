"""One audience split across five senders, one per provider, all on the emulator, sent by a real worker:
every recipient reaches delivered through each provider's own wire format, signatures and callbacks."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from messaging.models import Message
from messaging.providers import PROVIDERS
from messaging.selectors import campaign_counts, campaign_counts_exact
from tests.support import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_five_providers_deliver_end_to_end(workers, sandbox, make_sender, make_audience, make_campaign):
    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    campaigns = []
    for n, provider in enumerate(sorted(PROVIDERS)):
        sender = make_sender(provider, mps=50)
        audience = make_audience(8, start=n * 100)
        campaigns.append(make_campaign(sender, [audience], name=f"{provider} part",
                                       body="Hi {{ first_name }}, part of the split audience."))
    workers.start(concurrency=2, beat=True)
    for campaign in campaigns:
        assert campaign_launch(campaign=campaign).recipients == 8

    def delivered() -> int:
        return Message.objects.filter(campaign__in=campaigns, status="delivered").count()

    try:
        wait_until(lambda: delivered() == 40, timeout=90, interval=0.5, message="all 40 recipients delivered")
        wait_until(lambda: not Campaign.objects.filter(pk__in=[c.pk for c in campaigns])
                   .exclude(status="completed").exists(), timeout=30, message="every part completed")
    except AssertionError:
        for m in Message.objects.filter(campaign__in=campaigns).exclude(status="delivered")[:10]:
            print(m.sender.provider, m.to, m.status, m.error_code, m.error_message)
        print(workers.logs()[-8000:])
        raise
    ledger = sandbox.ledger()
    assert ledger["duplicates"] == 0
    for provider in PROVIDERS:
        assert ledger[f"accepted_{provider}"] == 8, provider
    for campaign in campaigns:
        assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)
        assert Message.objects.filter(campaign=campaign).exclude(provider_message_id="").count() == 8
