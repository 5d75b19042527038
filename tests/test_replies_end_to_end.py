"""STOP, START and HELP through each of the five providers' own formats: a campaign goes out through the emulator
with real workers, recipients answer through the emulator (``POST /sandbox/inbound``), and the product records
each consent change in the ledger with the reply that caused it, confirms it once through the same sender,
answers HELP, leaves the number out of the next campaign, and shows the conversation in the inbox. CloudVNO answers
keywords itself (it blocks a number after its STOP): its senders record the change and send nothing."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.preflight import campaign_preflight
from campaigns.services import campaign_launch
from messaging.models import ConsentEvent, Message
from messaging.providers import PROVIDERS, inbound_url
from messaging.providers.base import url_with_basic_auth
from messaging.selectors import conversation, is_opted_out
from messaging.services.inbound import provider_answers_keywords
from tests.support import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def webhook(sender) -> str:
    """The inbound URL as pasted in the provider's console (with the callback credentials where it needs them)."""
    url = inbound_url(sender)
    if PROVIDERS[sender.provider].callback_password_needed(sender.options or {}):
        url = url_with_basic_auth(url, str((sender.options or {}).get("callback_username") or ""),
                                  sender.callback_password)
    return url


def answer(sandbox, sender, phone: str, text: str) -> None:
    sandbox.inbound(**{"provider": sender.provider, "url": webhook(sender), "from": phone, "to": sender.address,
                       "text": text, **sender.credentials})


def answer_stored(sandbox, sender, phone: str, text: str) -> None:
    """Answer, and wait until the reply is stored (so that replies from one number arrive in the order written)."""
    before = Message.objects.filter(direction="inbound").count()
    answer(sandbox, sender, phone, text)
    wait_until(lambda: Message.objects.filter(direction="inbound").count() > before, timeout=30, interval=0.1,
               message=f"the reply {text!r} through {sender.provider}")


def wait_sent(sandbox, phone: str, text: str, what: str) -> None:
    wait_until(lambda: text in sent_to(sandbox, phone), timeout=30, interval=0.2, message=what)


def sent_to(sandbox, phone: str) -> list[str]:
    """The texts the emulator accepted for this number, in order."""
    return [m["text"] for m in sandbox.ledger(detail=True)["messages"] if m["to"].lstrip("+") == phone.lstrip("+")]


def test_stop_start_and_help_through_each_providers_format(workers, sandbox, make_sender, make_audience,
                                                           make_campaign):
    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    senders = {provider: make_sender(provider, mps=50) for provider in sorted(PROVIDERS)}
    audience = make_audience(10)
    campaign = make_campaign(senders["bandwidth"], [audience], body="Hi {{ first_name }}, spring sale today.")
    campaign.more_senders.set([s for p, s in senders.items() if p != "bandwidth"])
    workers.start(concurrency=2, beat=True)
    assert campaign_launch(campaign=campaign, check_media=False).recipients == 10
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=90, interval=0.5,
               message="the campaign to complete")

    # One recipient of each sender answers through that sender's provider.
    recipient = {provider: Message.objects.filter(campaign=campaign, sender=sender).order_by("id").first().to
                 for provider, sender in senders.items()}
    for provider, sender in senders.items():
        answer(sandbox, sender, recipient[provider], "Stop.")
    wait_until(lambda: ConsentEvent.objects.filter(action="opt_out").count() == 5, timeout=30, interval=0.2,
               message="five opt-outs in the ledger")
    for provider, sender in senders.items():
        phone = recipient[provider]
        entry = ConsentEvent.objects.get(phone=phone)
        assert (entry.method, entry.message.body, entry.message.sender_id) == ("keyword", "Stop.", sender.pk)
        if not provider_answers_keywords(sender):
            wait_sent(sandbox, phone, sender.opt_out_text, f"the opt-out confirmation through {provider}")

    # A second STOP changes nothing and is not confirmed again; HELP is answered; START opts back in, confirmed.
    for provider, sender in senders.items():
        answer_stored(sandbox, sender, recipient[provider], "STOP")
        answer_stored(sandbox, sender, recipient[provider], "help")
    for provider, sender in senders.items():
        phone = recipient[provider]
        if provider_answers_keywords(sender):
            continue
        wait_sent(sandbox, phone, sender.help_text_reply, f"the help text through {provider}")
        assert sent_to(sandbox, phone).count(sender.opt_out_text) == 1, provider
    for provider, phone in recipient.items():
        assert ConsentEvent.objects.filter(phone=phone).count() == 1, provider
        assert is_opted_out(phone)

    # The next campaign leaves the five numbers out, and says so before it is launched.
    follow_up = make_campaign(senders["plivo"], [audience], name="Follow-up")
    figures = campaign_preflight(campaign=follow_up)
    assert (figures.recipients, figures.opted_out) == (5, 5)

    for provider, sender in senders.items():
        answer_stored(sandbox, sender, recipient[provider], "START")
    wait_until(lambda: ConsentEvent.objects.filter(action="opt_in").count() == 5, timeout=30, interval=0.2,
               message="five opt-ins in the ledger")
    for provider, sender in senders.items():
        phone = recipient[provider]
        itself = provider_answers_keywords(sender)
        if not itself:
            wait_sent(sandbox, phone, sender.opt_in_text, f"the opt-in confirmation through {provider}")
        assert not is_opted_out(phone)
        # The conversation, in order: the campaign's message, then each reply and its answer.
        thread = [(m.direction, m.kind, m.body) for m in conversation(address=phone)]
        assert thread[0] == ("outbound", "message", Message.objects.get(campaign=campaign, to=phone).body)
        replies = [body for direction, _kind, body in thread if direction == "inbound"]
        assert replies == ["Stop.", "STOP", "help", "START"], provider
        answers = [body for direction, kind, body in thread if kind == "keyword"]
        expected = [] if itself else [sender.opt_out_text, sender.help_text_reply, sender.opt_in_text]
        assert answers == expected, provider
        assert sent_to(sandbox, phone) == [thread[0][2], *expected], provider  # what reached the number
    assert campaign_preflight(campaign=follow_up).recipients == 10
    assert sandbox.ledger()["duplicates"] == 0
