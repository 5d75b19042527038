"""The inbox: replies with their contact, sender line and campaign; filters; the conversation per number; answering
(refused for an opted-out number, recorded and audited like any send); read and unread."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from campaigns.services import campaign_launch
from messaging.models import Message
from messaging.providers.base import StatusEvent
from messaging.selectors import campaign_replies, replies_unread_count
from messaging.services import AnswerRefused, inbound_record, reply_answer

pytestmark = pytest.mark.django_db
_ids = iter(range(1, 100_000))


def reply(sender, text: str, who: str) -> Message:
    event = StatusEvent(provider_message_id=f"in-{next(_ids)}", status="received", raw_status="received",
                        occurred_at=datetime.now(UTC), recipient=who, direction="inbound", body=text)
    return inbound_record(sender=sender, event=event)


@pytest.fixture
def answered_campaign(make_sender, make_audience, make_campaign, engine):
    sender = make_sender("plivo", name="Main line")
    campaign = make_campaign(sender, [make_audience(4)], name="Spring sale")
    campaign_launch(campaign=campaign, check_media=False)
    Message.objects.filter(campaign=campaign).update(status="delivered")
    return sender, campaign


def test_replies_count_on_their_campaign(answered_campaign, make_sender):
    sender, campaign = answered_campaign
    reply(sender, "Sounds good", "+12125550000")
    reply(sender, "When does it end?", "+12125550000")
    reply(sender, "STOP", "+12125550001")
    reply(sender, "HELP", "+12125550002")
    reply(make_sender("plivo"), "wrong line", "+12125550003")  # to another sender: answers no message of this one
    reply(sender, "who is this?", "+12125559999")  # a number the campaign never messaged
    figures = campaign_replies(campaign_id=campaign.pk)
    assert figures == {"replies": 4, "repliers": 3, "helps": 1, "opt_outs": 1}
    assert replies_unread_count() == 6


def test_the_inbox_lists_replies_with_contact_line_and_campaign_and_filters_them(answered_campaign, admin_client):
    sender, campaign = answered_campaign
    reply(sender, "Sounds good", "+12125550000")
    reply(sender, "STOP", "+12125550001")
    page = admin_client.get(reverse("admin:messaging_reply_changelist")).content.decode()
    assert "Person0 +12125550000" in page and "Sounds good" in page
    assert "Main line" in page and f'/campaigns/campaign/{campaign.pk}/change/">Spring sale</a>' in page
    assert page.count("reply-unread") == 2
    only_stop = admin_client.get(reverse("admin:messaging_reply_changelist"), {"keyword": "opt_out"})
    assert "Sounds good" not in only_stop.content.decode() and "+12125550001" in only_stop.content.decode()
    by_campaign = admin_client.get(reverse("admin:messaging_reply_changelist"), {"campaign": str(campaign.pk)})
    assert "Sounds good" in by_campaign.content.decode()
    unread = admin_client.get(reverse("admin:messaging_reply_changelist"), {"read": "yes"}).content.decode()
    assert "Sounds good" not in unread


def test_the_conversation_shows_both_sides_in_order_and_answers_through_the_same_sender(answered_campaign, roles,
                                                                                        client):
    sender, campaign = answered_campaign
    first = reply(sender, "Sounds good", "+12125550000")
    reply(sender, "When does it end?", "+12125550000")
    manager = roles.user("Campaign manager")
    client.force_login(manager)
    url = reverse("admin:messaging_reply_conversation", args=[first.pk])
    page = client.get(url).content.decode()
    ours = Message.objects.get(campaign=campaign, to="+12125550000")
    assert page.index(ours.body) < page.index("Sounds good") < page.index("When does it end?")
    assert "Conversation with Person0" in page
    assert Message.objects.filter(direction="inbound", read_at__isnull=True).count() == 0  # opened: read

    response = client.post(url, {"body": "Until Sunday!", "sender": sender.pk})
    assert response.status_code == 302
    answer = Message.objects.get(kind="answer")
    assert (answer.to, answer.sender_id, answer.body, answer.direction) == ("+12125550000", sender.pk,
                                                                            "Until Sunday!", "outbound")
    assert answer.in_reply_to.body == "When does it end?"
    entry = LogEntry.objects.get(object_id=str(answer.pk))
    assert entry.user_id == manager.pk and "Answered a reply" in entry.change_message
    assert "Until Sunday!" in client.get(url).content.decode()


def test_an_opted_out_number_cannot_be_answered(answered_campaign, roles, client):
    sender, _campaign = answered_campaign
    stop = reply(sender, "STOP", "+12125550001")
    with pytest.raises(AnswerRefused, match="opted out"):
        reply_answer(reply=stop, body="Sorry to see you go", user=None)
    client.force_login(roles.user("Campaign manager"))
    url = reverse("admin:messaging_reply_conversation", args=[stop.pk])
    page = client.get(url).content.decode()
    assert 'id="opted-out-banner"' in page
    response = client.post(url, {"body": "Still there?", "sender": sender.pk}, follow=True)
    assert "has opted out" in response.content.decode()
    assert not Message.objects.filter(kind="answer").exists()


def test_an_alphanumeric_sender_cannot_be_answered(answered_campaign):
    sender, _campaign = answered_campaign
    promo = reply(sender, "Your code is 1234", "ACME")
    with pytest.raises(AnswerRefused, match="not a number"):
        reply_answer(reply=promo, body="?", user=None)


def test_a_viewer_reads_without_marking_read_and_cannot_answer(answered_campaign, roles, client):
    sender, _campaign = answered_campaign
    first = reply(sender, "Sounds good", "+12125550000")
    client.force_login(roles.user("Viewer"))
    url = reverse("admin:messaging_reply_conversation", args=[first.pk])
    page = client.get(url).content.decode()
    assert "Sounds good" in page and 'id="answer-form"' not in page
    first.refresh_from_db()
    assert first.read_at is None
    assert client.post(url, {"body": "hi", "sender": sender.pk}).status_code == 403


def test_mark_read_and_unread(answered_campaign, admin_client):
    sender, _campaign = answered_campaign
    first = reply(sender, "Sounds good", "+12125550000")
    changelist = reverse("admin:messaging_reply_changelist")
    admin_client.post(changelist, {"action": "mark_read", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.read_at is not None
    admin_client.post(changelist, {"action": "mark_unread", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.read_at is None


def test_hostile_media_links_are_not_rendered(answered_campaign, admin_client):
    sender, _campaign = answered_campaign
    event = StatusEvent(provider_message_id="in-media", status="received", raw_status="received",
                        occurred_at=datetime.now(UTC), recipient="+12125550000", direction="inbound", body="look",
                        media_urls=("javascript:alert(1)", "https://media.example.com/a.jpg"))
    message = inbound_record(sender=sender, event=event)
    page = admin_client.get(reverse("admin:messaging_reply_conversation", args=[message.pk])).content.decode()
    assert "https://media.example.com/a.jpg" in page and "javascript:alert" not in page


def test_the_ledger_links_each_keyword_entry_to_the_reply_that_caused_it(answered_campaign, admin_client):
    from messaging.models import ConsentEvent

    sender, _campaign = answered_campaign
    stop = reply(sender, "STOP", "+12125550001")
    conversation_url = reverse("admin:messaging_reply_conversation", args=[stop.pk])
    assert conversation_url in admin_client.get(reverse("admin:messaging_consentevent_changelist")).content.decode()
    entry = ConsentEvent.objects.get()
    page = admin_client.get(reverse("admin:messaging_consentevent_change", args=[entry.pk])).content.decode()
    assert conversation_url in page
