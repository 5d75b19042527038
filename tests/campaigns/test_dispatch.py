"""Dispatch: a campaign keeps about DISPATCH_HORIZON_SECONDS of sending enqueued, re-enqueues lost work and
completes when nothing is pending. Enqueued work is seen in ``dispatched_at``; no worker runs here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_dispatch, campaign_launch, campaign_pause
from messaging.models import Message
from messaging.selectors import campaign_counts, campaign_counts_exact
from messaging.services import DISPATCH_HORIZON_SECONDS, messages_move

pytestmark = pytest.mark.django_db
S = Message.Status


@pytest.fixture(autouse=True)
def _engine(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.DISPATCH_STALE_SECONDS = 120


@pytest.fixture
def campaign(make_sender, make_audience, make_campaign):
    """A launched campaign of 50 recipients on a 1 message/second sender: a 30-message window."""
    campaign = make_campaign(make_sender("plivo", mps=1.0), [make_audience(50)])
    campaign_launch(campaign=campaign)
    return campaign


def dispatched(campaign) -> int:
    return Message.objects.filter(campaign=campaign, dispatched_at__isnull=False).count()


def test_dispatch_enqueues_at_most_the_window(campaign):
    window = int(1.0 * DISPATCH_HORIZON_SECONDS)
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": window}
    assert dispatched(campaign) == window
    first = set(Message.objects.filter(campaign=campaign, dispatched_at__isnull=False).values_list("id", flat=True))
    assert first == set(Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)[:window])

    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 0}  # the window is still in flight
    Message.objects.filter(pk__in=list(first)[:10]).update(status=S.SENT)
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 10}  # topped up, not doubled
    assert dispatched(campaign) == window + 10


def test_messages_being_sent_count_as_in_flight(campaign):
    window = int(1.0 * DISPATCH_HORIZON_SECONDS)
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": window}
    first = list(Message.objects.filter(campaign=campaign, dispatched_at__isnull=False).values_list("id", flat=True))
    Message.objects.filter(pk__in=first[:10]).update(status=S.SENDING)  # claimed by a worker, calls under way
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 0}
    Message.objects.filter(pk__in=first[:10]).update(status=S.SENT)
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 10}


def test_work_enqueued_long_ago_but_never_claimed_is_enqueued_again(campaign, settings):
    campaign_dispatch(campaign_id=campaign.pk)
    long_ago = timezone.now() - timedelta(seconds=settings.DISPATCH_STALE_SECONDS + 5)
    lost = list(Message.objects.filter(campaign=campaign, dispatched_at__isnull=False).order_by("id")
                .values_list("id", flat=True)[:5])
    Message.objects.filter(pk__in=lost).update(dispatched_at=long_ago)

    before = timezone.now()
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 5}
    again = Message.objects.filter(campaign=campaign, dispatched_at__gte=before)
    assert sorted(again.values_list("id", flat=True)) == sorted(lost)


def test_retries_wait_for_their_time(campaign):
    later = timezone.now() + timedelta(minutes=5)
    ids = list(Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    Message.objects.filter(pk__in=ids[:40]).update(status=S.SENT)
    Message.objects.filter(pk__in=ids[40:45]).update(status=S.ERRORED, next_attempt_at=later)

    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 5}
    assert set(Message.objects.filter(campaign=campaign, dispatched_at__isnull=False).values_list("id", flat=True)) \
        == set(ids[45:])


def test_a_paused_campaign_is_not_dispatched(campaign):
    campaign_pause(campaign=campaign)
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 0}
    assert dispatched(campaign) == 0


def test_the_campaign_completes_when_every_message_is_final(campaign, settings):
    messages = Message.objects.filter(campaign=campaign)
    ids = list(messages.order_by("id").values_list("id", flat=True))
    messages_move(messages.filter(pk__in=ids[:48]), S.DELIVERED, from_statuses=(S.QUEUED,))
    messages_move(messages.filter(pk=ids[48]), S.SENT, from_statuses=(S.QUEUED,),
               fields={"sent_at": timezone.now()})  # waiting for its receipt
    messages_move(messages.filter(pk=ids[49]), S.UNCONFIRMED, from_statuses=(S.QUEUED,))
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)

    campaign_dispatch(campaign_id=campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"  # one outcome still unknown

    messages_move(messages.filter(pk=ids[49]), S.FAILED, from_statuses=(S.UNCONFIRMED,))
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 0}
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"  # a delivery receipt is still expected

    messages_move(messages.filter(pk=ids[48]), S.DELIVERED, from_statuses=(S.SENT,))
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 0}
    campaign.refresh_from_db()
    assert campaign.status == "completed" and campaign.completed_at is not None
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)


def test_a_receipt_that_never_comes_stops_holding_the_campaign_once_looked_up(campaign, settings):
    messages = Message.objects.filter(campaign=campaign)
    ids = list(messages.order_by("id").values_list("id", flat=True))
    messages_move(messages.filter(pk__in=ids[:49]), S.DELIVERED, from_statuses=(S.QUEUED,))
    long_ago = timezone.now() - timedelta(seconds=settings.FINAL_RECONCILE_AFTER_SECONDS + 60)
    messages_move(messages.filter(pk=ids[49]), S.SENT, from_statuses=(S.QUEUED,), fields={"sent_at": long_ago})

    campaign_dispatch(campaign_id=campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"  # the provider has not been asked yet

    messages.filter(pk=ids[49]).update(checked_at=timezone.now())  # the sweep asked; still no receipt
    campaign_dispatch(campaign_id=campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
