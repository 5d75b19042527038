"""Races the delivery engine must win: a stale reconciler answer, a failover under a batch, an opt-out while
a message waits, sweeps outside any transaction. Our database is real (committed, shared by threads);
provider HTTP goes to the emulator; nothing starts a worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging.models import Message, MessageEvent
from messaging.selectors import campaign_counts, campaign_counts_exact
from messaging.services import consent_record, message_claim, message_send, messages_send
from messaging.services import messages_sweep as sweep
from tests.messaging.providers import test_plivo
from tests.messaging.races import reconcile_while

pytestmark = pytest.mark.django_db(transaction=True)
S = Message.Status
plivo = test_plivo.TestPlivoContract()


@pytest.fixture(autouse=True)
def _engine(engine):
    engine.PROVIDER_TIMEOUT = 3


def launched(make_sender, make_audience, make_campaign, n=1, sender=None, **fields):
    from campaigns.services import campaign_launch

    campaign = make_campaign(sender or make_sender("plivo"), [make_audience(n)], **fields)
    campaign_launch(campaign=campaign)
    return campaign, list(Message.objects.filter(campaign=campaign).order_by("id"))


def assert_counts_exact(campaign):
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)


def test_a_reconciler_answer_about_an_older_claim_changes_nothing(make_sender, make_audience, make_campaign, sandbox):
    """The reconciler asks the provider about an abandoned claim; while it waits for the answer, the message
    is claimed again by a worker that is now sending it. The answer ("never received") is about the old
    claim: acting on it would queue the message a second time while it is being sent."""
    campaign, (message,) = launched(make_sender, make_audience, make_campaign)
    assert message_claim(message.pk, sender_id=message.sender_id)
    Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now() - timedelta(minutes=10))
    sandbox.config(latency_ms=1500)  # the provider takes its time to answer the reconciler

    # Meanwhile: the message was given back and claimed again by a live worker.
    answer = reconcile_while(
        message, lambda: Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now(), attempts=2))

    assert answer == "skipped"
    message.refresh_from_db()
    assert (message.status, message.attempts) == (S.SENDING, 2)
    assert_counts_exact(campaign)


def test_a_message_moved_to_another_sender_is_not_sent_by_the_old_one(
    make_sender, make_audience, make_campaign, sandbox
):
    primary, backup = make_sender("plivo"), make_sender("plivo", name="Backup")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3, sender=primary)
    # A failover moved the first message to the backup after its batch was grouped under the primary.
    Message.objects.filter(pk=messages[0].pk).update(sender_id=backup.pk)

    from messaging.services import sender_messages_send

    words = sender_messages_send(sender=primary, message_ids=[m.pk for m in messages])
    assert sorted(words.values()) == ["sent", "sent", "skipped"] and words[messages[0].pk] == "skipped"
    messages[0].refresh_from_db()
    assert messages[0].status == S.QUEUED and messages[0].sender_id == backup.pk
    detail = sandbox.ledger(detail=True)
    assert detail["accepted"] == 2
    assert messages[0].to.lstrip("+") not in [m["to"] for m in detail["messages"]]
    assert_counts_exact(campaign)


def test_a_number_that_opts_out_while_its_message_waits_is_never_sent_it(
    make_sender, make_audience, make_campaign, sandbox
):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3)
    consent_record(phone=messages[1].to, action="opt_out", method="keyword", detail="replied STOP")

    outcome = messages_send(message_ids=[m.pk for m in messages])
    assert outcome["sent"] == 2
    messages[1].refresh_from_db()
    assert messages[1].status == S.CANCELED and "opted out" in messages[1].error_message
    assert sandbox.ledger()["accepted"] == 2
    assert_counts_exact(campaign)

    # A single message (a test send) to an opted-out number is not sent either.
    from messaging.services import message_create

    single = message_create(sender=campaign.sender, to=messages[1].to, body="hello")
    assert message_send(message_id=single.pk) == "skipped"
    single.refresh_from_db()
    assert single.status == S.CANCELED
    assert sandbox.ledger()["accepted"] == 2


def test_the_sweep_applies_kept_callbacks_outside_any_transaction(make_sender, client):
    """Callbacks that arrived before their message's provider id was known are applied by the periodic sweep,
    which runs in autocommit mode in a worker (no surrounding transaction)."""
    sender = make_sender("plivo")
    response = plivo.post_callback(client, sender, provider_message_id="pm-kept", raw_status="delivered")
    assert response.status_code == 200
    assert MessageEvent.objects.get(provider_message_id="pm-kept").applied is False
    message = Message.objects.create(sender=sender, to="+12125550188", body="hi", status=S.SENT,
                                     provider_message_id="pm-kept", sent_at=timezone.now())

    assert connection.in_atomic_block is False
    assert sweep()["pending_applied"] == 1
    message.refresh_from_db()
    assert message.status == S.DELIVERED
    assert not MessageEvent.objects.filter(applied=False).exists()
    assert sweep()["pending_applied"] == 0


def test_a_pause_stops_the_calls_a_batch_has_not_started_yet(make_sender, make_audience, make_campaign, sandbox):
    """A batch owns its messages and waits for each one's pace slot; a pause must stop the calls still
    waiting, not only the next batch. The messages go back to the queue unsent and go out on resume."""
    from campaigns.services import campaign_pause, campaign_resume

    campaign, messages = launched(make_sender, make_audience, make_campaign, n=8, sender=make_sender("plivo", mps=4))
    outcome = {}

    def send():
        try:
            outcome.update(messages_send(message_ids=[m.pk for m in messages]))
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    wait = time.monotonic() + 10
    while sandbox.ledger()["accepted"] < 2 and time.monotonic() < wait:
        time.sleep(0.02)
    campaign_pause(campaign=campaign)
    thread.join(30)

    sent = outcome["sent"]
    assert 2 <= sent < 8 and outcome["deferred"] == 8 - sent, outcome
    assert sandbox.ledger()["accepted"] == sent
    assert Message.objects.filter(campaign=campaign, status=S.QUEUED).count() == 8 - sent
    assert_counts_exact(campaign)

    campaign_resume(campaign=campaign)
    outcome = messages_send(message_ids=[m.pk for m in messages])
    assert outcome["sent"] == 8 - sent
    ledger = sandbox.ledger()
    assert (ledger["accepted"], ledger["duplicates"]) == (8, 0)
    assert_counts_exact(campaign)


def test_after_a_429_the_rest_of_the_batch_waits_instead_of_hammering(
    make_sender, make_audience, make_campaign, sandbox
):
    sandbox.config(rate_429=1.0, latency_ms=5)
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=6,
                                  sender=make_sender("plivo", mps=10))
    outcome = messages_send(message_ids=[m.pk for m in messages])

    ledger = sandbox.ledger()
    assert ledger["rejected_429"] == 1, ledger  # one refusal, then the batch held back
    assert (outcome["errored"], outcome["deferred"]) == (1, 5), outcome
    waiting = Message.objects.filter(campaign=campaign, status__in=(S.QUEUED, S.ERRORED))
    assert waiting.count() == 6
    assert all(m.next_attempt_at > timezone.now() for m in waiting)  # due after the provider's hint
    assert all(m.attempts == 0 for m in waiting)  # being slowed down is not a failed attempt
    assert_counts_exact(campaign)
    from messaging import pacing

    assert pacing.rate_factor(campaign.sender_id) == 0.5  # the batch met a 429: the sender's pace is halved
    sandbox.config(rate_429=0.0)
    Message.objects.filter(campaign=campaign).update(next_attempt_at=None)
    assert messages_send(message_ids=[m.pk for m in messages])["sent"] == 6
    assert pacing.rate_factor(campaign.sender_id) == pytest.approx(0.5 + pacing.RECOVERY_STEP)
