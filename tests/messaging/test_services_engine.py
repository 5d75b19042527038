"""The delivery engine at service level: claims, forward-only statuses, errors, circuit breaker, failover.

Provider HTTP goes to the emulator; our database is real. Nothing here starts a worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging import pacing
from messaging.models import Message, MessageEvent, SenderPace
from messaging.providers.base import SendResult
from messaging.selectors import campaign_counts, campaign_counts_exact
from messaging.services import message_claim, message_reconcile, message_send, send_recorded
from tests.messaging.providers import test_plivo
from tests.support import free_port, wait_until

pytestmark = pytest.mark.django_db
S = Message.Status
plivo = test_plivo.TestPlivoContract()  # its signed-callback helpers


@pytest.fixture(autouse=True)
def _engine(engine):
    engine.PROVIDER_TIMEOUT = 3


@pytest.fixture
def quiet_sandbox(sandbox):
    """The emulator, giving up on unreachable callbacks at once (its message states then move quickly)."""
    sandbox.config(callback_retries=0)
    return sandbox


def launched(make_sender, make_audience, make_campaign, n=3, **fields):
    from campaigns.services import campaign_launch

    sender = fields.pop("sender", None) or make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(n, prefix=fields.pop("prefix", "+1212555"))], **fields)
    campaign_launch(campaign=campaign)
    return campaign, list(Message.objects.filter(campaign=campaign).order_by("id"))


def assert_counts_exact(campaign):
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)


def status(message) -> str:
    message.refresh_from_db()
    return message.status


# ---- claim ---------------------------------------------------------------------------------------


def test_a_message_is_claimed_once(make_sender, make_audience, make_campaign):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=1)
    assert message_claim(messages[0].pk, sender_id=messages[0].sender_id) is True
    assert message_claim(messages[0].pk, sender_id=messages[0].sender_id) is False
    messages[0].refresh_from_db()
    assert (messages[0].status, messages[0].attempts) == (S.SENDING, 1)
    assert_counts_exact(campaign)


@pytest.mark.parametrize("state", ["paused", "canceled"])
def test_no_claim_when_the_campaign_is_not_sending(make_sender, make_audience, make_campaign, state):
    """The claim reads the dispatch record the campaign's owner sets, never the campaign."""
    from messaging.models import Dispatch

    campaign, messages = launched(make_sender, make_audience, make_campaign, n=1)
    Dispatch.objects.filter(campaign_id=campaign.pk).update(state=state)
    assert message_claim(messages[0].pk, sender_id=messages[0].sender_id) is False
    assert status(messages[0]) == S.QUEUED
    Dispatch.objects.filter(campaign_id=campaign.pk).update(state="sending")
    assert message_claim(messages[0].pk, sender_id=messages[0].sender_id) is True


def test_sending_a_sent_message_again_does_nothing(make_sender, make_audience, make_campaign, sandbox):
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)
    assert message_send(message_id=message.pk) == "sent"
    assert message_send(message_id=message.pk) == "skipped"
    message.refresh_from_db()
    assert message.status == S.SENT and message.provider_message_id
    assert message.body == "Hi Person0, this is a test."
    ledger = sandbox.ledger()
    assert (ledger["accepted"], ledger["duplicates"]) == (1, 0)
    assert_counts_exact(campaign)


# ---- callbacks: status only moves forward ----------------------------------------------------------


def test_late_sent_callback_does_not_undo_delivered(make_sender, client):
    sender = make_sender("plivo")
    message = plivo.sent_message(sender, "pm-late")
    assert plivo.post_callback(client, sender, provider_message_id="pm-late", raw_status="delivered").status_code == 200
    assert plivo.post_callback(client, sender, provider_message_id="pm-late", raw_status="sent").status_code == 200
    message.refresh_from_db()
    assert message.status == S.DELIVERED and message.delivered_at is not None


def test_first_final_status_wins(make_sender, make_audience, make_campaign, client):
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)
    assert message_claim(message.pk, sender_id=message.sender_id)
    send_recorded(message=message, result=SendResult(provider_message_id="pm-final", status="queued"))
    plivo.post_callback(client, campaign.sender, provider_message_id="pm-final", raw_status="undelivered",
                        error_code="30")
    plivo.post_callback(client, campaign.sender, provider_message_id="pm-final", raw_status="delivered")
    message.refresh_from_db()
    assert (message.status, message.error_code) == (S.UNDELIVERED, "30")
    assert_counts_exact(campaign)
    assert campaign_counts(campaign_id=campaign.pk)[S.UNDELIVERED] == 1


def test_a_duplicate_callback_changes_nothing(make_sender, client):
    sender = make_sender("plivo")
    message = plivo.sent_message(sender, "pm-dup")
    for _ in range(2):
        plivo.post_callback(client, sender, provider_message_id="pm-dup", raw_status="delivered")
    assert status(message) == S.DELIVERED
    assert MessageEvent.objects.filter(provider_message_id="pm-dup", source="callback").count() == 1


def test_a_callback_before_the_provider_id_is_kept_and_applied_later(
    make_sender, make_audience, make_campaign, client
):
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)
    assert message_claim(message.pk, sender_id=message.sender_id)  # being sent: the provider answered, we have not recorded its id yet
    response = plivo.post_callback(client, campaign.sender, provider_message_id="pm-early", raw_status="delivered")
    assert response.status_code == 200
    early = MessageEvent.objects.get(provider_message_id="pm-early", source="callback")
    assert early.applied is False and early.message_id is None
    assert status(message) == S.SENDING

    send_recorded(message=message, result=SendResult(provider_message_id="pm-early", status="queued"))

    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (S.DELIVERED, "pm-early")
    early.refresh_from_db()
    assert early.applied is True and early.message_id == message.pk
    assert_counts_exact(campaign)


# ---- transient errors and rate limits ------------------------------------------------------------


def test_server_errors_retry_with_backoff_then_fail_with_the_last_error(
    make_sender, make_audience, make_campaign, sandbox, settings
):
    settings.SEND_MAX_ATTEMPTS = 2
    sandbox.config(error_5xx=1.0)
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)

    assert message_send(message_id=message.pk) == "errored"
    message.refresh_from_db()
    assert (message.status, message.attempts) == (S.ERRORED, 1)
    assert message.next_attempt_at > timezone.now()
    assert message_send(message_id=message.pk) == "skipped"  # not before its backoff is over
    assert status(message) == S.ERRORED
    assert_counts_exact(campaign)

    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    message_send(message_id=message.pk)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error_code) == (S.FAILED, 2, "500")
    assert "internal server error" in message.error_message
    assert sandbox.ledger()["accepted"] == 0
    assert_counts_exact(campaign)


def test_429_slows_the_sender_without_counting_an_attempt(
    make_sender, make_audience, make_campaign, sandbox, settings
):
    sandbox.config(rate_429=1.0)
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)
    sender = campaign.sender

    assert message_send(message_id=message.pk) == "errored"
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error_code) == (S.ERRORED, 0, "429")
    assert message.next_attempt_at > timezone.now()
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        assert SenderPace.objects.get(sender=sender).next_free > time.time() + 0.5
    # Whatever the store, the sender's next free slot is now about the provider's Retry-After (1 s) away.
    assert pacing.reserve(sender.pk, sender.mps) > time.time() + 0.5
    assert_counts_exact(campaign)


# ---- ambiguous outcomes and reconciliation ---------------------------------------------------------


def test_an_ambiguous_send_is_found_at_the_provider_not_sent_again(
    make_sender, make_audience, make_campaign, sandbox
):
    sandbox.config(ambiguous=1.0)
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)

    assert message_send(message_id=message.pk) == "unconfirmed"
    message.refresh_from_db()
    assert message.status == S.UNCONFIRMED and not message.provider_message_id
    assert message_send(message_id=message.pk) == "skipped"  # never blindly retried
    assert_counts_exact(campaign)

    sandbox.config(ambiguous=0.0)
    assert message_reconcile(message_id=message.pk) == "found"
    message.refresh_from_db()
    assert message.status in (S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED)
    assert message.provider_message_id
    detail = sandbox.ledger(detail=True)
    assert (detail["accepted"], detail["duplicates"]) == (1, 0)
    assert detail["messages"][0]["to"] == message.to.lstrip("+")
    assert_counts_exact(campaign)


def test_a_send_the_provider_never_got_is_sent_again_once(make_sender, make_audience, make_campaign, sandbox):
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1)
    assert message_claim(message.pk, sender_id=message.sender_id)  # the worker that claimed it died before calling the provider
    Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now() - timedelta(minutes=10))

    assert message_reconcile(message_id=message.pk) == "resend"
    assert status(message) == S.ERRORED
    assert_counts_exact(campaign)

    assert message_send(message_id=message.pk) == "sent"
    message.refresh_from_db()
    assert message.status == S.SENT and message.provider_message_id
    assert sandbox.ledger()["accepted"] == 1
    assert message_reconcile(message_id=message.pk) in ("checked",)
    assert sandbox.ledger()["accepted"] == 1
    assert_counts_exact(campaign)


def test_a_sent_message_without_receipt_gets_its_final_status_by_lookup(make_sender, quiet_sandbox):
    from messaging.services import message_create

    quiet_sandbox.config(outcomes_by_suffix={"": "delivered"})
    sender = make_sender("plivo")
    message = message_create(sender=sender, to="+12125550177", body="hello")
    assert message_send(message_id=message.pk) == "sent"

    def delivered():
        message_reconcile(message_id=message.pk)
        return status(message) == S.DELIVERED

    wait_until(delivered, timeout=10, interval=0.2, message="the lookup to report delivered")
    assert quiet_sandbox.ledger()["accepted"] == 1


# ---- circuit breaker and failover ----------------------------------------------------------------


def _ledger_senders(sandbox) -> list[str]:
    return [m["sender"] for m in sandbox.ledger(detail=True)["messages"]]


def test_a_down_provider_opens_the_circuit_and_the_backup_takes_over(
    make_sender, make_audience, make_campaign, quiet_sandbox, settings
):
    settings.CIRCUIT_FAILURES = 2
    quiet_sandbox.config(outcomes_by_suffix={"": "delivered"})
    down = make_sender("plivo", api_base_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    backup = make_sender("plivo")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=4, sender=down, backup_sender=backup)

    assert [message_send(message_id=m.pk) for m in messages[:2]] == ["errored", "errored"]
    assert SenderPace.objects.get(sender=down).open_until > timezone.now()

    assert [message_send(message_id=m.pk) for m in messages[2:]] == ["sent", "sent"]
    for m in messages[2:]:
        m.refresh_from_db()
        assert (m.status, m.sender_id) == (S.SENT, backup.pk)
    assert _ledger_senders(quiet_sandbox) == [f"test-auth_id-value:{backup.address.lstrip('+')}"] * 2

    # The two that met the outage go out on the backup once their retry is due.
    Message.objects.filter(pk__in=[m.pk for m in messages[:2]]).update(next_attempt_at=timezone.now())
    assert [message_send(message_id=m.pk) for m in messages[:2]] == ["sent", "sent"]
    assert quiet_sandbox.ledger()["accepted"] == 4 and quiet_sandbox.ledger()["duplicates"] == 0

    def all_delivered():
        for m in messages:
            message_reconcile(message_id=m.pk)
        return Message.objects.filter(campaign=campaign, status=S.DELIVERED).count() == 4

    wait_until(all_delivered, timeout=10, interval=0.2, message="the backup's messages to be delivered")
    assert_counts_exact(campaign)


def test_sporadic_server_errors_among_successes_leave_the_circuit_closed(
    make_sender, make_audience, make_campaign, quiet_sandbox, settings
):
    settings.CIRCUIT_FAILURES = 3
    quiet_sandbox.config(error_5xx=0.3, seed=11)
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=30)
    from messaging.services import messages_send

    outcome = messages_send(message_ids=[m.pk for m in messages])
    assert outcome["errored"] > settings.CIRCUIT_FAILURES and outcome["sent"] > 0, outcome
    pace = SenderPace.objects.filter(sender=campaign.sender).first()
    assert pace is None or pace.open_until is None  # the provider answered: its errors are not an outage
    assert_counts_exact(campaign)


def test_a_failed_bulk_call_is_one_failure_towards_the_circuit_however_many_messages_it_carried(
    make_sender, make_audience, make_campaign, quiet_sandbox, settings
):
    """Bandwidth takes up to 50 messages per request: one 500 answer to one request is one failure of the
    provider, not 50 (which would open the circuit at the first error of a healthy provider)."""
    settings.CIRCUIT_FAILURES = 5
    quiet_sandbox.config(error_5xx=1.0)
    sender = make_sender("bandwidth")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=100, sender=sender)
    from messaging.services import messages_send

    outcome = messages_send(message_ids=[m.pk for m in messages])
    assert outcome["errored"] == 100, outcome
    assert quiet_sandbox.ledger()["rejected_5xx"] == 2  # two requests of 50
    pace = SenderPace.objects.get(sender=sender)
    assert pace.consecutive_failures == 2 and pace.open_until is None
    assert_counts_exact(campaign)


def test_refused_credentials_fail_over_to_the_backup(make_sender, make_audience, make_campaign, sandbox):
    bad = make_sender("plivo", credentials={"auth_id": "invalid", "auth_token": "invalid"})
    backup = make_sender("plivo")
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1, sender=bad, backup_sender=backup)

    assert message_send(message_id=message.pk) == "failover"
    message.refresh_from_db()
    assert (message.status, message.sender_id) == (S.ERRORED, backup.pk)
    assert message_send(message_id=message.pk) == "sent"
    message.refresh_from_db()
    assert (message.status, message.sender_id) == (S.SENT, backup.pk)
    assert _ledger_senders(sandbox) == [f"test-auth_id-value:{backup.address.lstrip('+')}"]
    assert_counts_exact(campaign)


def test_an_invalid_recipient_fails_without_failover(make_sender, make_audience, make_campaign, sandbox):
    main = make_sender("plivo")
    backup = make_sender("plivo")
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1, sender=main,
                                    backup_sender=backup)
    Message.objects.filter(pk=message.pk).update(to="+12")  # a number the provider refuses

    assert message_send(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert (message.status, message.sender_id, message.error_code) == (S.FAILED, main.pk, "400")
    assert sandbox.ledger()["accepted"] == 0
    assert not SenderPace.objects.filter(sender=main, open_until__isnull=False).exists()
    assert_counts_exact(campaign)


def test_a_429_on_the_last_attempt_slows_down_instead_of_failing_over(
    make_sender, make_audience, make_campaign, sandbox, settings
):
    settings.SEND_MAX_ATTEMPTS = 2
    main = make_sender("plivo")
    backup = make_sender("plivo")
    campaign, (message,) = launched(make_sender, make_audience, make_campaign, n=1, sender=main,
                                    backup_sender=backup)
    sandbox.config(error_5xx=1.0)
    assert message_send(message_id=message.pk) == "errored"
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    sandbox.config(error_5xx=0.0, rate_429=1.0)

    assert message_send(message_id=message.pk) == "errored"  # being slowed down is not a failed attempt
    message.refresh_from_db()
    assert (message.status, message.sender_id, message.attempts) == (S.ERRORED, main.pk, 1)
    assert_counts_exact(campaign)
