"""What a failure's cause sets off: an opt-out at the carrier lands in the ledger, an invalid or landline number
is flagged on its contact and skipped at the next launch, a spike of carrier filtering pauses the campaign with
the reason, an account error opens the sender's circuit at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Contact
from campaigns.preflight import campaign_preflight
from campaigns.services import campaign_launch, campaign_resume, contacts_number_clear
from messaging.models import ConsentEvent, Dispatch, Message
from messaging.providers.base import PermanentError, StatusEvent
from messaging.selectors import is_opted_out
from messaging.services import events_apply, message_claim, send_failed
from messaging.services.circuit import circuit_open_until

pytestmark = pytest.mark.django_db
S = Message.Status
_ids = iter(range(1, 100_000))


def launched(make_sender, make_audience, make_campaign, n=3, sender=None):
    sender = sender or make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(n)])
    campaign_launch(campaign=campaign, check_media=False)
    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))
    for message in messages:  # handed to the provider, awaiting its report
        Message.objects.filter(pk=message.pk).update(status=S.SENT, provider_message_id=f"pm-{message.pk}")
    return campaign, messages


def report(message, status: str, code: str = "") -> dict:
    """The provider's report about ``message``, applied as a callback would be."""
    event = StatusEvent(provider_message_id=f"pm-{message.pk}", status=status, raw_status=status,
                        occurred_at=datetime.now(UTC), error_code=code, event_id=f"ev-{next(_ids)}")
    return events_apply(sender=message.sender, events=[event])


def test_each_failure_keeps_its_cause_and_the_providers_meaning(make_sender, make_audience, make_campaign, engine):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=2)
    report(messages[0], "undelivered", "110")
    report(messages[1], "failed", "1000")
    first, second = (Message.objects.get(pk=m.pk) for m in messages)
    assert (first.error_cause, first.error_code, first.error_message) == ("content", "110", "Message too long")
    assert first.cause.label and first.cause.advice
    assert second.error_cause == "unknown"


def test_an_opt_out_reported_by_the_carrier_lands_in_the_ledger_once(make_sender, make_audience, make_campaign,
                                                                     engine):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=1)
    report(messages[0], "undelivered", "200")  # Plivo: source number blocked by STOP from destination
    entry = ConsentEvent.objects.get()
    assert (entry.phone, entry.action, entry.method, entry.message_id) == (messages[0].to, "opt_out", "provider",
                                                                           messages[0].pk)
    assert is_opted_out(messages[0].to)
    assert Contact.objects.get(phone=messages[0].to).opted_out
    # A second campaign to the same number: skipped at launch, no second ledger entry.
    again, _ = launched(make_sender, make_audience, make_campaign, n=0)
    assert ConsentEvent.objects.count() == 1


def test_an_invalid_number_is_flagged_and_skipped_until_staff_clear_it(make_sender, make_audience, make_campaign,
                                                                       engine, roles):
    sender = make_sender("plivo")
    audience = make_audience(3)
    first = make_campaign(sender, [audience])
    campaign_launch(campaign=first, check_media=False)
    messages = list(Message.objects.filter(campaign=first).order_by("id"))
    Message.objects.filter(campaign=first).update(status=S.SENT)
    for m in messages:
        Message.objects.filter(pk=m.pk).update(provider_message_id=f"pm-{m.pk}")
    report(messages[0], "undelivered", "50")  # invalid destination number
    report(messages[1], "failed", "30")  # spam: not the number's fault
    contact = Contact.objects.get(phone=messages[0].to)
    assert contact.number_problem == "invalid_number"
    assert "plivo code 50" in contact.number_problem_detail and contact.number_problem_at
    assert not Contact.objects.get(phone=messages[1].to).number_problem

    second = make_campaign(sender, [audience], name="Next")
    figures = campaign_preflight(campaign=second)
    assert (figures.recipients, figures.flagged, figures.opted_out) == (2, 1, 0)
    assert campaign_launch(campaign=second, check_media=False).recipients == 2
    assert not Message.objects.filter(campaign=second, to=messages[0].to).exists()

    manager = roles.user("Campaign manager")
    assert contacts_number_clear(contacts=[contact], user=manager) == 1
    third = make_campaign(sender, [audience], name="After clearing")
    assert campaign_preflight(campaign=third).flagged == 0
    assert campaign_launch(campaign=third, check_media=False).recipients == 3


def test_a_landline_reported_by_bandwidth_is_flagged(make_sender, make_audience, make_campaign, engine):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=1, sender=make_sender("cloudvno"))
    report(messages[0], "failed", "number_not_sms_capable")
    assert Contact.objects.get(phone=messages[0].to).number_problem == "not_sms_capable"


def test_a_spike_of_carrier_filtering_pauses_the_campaign_with_the_reason(make_sender, make_audience, make_campaign,
                                                                          engine, settings, admin_client):
    settings.CARRIER_FILTERING_MIN = 5
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=60)
    for m in messages[:30]:
        report(m, "delivered")
    for m in messages[30:34]:
        report(m, "undelivered", "30")  # spam detected: 4 of 34 outcomes, fewer than CARRIER_FILTERING_MIN
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    report(messages[34], "undelivered", "30")  # 5 of 35: over 5% and at the minimum
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "5 of the last 35 outcomes" in campaign.paused_reason and "resume" in campaign.paused_reason
    assert Dispatch.objects.get(campaign=campaign).state == Dispatch.State.PAUSED
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'id="campaign-paused-reason"' in page and "5 of the last 35 outcomes" in page
    assert 'data-count="cause-carrier_filtered">5<' in page  # why messages failed, by cause
    assert "(paused automatically)" in admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()

    campaign_resume(campaign=campaign)  # staff fixed it: what came before no longer counts
    campaign.refresh_from_db()
    assert campaign.paused_reason == ""
    for m in messages[35:39]:
        report(m, "undelivered", "30")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_five_percent_of_the_last_window_is_not_a_spike_but_more_is(make_sender, make_audience, make_campaign, engine,
                                                                    settings):
    settings.CARRIER_FILTERING_WINDOW = 100
    settings.CARRIER_FILTERING_MIN = 1
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=120)
    filtered = {m.pk for m in messages[::20]}  # 6 of 120, spread out
    # Outcomes set directly, then one more filtered outcome reported: the window is the last 100 by message.
    Message.objects.filter(campaign=campaign).exclude(pk__in=filtered).update(status=S.DELIVERED)
    Message.objects.filter(pk__in=filtered).update(status=S.UNDELIVERED, error_cause="carrier_filtered")
    last = messages[-1]
    Message.objects.filter(pk=last.pk).update(status=S.SENT)
    report(last, "undelivered", "30")  # the last 100 hold 5 filtered earlier + this one = 6%: over 5%
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

    campaign_resume(campaign=campaign)
    settings.CARRIER_FILTERING_WINDOW = 200
    Message.objects.filter(campaign=campaign).update(updated_at=datetime(2030, 1, 1, tzinfo=UTC))  # all count
    Message.objects.filter(campaign=campaign).update(status=S.DELIVERED, error_cause="")
    Message.objects.filter(pk__in=[m.pk for m in messages[:5]]).update(status=S.UNDELIVERED,
                                                                        error_cause="carrier_filtered")
    Message.objects.filter(pk=messages[5].pk).update(status=S.SENT)
    report(messages[5], "undelivered", "30")  # 6 of 120 = 5%: not over
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_a_report_of_an_account_error_about_one_message_leaves_the_circuit_closed(make_sender, make_audience,
                                                                                   make_campaign, engine):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=2)
    report(messages[0], "failed", "40")  # invalid source number, reported later about one accepted message
    assert Message.objects.get(pk=messages[0].pk).error_cause == "account"
    assert circuit_open_until(messages[0].sender_id) is None  # the next calls tell whether the account is refused


def test_a_refused_call_for_our_credentials_opens_the_circuit_at_once(make_sender, engine):
    from messaging.services import message_create

    sender = make_sender("cloudvno")
    message = message_create(sender=sender, to="+12125550199", body="hi")
    assert message_claim(message.pk, sender_id=sender.pk)
    message.refresh_from_db()
    error = PermanentError("invalid API key", http_status=401, code="unauthorized", provider="cloudvno")
    assert send_failed(message=message, error=error) == S.FAILED
    message.refresh_from_db()
    assert message.error_cause == "account"
    assert circuit_open_until(sender.pk) is not None


def test_a_send_refused_because_the_recipient_opted_out_lands_in_the_ledger(make_sender, engine):
    """Sendblue answers a send to an opted-out number with `opted_out: true` and some other code."""
    from messaging.providers import provider_for
    from messaging.services import message_create

    sender = make_sender("sendblue")
    message = message_create(sender=sender, to="+12125550199", body="hi")
    assert message_claim(message.pk, sender_id=sender.pk)
    message.refresh_from_db()
    error = provider_for(sender).error_for(
        400, {"status": "ERROR", "error_code": 4000, "error_message": "Recipient opted out", "opted_out": True}, {})
    assert send_failed(message=message, error=error) == S.FAILED
    assert Message.objects.get(pk=message.pk).error_cause == "opted_out"
    entry = ConsentEvent.objects.get()
    assert (entry.phone, entry.method, entry.message_id) == ("+12125550199", "provider", message.pk)
