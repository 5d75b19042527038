"""Keywords per sender: STOP/START/HELP and their variants, matched on the whole reply, each consent change in
the ledger with the reply that caused it and confirmed once; nothing lost for addresses phonenumbers does not
know."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messaging.models import ConsentEvent, Message, Suppression
from messaging.providers.base import StatusEvent
from messaging.selectors import is_opted_out
from messaging.services import inbound_record, messages_claim
from messaging.services.inbound import keyword_of

pytestmark = pytest.mark.django_db
_ids = iter(range(1, 10_000))


def reply(sender, text: str, who: str = "+12125550199", media=()) -> Message:
    event = StatusEvent(provider_message_id=f"in-{next(_ids)}", status="received", raw_status="received",
                        occurred_at=datetime.now(UTC), recipient=who, direction="inbound", body=text,
                        media_urls=tuple(media))
    return inbound_record(sender=sender, event=event)


def answers(to: str = "+12125550199") -> list[Message]:
    return list(Message.objects.filter(direction="outbound", to=to).order_by("id"))


@pytest.mark.parametrize("text,keyword", [
    ("STOP", "opt_out"), (" stop ", "opt_out"), ("Stop.", "opt_out"), ("stop!!", "opt_out"), ("«Quit»", "opt_out"),
    ("unsubscribe", "opt_out"), ("StopAll", "opt_out"), ("end", "opt_out"), ("cancel", "opt_out"),
    ("start", "opt_in"), ("UNSTOP", "opt_in"), ("yes", "opt_in"),
    ("help", "help"), ("Info?", "help"),
    ("stop please", ""), ("please stop", ""), ("STOP ALL", ""), ("st op", ""), ("", ""), ("?!", ""), ("stopp", ""),
])
def test_a_keyword_is_the_whole_reply_whatever_its_case_spaces_and_punctuation(make_sender, text, keyword):
    assert keyword_of(make_sender("plivo"), text) == keyword


def test_stop_opts_out_once_confirms_once_and_start_opts_back_in(make_sender, engine):
    sender = make_sender("plivo")
    first = reply(sender, "Stop")
    entry = ConsentEvent.objects.get()
    assert (entry.phone, entry.action, entry.method, entry.message_id) == ("+12125550199", "opt_out", "keyword",
                                                                           first.pk)
    assert is_opted_out("+12125550199")
    sent = answers()
    assert [(m.kind, m.body, m.in_reply_to_id, m.sender_id) for m in sent] == [
        ("keyword", sender.opt_out_text, first.pk, sender.pk)]

    reply(sender, "STOP")  # already opted out: stored, nothing changes, nothing is sent
    assert ConsentEvent.objects.count() == 1
    assert len(answers()) == 1
    assert Message.objects.filter(direction="inbound").count() == 2

    again = reply(sender, "start")
    assert not is_opted_out("+12125550199")
    assert ConsentEvent.objects.order_by("-id").first().message_id == again.pk
    assert [m.body for m in answers()] == [sender.opt_out_text, sender.opt_in_text]
    reply(sender, "YES")  # subscribed already: nothing
    assert len(answers()) == 2 and ConsentEvent.objects.count() == 2


def test_help_is_answered_with_the_senders_text_and_changes_no_consent(make_sender, engine):
    sender = make_sender("bandwidth", help_text_reply="Acme Alerts: reply STOP to end. Call 555-0100.")
    reply(sender, "HELP")
    reply(sender, "info")
    assert [m.body for m in answers()] == [sender.help_text_reply] * 2
    assert not ConsentEvent.objects.exists()
    assert Message.objects.filter(direction="inbound", keyword="help").count() == 2


def test_a_sender_has_its_own_keywords(make_sender, engine):
    own = make_sender("plivo", opt_out_keywords="ARRET, STOP", opt_in_keywords="REPRISE", help_keywords="AIDE")
    other = make_sender("plivo")
    reply(other, "arret")
    assert not ConsentEvent.objects.exists()
    reply(own, "Arret")
    assert is_opted_out("+12125550199")
    reply(own, "start")  # not one of this sender's opt-in words
    assert is_opted_out("+12125550199")
    reply(own, "reprise")
    assert not is_opted_out("+12125550199")


@pytest.mark.parametrize("provider,setting", [("plivo", True), ("cloudvno", False)])
def test_a_provider_that_answers_keywords_itself_gets_the_change_but_sends_nothing(make_sender, engine, provider,
                                                                                   setting):
    sender = make_sender(provider, provider_answers_keywords=setting)  # CloudVNO always answers them itself
    reply(sender, "STOP")
    reply(sender, "HELP")
    assert is_opted_out("+12125550199")
    assert answers() == []


def test_empty_confirmation_text_sends_nothing(make_sender, engine):
    sender = make_sender("plivo", opt_out_text="")
    reply(sender, "STOP")
    assert is_opted_out("+12125550199") and answers() == []


@pytest.mark.parametrize("who,stored,answered", [
    ("898287", "898287", True),  # a short code
    ("+1 555 010 0000", "+15550100000", True),  # a range phonenumbers considers invalid
    ("+999123456", "+999123456", True),  # a country code that does not exist (yet)
    ("ACME", "ACME", False),  # an alphanumeric sender: cannot be answered
])
def test_a_stop_from_an_address_phonenumbers_does_not_know_is_still_honoured(make_sender, engine, who, stored,
                                                                             answered):
    sender = make_sender("plivo")
    message = reply(sender, "STOP", who=who)
    assert (message.to, message.status, message.direction) == (stored, "received", "inbound")
    assert Suppression.objects.get(phone=stored).opted_out
    assert ConsentEvent.objects.get().phone == stored
    assert bool(answers(stored)) == answered


def test_a_reply_is_linked_to_the_last_message_we_sent_that_number_from_that_sender(make_sender, engine):
    from messaging.services import message_create

    sender = make_sender("plivo")
    other = make_sender("plivo")
    first = message_create(sender=sender, to="+12125550199", body="one")
    second = message_create(sender=sender, to="+12125550199", body="two")
    message_create(sender=other, to="+12125550199", body="from another line")
    answer = reply(sender, "Thanks!", media=["https://example.com/a.jpg"])
    assert answer.in_reply_to_id == second.pk != first.pk
    assert answer.media_urls == ["https://example.com/a.jpg"]
    assert answer.read_at is None and answer.keyword == ""


def test_the_confirmation_is_the_one_message_an_opted_out_number_still_gets(make_sender, engine):
    from messaging.services import message_create

    sender = make_sender("plivo")
    pending = message_create(sender=sender, to="+12125550199", body="an ordinary message, queued before the STOP")
    reply(sender, "STOP")
    confirmation = Message.objects.get(kind="keyword")
    claimed, _at = messages_claim([pending.pk, confirmation.pk], sender_id=sender.pk)
    assert claimed == [confirmation.pk]
    pending.refresh_from_db()
    assert pending.status == "canceled"


def test_the_database_refuses_a_reply_stored_twice(make_sender):
    from django.db import IntegrityError, transaction

    sender = make_sender("plivo")
    first = reply(sender, "hello")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(sender=sender, direction="inbound", provider_message_id=first.provider_message_id,
                               to=first.to, body="hello", status="received")


@pytest.mark.django_db(transaction=True)
def test_a_reply_delivered_twice_at_once_is_stored_and_answered_once(make_sender, engine):
    """The provider retries while the first delivery is still being handled: both get the same reply, and HELP
    is answered once."""
    import threading

    from django.db import connection

    sender = make_sender("plivo")
    for attempt in range(8):
        event = StatusEvent(provider_message_id=f"twice-{attempt}", status="received", raw_status="received",
                            occurred_at=datetime.now(UTC), recipient="+12125550199", direction="inbound", body="HELP")
        barrier = threading.Barrier(2)
        stored = []

        def deliver(event=event, barrier=barrier, stored=stored):
            try:
                barrier.wait(timeout=10)
                stored.append(inbound_record(sender=sender, event=event).pk)
            finally:
                connection.close()

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(stored) == 2 and stored[0] == stored[1], attempt
    assert Message.objects.filter(direction="inbound").count() == 8
    assert Message.objects.filter(direction="outbound", kind="keyword").count() == 8
