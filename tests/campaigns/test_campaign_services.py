"""Campaign services: launch (fan-out), counters, controls, resend to failed, test send, scheduling."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Contact, ListMembership
from campaigns.services import (
    CampaignError,
    campaign_cancel,
    campaign_checks,
    campaign_launch,
    campaign_pause,
    campaign_resend_failed,
    campaign_resume,
    campaign_schedule,
    campaign_test_send,
    campaigns_launch_due,
)
from messaging.models import Message, Suppression
from messaging.selectors import campaign_counts, campaign_counts_exact
from messaging.services import dispatches_cancel_stragglers, message_send
from tests.messaging.providers import test_plivo
from tests.support import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("engine")]
S = Message.Status
plivo = test_plivo.TestPlivoContract()  # its signed-callback helpers


def exact(campaign) -> dict:
    counts = campaign_counts(campaign_id=campaign.pk)
    assert counts == campaign_counts_exact(campaign_id=campaign.pk)
    return counts


def send_all(campaign) -> list[str]:
    ids = Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)
    return [message_send(message_id=mid) for mid in ids]


def receipt(client, message, raw_status, error_code=""):
    message.refresh_from_db()
    response = plivo.post_callback(client, message.sender, provider_message_id=message.provider_message_id,
                                   raw_status=raw_status, error_code=error_code)
    assert response.status_code == 200


# ---- launch --------------------------------------------------------------------------------------


def test_launch_sends_once_per_phone_across_lists_and_skips_opted_out(make_sender, make_audience, make_campaign):
    first = make_audience(6, prefix="+1212555")
    second = make_audience(3, prefix="+1646555")
    for contact in Contact.objects.filter(phone__in=["+12125550000", "+12125550001"]):  # in both lists
        ListMembership.objects.create(contact=contact, contact_list=second)
    Contact.objects.filter(phone="+12125550002").update(opted_out=True)
    Suppression.objects.create(phone="+16465550000", opted_out=True)
    Suppression.objects.create(phone="+16465550001", opted_out=False)  # opted back in: still a recipient
    campaign = make_campaign(make_sender("plivo"), [first, second])

    result = campaign_launch(campaign=campaign)

    phones = list(Message.objects.filter(campaign=campaign).values_list("to", flat=True))
    assert len(phones) == len(set(phones)) == 7  # 9 numbers, 2 opted out
    assert "+12125550002" not in phones and "+16465550000" not in phones
    assert (result.recipients, result.suppressed) == (7, 2)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipient_count, campaign.suppressed_count) == ("sending", 7, 2)
    assert exact(campaign)[S.QUEUED] == 7


def test_launching_twice_is_refused_and_creates_nothing(make_sender, make_audience, make_campaign):
    campaign = make_campaign(make_sender("plivo"), [make_audience(4)])
    campaign_launch(campaign=campaign)
    with pytest.raises(CampaignError):
        campaign_launch(campaign=Campaign.objects.get(pk=campaign.pk))
    assert Message.objects.filter(campaign=campaign).count() == 4
    assert exact(campaign)[S.QUEUED] == 4


def test_counters_equal_count_through_a_campaigns_life(make_sender, make_audience, make_campaign, sandbox, client):
    campaign = make_campaign(make_sender("plivo"), [make_audience(6)])
    campaign_launch(campaign=campaign)
    exact(campaign)

    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))
    for m in messages[:4]:
        assert message_send(message_id=m.pk) == "sent"
    assert exact(campaign)[S.SENT] == 4

    receipt(client, messages[0], "delivered")
    receipt(client, messages[1], "undelivered", "30")
    receipt(client, messages[2], "failed", "10")
    receipt(client, messages[2], "failed", "10")  # duplicate
    counts = exact(campaign)
    assert (counts[S.DELIVERED], counts[S.UNDELIVERED], counts[S.FAILED], counts[S.SENT]) == (1, 1, 1, 1)

    assert campaign_resend_failed(campaign=campaign) == 2
    assert exact(campaign)[S.QUEUED] == 2 + 2

    assert campaign_cancel(campaign=campaign) == 4
    counts = exact(campaign)
    assert (counts[S.CANCELED], counts[S.QUEUED]) == (4, 0)
    assert send_all(campaign).count("sent") == 0
    assert sandbox.ledger()["accepted"] == 4


# ---- controls ------------------------------------------------------------------------------------


def test_pause_stops_new_sends_and_resume_sends_only_the_rest(make_sender, make_audience, make_campaign, sandbox):
    campaign = make_campaign(make_sender("plivo"), [make_audience(5)])
    campaign_launch(campaign=campaign)
    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))
    for m in messages[:2]:
        assert message_send(message_id=m.pk) == "sent"

    campaign_pause(campaign=campaign)
    assert send_all(campaign) == ["skipped"] * 5
    assert sandbox.ledger()["accepted"] == 2
    assert Message.objects.filter(campaign=campaign, status=S.QUEUED).count() == 3

    campaign_resume(campaign=campaign)
    assert sorted(send_all(campaign)) == ["sent"] * 3 + ["skipped"] * 2
    ledger = sandbox.ledger(detail=True)
    assert (ledger["accepted"], ledger["duplicates"]) == (5, 0)
    assert sorted("+" + m["to"] for m in ledger["messages"]) == sorted(m.to for m in messages)
    assert exact(campaign)[S.SENT] == 5


def test_controls_refuse_what_makes_no_sense(make_sender, make_audience, make_campaign):
    campaign = make_campaign(make_sender("plivo"), [make_audience(1)])
    with pytest.raises(CampaignError):
        campaign_pause(campaign=campaign)  # a draft is not sending
    campaign_launch(campaign=campaign)
    with pytest.raises(CampaignError):
        campaign_resume(campaign=campaign)  # not paused
    campaign_cancel(campaign=campaign)
    with pytest.raises(CampaignError):
        campaign_cancel(campaign=campaign)


def test_cancel_turns_waiting_messages_into_canceled(make_sender, make_audience, make_campaign, sandbox, settings):
    campaign = make_campaign(make_sender("plivo"), [make_audience(4)])
    campaign_launch(campaign=campaign)
    first, second, *rest = Message.objects.filter(campaign=campaign).order_by("id")
    assert message_send(message_id=first.pk) == "sent"
    sandbox.config(error_5xx=1.0)
    assert message_send(message_id=second.pk) == "errored"

    assert campaign_cancel(campaign=campaign) == 3
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("id", "status"))
    assert statuses == {first.pk: S.SENT, second.pk: S.CANCELED, rest[0].pk: S.CANCELED, rest[1].pk: S.CANCELED}
    campaign.refresh_from_db()
    assert campaign.status == "canceled"
    exact(campaign)


def test_a_message_given_back_after_the_cancel_is_canceled_too(make_sender, make_audience, make_campaign):
    campaign = make_campaign(make_sender("plivo"), [make_audience(3)])
    campaign_launch(campaign=campaign)
    first, *rest = Message.objects.filter(campaign=campaign).order_by("id")
    from messaging.services import message_move

    assert message_move(first.pk, S.SENDING, from_statuses=(S.QUEUED,))  # a worker is sending it right now
    assert campaign_cancel(campaign=campaign) == 2

    # The worker's call did not start (the campaign stopped): the message goes back to the queue.
    assert message_move(first.pk, S.QUEUED, from_statuses=(S.SENDING,))
    assert dispatches_cancel_stragglers() == 1
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {S.CANCELED}
    exact(campaign)


def test_resend_to_failed_reaches_only_those_not_reached(make_sender, make_audience, make_campaign, sandbox, client):
    campaign = make_campaign(make_sender("plivo"), [make_audience(4)])
    campaign_launch(campaign=campaign)
    delivered, undelivered, failed, sent = Message.objects.filter(campaign=campaign).order_by("id")
    send_all(campaign)
    receipt(client, delivered, "delivered")
    receipt(client, undelivered, "undelivered", "30")
    receipt(client, failed, "failed", "10")
    Suppression.objects.create(phone=sent.to, opted_out=True)  # irrelevant: it was never failed

    assert campaign_resend_failed(campaign=campaign) == 2
    assert campaign_resend_failed(campaign=campaign) == 0  # the first resend is still pending
    round_one = Message.objects.filter(campaign=campaign, round=1)
    assert sorted(round_one.values_list("to", flat=True)) == sorted([undelivered.to, failed.to])
    assert not Message.objects.filter(campaign=campaign, to=delivered.to, round__gt=0).exists()

    assert sorted(send_all(campaign)) == ["sent"] * 2 + ["skipped"] * 4
    ledger = sandbox.ledger(detail=True)
    assert ledger["accepted"] == 6
    assert [m["to"] for m in ledger["messages"]].count(delivered.to.lstrip("+")) == 1
    exact(campaign)


def test_resend_to_failed_skips_numbers_that_opted_out_since(make_sender, make_audience, make_campaign, client):
    campaign = make_campaign(make_sender("plivo"), [make_audience(1)])
    campaign_launch(campaign=campaign)
    (message,) = Message.objects.filter(campaign=campaign)
    Message.objects.filter(pk=message.pk).update(status=S.FAILED)
    Suppression.objects.create(phone=message.to, opted_out=True)
    assert campaign_resend_failed(campaign=campaign) == 0


def test_test_send_is_one_message_outside_the_campaign_counts(make_sender, make_audience, make_campaign, sandbox):
    campaign = make_campaign(make_sender("plivo"), [make_audience(3)], body="Hi {{ first_name|default:'there' }}")
    campaign_launch(campaign=campaign)
    before = exact(campaign)

    message = campaign_test_send(campaign=campaign, phone="+1 (415) 555-0199")

    assert (message.campaign_id, message.to, message.body) == (None, "+14155550199", "Hi there")
    assert message_send(message_id=message.pk) == "sent"
    assert exact(campaign) == before
    assert Message.objects.filter(campaign=campaign).count() == 3
    assert sandbox.ledger()["accepted"] == 1
    with pytest.raises(CampaignError):
        campaign_test_send(campaign=campaign, phone="12")


# ---- scheduling ----------------------------------------------------------------------------------


def test_a_naive_schedule_time_is_refused(make_sender, make_audience, make_campaign):
    campaign = make_campaign(make_sender("plivo"), [make_audience(1)])
    with pytest.raises(CampaignError):
        campaign_schedule(campaign=campaign, at=datetime(2030, 1, 1, 9, 0))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("draft", None)


def test_a_due_campaign_launches_once_and_a_future_one_waits(make_sender, make_audience, make_campaign):
    sender = make_sender("plivo")
    due = make_campaign(sender, [make_audience(3)], name="due")
    later = make_campaign(sender, [make_audience(2, prefix="+1646555")], name="later")
    campaign_schedule(campaign=due, at=timezone.now() + timedelta(seconds=30))
    campaign_schedule(campaign=later, at=timezone.now() + timedelta(hours=1))
    assert campaigns_launch_due() == 0
    Campaign.objects.filter(pk=due.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))

    assert campaigns_launch_due() == 1
    assert campaigns_launch_due() == 0

    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.recipient_count) == ("sending", 3)
    assert Message.objects.filter(campaign=due).count() == 3
    assert (later.status, Message.objects.filter(campaign=later).count()) == ("scheduled", 0)
    exact(due)


def test_a_scheduled_campaign_that_cannot_launch_goes_back_to_draft(make_sender, make_audience, make_campaign):
    sender = make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(1)])
    campaign_schedule(campaign=campaign, at=timezone.now() + timedelta(seconds=5))
    type(sender).objects.filter(pk=sender.pk).update(is_active=False)
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))

    assert campaigns_launch_due() == 0
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert not Message.objects.filter(campaign=campaign).exists()


def test_media_over_the_providers_limit_stops_the_launch_and_unreachable_media_only_warns(
    make_sender, make_audience, make_campaign, media_server
):
    campaign = make_campaign(make_sender("plivo"), [make_audience(2)], media_urls=[f"{media_server}/big.png"])
    with pytest.raises(CampaignError, match=r"big\.png"):
        campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not Message.objects.filter(campaign=campaign).exists()

    campaign.media_urls = [f"http://127.0.0.1:{free_port()}/gone.png"]
    campaign.save(update_fields=["media_urls"])
    problems, warnings = campaign_checks(campaign=campaign, check_media=True)
    assert problems == [] and "could not be reached" in warnings[0]
    assert campaign_launch(campaign=campaign).recipients == 2


def test_recipients_are_split_evenly_across_the_campaigns_senders(make_sender, make_audience, make_campaign):
    first, second, third = make_sender("plivo"), make_sender("bandwidth"), make_sender("sendblue")
    campaign = make_campaign(first, [make_audience(30)])
    campaign.more_senders.set([second, third, first])  # the main sender listed again counts once
    assert campaign_launch(campaign=campaign).recipients == 30
    per_sender = {s.pk: Message.objects.filter(campaign=campaign, sender=s).count() for s in (first, second, third)}
    assert per_sender == {first.pk: 10, second.pk: 10, third.pk: 10}

    from campaigns.services import campaign_dispatch

    # Each sender gets its own share of send tasks at its own pace.
    assert campaign_dispatch(campaign_id=campaign.pk)["enqueued"] == 30
    for sender in (first, second, third):
        assert Message.objects.filter(campaign=campaign, sender=sender, dispatched_at__isnull=False).count() == 10


def test_every_sender_of_a_split_campaign_is_checked(make_sender, make_audience, make_campaign):
    campaign = make_campaign(make_sender("plivo", name="Plivo line"), [make_audience(2)],
                             media_urls=["https://example.com/a.png"])
    campaign.more_senders.set([make_sender("fonedynamics", name="FD line")])
    problems, _ = campaign_checks(campaign=campaign)
    assert any(p.startswith("FD line: ") and "media" in p.lower() for p in problems), problems
    with pytest.raises(CampaignError, match="FD line"):
        campaign_launch(campaign=campaign, check_media=False)
