"""The dashboards' figures, kept as things happen (``messaging.services.tallies``): each is checked against the
message rows it summarises, after real sends to the emulator, provider reports, failovers, resends, replies
and callbacks refused or accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse

from campaigns.services import campaign_launch, campaign_resend_failed
from messaging.models import CallbackTally, CampaignMinute, CampaignTally, Message, SenderHour
from messaging.providers.base import PermanentError, StatusEvent
from messaging.selectors import (
    campaign_by_sender,
    campaign_failovers,
    campaign_failure_causes,
    campaign_failure_codes,
    campaign_replies,
    campaign_superseded,
    campaign_timeline,
)
from messaging.services import events_apply, message_claim, message_send
from messaging.services.outcomes import send_error
from messaging.services.tallies import outcomes_tally

pytestmark = pytest.mark.django_db
S = Message.Status
_ids = iter(range(1, 1_000_000))


def launched(make_sender, make_audience, make_campaign, n=3, **fields):
    sender = fields.pop("sender", None) or make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(n, prefix=fields.pop("prefix", "+1212555"))], **fields)
    campaign_launch(campaign=campaign, check_media=False)
    return campaign, list(Message.objects.filter(campaign=campaign).order_by("id"))


def report(message: Message, status: str, code: str = "") -> None:
    message.refresh_from_db()
    event = StatusEvent(provider_message_id=message.provider_message_id, status=status, raw_status=status,
                        occurred_at=datetime.now(UTC), error_code=code, event_id=f"ev-{next(_ids)}")
    events_apply(sender=message.sender, events=[event])


def total(model, **filters) -> int:
    return model.objects.filter(**filters).aggregate(n=Sum("count"))["n"] or 0


def test_sends_and_reports_are_counted_per_minute_per_sender_and_per_hour(make_sender, make_audience, make_campaign,
                                                                            engine, sandbox):
    sandbox.config(callback_retries=0)
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3)
    for message in messages:
        assert message_send(message_id=message.pk) == "sent"
    report(messages[0], "delivered")
    report(messages[1], "delivered")
    report(messages[2], "undelivered", "110")  # Plivo: message too long
    report(messages[2], "undelivered", "110")  # the same report again changes nothing

    assert total(CampaignMinute, campaign=campaign, status="sent") == 3
    assert total(CampaignMinute, campaign=campaign, status="delivered") == 2
    assert total(CampaignMinute, campaign=campaign, status="undelivered") == 1
    sender = messages[0].sender
    assert total(SenderHour, sender=sender, status="sent") == 3
    assert total(SenderHour, sender=sender, status="delivered") == 2

    (row,) = campaign_by_sender(campaign_id=campaign.pk)
    assert (row["name"], row["provider"], row["sent"], row["delivered"], row["undelivered"], row["failed"]) == (
        sender.name, "plivo", 3, 2, 1, 0)
    assert row["delivery_rate"] == pytest.approx(66.7)
    (code,) = campaign_failure_codes(campaign_id=campaign.pk)
    assert (code["cause"].code, code["provider"], code["code"], code["meaning"], code["count"]) == (
        "content", "plivo", "110", "Message too long", 1)
    assert [(f["cause"].code, f["count"]) for f in campaign_failure_causes(campaign_id=campaign.pk)] == [("content", 1)]

    timeline = campaign_timeline(campaign_id=campaign.pk)
    assert timeline["unit"] == "minute"
    assert sum(p["sent"] for p in timeline["points"]) == 3
    assert sum(p["delivered"] for p in timeline["points"]) == 2
    assert sum(p["failed"] for p in timeline["points"]) == 1


def test_a_message_reported_delivered_before_its_send_was_recorded_counts_as_sent_once(make_sender, make_audience,
                                                                                        make_campaign, engine):
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)
    assert message_claim(message.pk, sender_id=message.sender_id)
    Message.objects.filter(pk=message.pk).update(provider_message_id="early-1")  # the call under way
    report(message, "delivered")
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED
    assert total(CampaignTally, campaign=campaign, event="sent") == 1
    assert total(CampaignTally, campaign=campaign, event="delivered") == 1


def test_a_failure_the_provider_reports_about_a_message_it_holds_counts_it_as_sent(make_sender, make_audience,
                                                                                   make_campaign, engine):
    """After an ambiguous send (or with the reports out of order) the first word from the provider may be that
    the message failed: the provider held it, so it counts as sent, once. A failure of our own call (refused
    before the provider took it) does not."""
    campaign, (held, refused) = launched(make_sender, make_audience, make_campaign, n=2)
    assert message_claim(held.pk, sender_id=held.sender_id)
    Message.objects.filter(pk=held.pk).update(status=S.UNCONFIRMED, provider_message_id="held-1")
    report(held, "failed", "300")
    report(held, "failed", "300")  # again: nothing more
    assert Message.objects.get(pk=held.pk).status == S.FAILED
    assert message_claim(refused.pk, sender_id=refused.sender_id)
    refused.refresh_from_db()
    send_error(refused, PermanentError("invalid destination", code="invalid_number"))
    assert Message.objects.get(pk=refused.pk).status == S.FAILED
    assert total(CampaignTally, campaign=campaign, event="sent") == 1
    assert total(CampaignTally, campaign=campaign, event="failed") == 2
    assert total(CampaignMinute, campaign=campaign, status="sent") == 1
    assert total(SenderHour, sender=held.sender, status="sent") == 1


def test_a_failover_is_counted_for_the_backup_sender_with_its_cause(make_sender, make_audience, make_campaign, engine):
    main, backup = make_sender("cloudvno"), make_sender("plivo")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=2, sender=main, backup_sender=backup)
    for message in messages:
        assert message_claim(message.pk, sender_id=main.pk)
        message.refresh_from_db()
        refused = PermanentError("invalid API key", http_status=401, code="unauthorized", provider="cloudvno")
        assert send_error(message, refused) == "failover"
    (moved,) = campaign_failovers(campaign_id=campaign.pk)
    assert (moved["backup"], moved["cause"].code, moved["code"], moved["count"]) == (backup.name, "account",
                                                                                     "unauthorized", 2)
    assert set(Message.objects.filter(campaign=campaign).values_list("sender_id", flat=True)) == {backup.pk}


def test_a_resend_counts_the_messages_it_replaces_so_recipients_stay_apart_from_messages(
        make_sender, make_audience, make_campaign, engine, sandbox):
    sandbox.config(callback_retries=0)
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3)
    for message in messages:
        message_send(message_id=message.pk)
    report(messages[0], "delivered")
    report(messages[1], "undelivered", "110")
    report(messages[2], "failed", "1000")
    campaign.refresh_from_db()
    campaign.status = "completed"
    campaign.save(update_fields=["status"])
    assert campaign_resend_failed(campaign=campaign) == 2
    assert campaign_superseded(campaign_id=campaign.pk) == {"undelivered": 1, "failed": 1}
    # A second resend has nobody to resend to, and counts nothing more.
    assert campaign_resend_failed(campaign=campaign) == 0
    assert campaign_superseded(campaign_id=campaign.pk) == {"undelivered": 1, "failed": 1}


def test_replies_repliers_help_and_opt_outs_are_counted_for_the_campaign_they_answer(
        make_sender, make_audience, make_campaign, engine, sandbox):
    sandbox.config(callback_retries=0)
    sender = make_sender("plivo")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=2, sender=sender)
    for message in messages:
        message_send(message_id=message.pk)

    def reply(message, text):
        event = StatusEvent(provider_message_id=f"in-{next(_ids)}", status=S.RECEIVED, raw_status="received",
                            occurred_at=datetime.now(UTC), direction="inbound", recipient=message.to,
                            to_address=sender.address, body=text)
        events_apply(sender=sender, events=[event])

    reply(messages[0], "Thanks!")
    reply(messages[0], "HELP")
    reply(messages[0], "STOP")
    reply(messages[0], "STOP")  # already opted out: no second opt-out
    reply(messages[1], "Who is this?")
    assert campaign_replies(campaign_id=campaign.pk) == {"replies": 5, "repliers": 2, "helps": 1, "opt_outs": 1}


def test_callbacks_refused_and_accepted_are_counted_with_why(make_sender, client, engine):
    sender = make_sender("plivo")
    url = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    response = client.post(url, {"MessageUUID": "x", "Status": "delivered"},
                           HTTP_X_PLIVO_SIGNATURE_V3="bad", HTTP_X_PLIVO_SIGNATURE_V3_NONCE="123")
    assert response.status_code == 403
    response = client.post(url, {"MessageUUID": "y", "Status": "delivered"})
    assert response.status_code == 403
    refused = {row.reason: row.count for row in CallbackTally.objects.filter(sender=sender, accepted=False)}
    assert refused == {"403 signature refused: X-Plivo-Signature-V3 does not match": 1,
                       "403 signature refused: Plivo signature headers are missing": 1}
    assert not CallbackTally.objects.filter(sender=sender, accepted=True).exists()


def test_outcomes_outside_any_campaign_count_for_the_sender_only(make_sender):
    sender = make_sender("plivo")
    at = datetime(2026, 3, 1, 10, 59, 30, tzinfo=UTC)
    outcomes_tally(campaign_id=None, sender_id=sender.pk, old=S.SENDING, new=S.SENT, n=4, at=at)
    outcomes_tally(campaign_id=None, sender_id=sender.pk, old=S.SENT, new=S.DELIVERED, n=3, at=at + timedelta(
        minutes=1))
    hours = {(row.hour.hour, row.status): row.count for row in SenderHour.objects.filter(sender=sender)}
    assert hours == {(10, "sent"): 4, (11, "delivered"): 3}
    assert not CampaignTally.objects.exists() and not CampaignMinute.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop", ["pause", "cancel"])
def test_a_pause_or_cancel_ends_sending_at_once_for_messages_waiting_for_their_pace_slot(
        make_sender, make_audience, make_campaign, engine, sandbox, stop):
    """Claimed messages wait for their slot (here one every 2 seconds): after a pause they are back in the queue
    (after a cancel, canceled) within a gate refresh, not when their slot would have come."""
    import threading

    from django.db import connection

    from messaging.selectors import campaign_counts, campaign_counts_exact
    from messaging.services import dispatch_cancel, dispatch_pause, messages_send
    from tests.support import wait_until

    sandbox.config(callback_retries=0)
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=4, sender=make_sender("plivo", mps=0.5))
    outcome = {}

    def send():
        try:
            outcome.update(messages_send(message_ids=[m.pk for m in messages]))
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    wait_until(lambda: sandbox.ledger()["accepted"] >= 1, timeout=10, message="the first slot's call")
    (dispatch_pause if stop == "pause" else dispatch_cancel)(campaign_id=campaign.pk)
    # The last slot is 6 seconds after the first: the others must not wait for theirs.
    wait_until(lambda: not Message.objects.filter(campaign=campaign, status=S.SENDING).exists(), timeout=3,
               message="no message left in sending")
    thread.join(30)
    assert not thread.is_alive()
    assert sandbox.ledger()["accepted"] < 4
    waiting = S.QUEUED if stop == "pause" else S.CANCELED
    assert Message.objects.filter(campaign=campaign, status=waiting).count() == 4 - sandbox.ledger()["accepted"]
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)


def test_past_buckets_fold_into_one_row_each_and_keep_their_sums(make_sender, make_audience, make_campaign):
    """Writers spread a bucket over shards; once its minute or hour is over, the sweep folds them into one row
    per figure. The sums (and a callback's last time) stay what they were; the current bucket is left alone."""
    from django.utils import timezone

    from messaging.services.tallies import callback_tally, tallies_fold

    sender = make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(1)])
    now = timezone.now().replace(minute=30, second=0, microsecond=0)  # old and old + 5 minutes: the same hour
    old = now - timedelta(hours=3)
    for _ in range(40):  # random shards
        outcomes_tally(campaign_id=campaign.pk, sender_id=sender.pk, old=S.SENDING, new=S.SENT, at=old)
        outcomes_tally(campaign_id=campaign.pk, sender_id=sender.pk, old=S.SENT, new=S.DELIVERED, at=now)
        callback_tally(sender_id=sender.pk, accepted=False, reason="403 signature refused", at=old)
    callback_tally(sender_id=sender.pk, accepted=False, reason="403 signature refused", at=old + timedelta(minutes=5))
    assert CampaignMinute.objects.filter(campaign=campaign, status="sent").count() > 1

    assert tallies_fold(now=now) > 0
    sent = CampaignMinute.objects.filter(campaign=campaign, status="sent")
    assert [(row.shard, row.count) for row in sent] == [(0, 40)]
    assert total(CampaignMinute, campaign=campaign, status="delivered") == 40  # this minute: not folded yet
    assert total(SenderHour, sender=sender, status="sent") == 40
    assert SenderHour.objects.filter(sender=sender, status="sent").count() == 1
    (refused,) = CallbackTally.objects.filter(sender=sender)
    assert (refused.shard, refused.count) == (0, 41)
    assert refused.last_at == (old + timedelta(minutes=5))
    assert sum(p["sent"] for p in campaign_timeline(campaign_id=campaign.pk)["points"]) == 40
    assert tallies_fold(now=now) == 0  # nothing left to fold


def test_the_backfill_of_stored_messages_gives_the_figures_kept_as_they_happened(make_sender, make_audience,
                                                                                make_campaign, engine, sandbox):
    """The migration fills the figures for messages stored before they were kept. Run on what a campaign left
    (sends, reports, failures, a resend, replies, a STOP), it must give what was counted live (failovers aside:
    the rows do not say which messages moved, so they start from zero)."""
    import importlib

    from django.apps import apps

    fill = importlib.import_module("messaging.migrations.0012_dashboard_tallies").tallies_fill
    sandbox.config(callback_retries=0)
    sender = make_sender("plivo")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=4, sender=sender)
    for message in messages:
        message_send(message_id=message.pk)
    report(messages[0], "delivered")
    report(messages[1], "undelivered", "110")
    report(messages[2], "failed", "1000")
    campaign.refresh_from_db()
    campaign.status = "completed"
    campaign.save(update_fields=["status"])
    assert campaign_resend_failed(campaign=campaign) == 2
    for text, message in (("Thanks", messages[0]), ("HELP", messages[0]), ("STOP", messages[3])):
        events_apply(sender=sender, events=[StatusEvent(
            provider_message_id=f"in-{next(_ids)}", status=S.RECEIVED, raw_status="received",
            occurred_at=datetime.now(UTC), direction="inbound", recipient=message.to, to_address=sender.address,
            body=text)])

    def figures():
        return (
            {(r["sender_id"], r["event"], r["cause"], r["code"]): r["n"] for r in
             CampaignTally.objects.values("sender_id", "event", "cause", "code").annotate(n=Sum("count"))},
            {r["status"]: r["n"] for r in CampaignMinute.objects.values("status").annotate(n=Sum("count"))},
            {(r["sender_id"], r["status"]): r["n"] for r in
             SenderHour.objects.values("sender_id", "status").annotate(n=Sum("count"))},
        )

    live = figures()
    assert live[0][(sender.pk, "superseded", "undelivered", "")] == 1 and live[0][(sender.pk, "opt_out", "", "")] == 1
    for model in (CampaignTally, CampaignMinute, SenderHour):
        model.objects.all().delete()
    fill(apps, None)
    assert figures() == live
