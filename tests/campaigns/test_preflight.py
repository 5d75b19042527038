"""The confirmation before sending: its figures are those of what is then sent (recipients, skips, segments
by encoding, cost), nothing is sent without it, and a campaign that changed since it was shown is shown again."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from campaigns import preflight
from campaigns.models import Campaign, Contact, ContactList, ListMembership, Price
from messaging.encoding import segment_info
from messaging.models import Message
from messaging.services import consent_record, messages_send

pytestmark = pytest.mark.django_db


def people(contact_list, rows):
    contacts = [Contact.objects.create(phone=phone, first_name=name, custom_fields=custom or {})
                for phone, name, custom in rows]
    ListMembership.objects.bulk_create([ListMembership(contact=c, contact_list=contact_list) for c in contacts])
    return contacts


@pytest.fixture
def audience(db, example_prices):
    """Two lists: plain names, an emoji name (UCS-2), a missing first name, a long custom field, a contact on
    both lists, one opted out on the contact, one opted out in the ledger only, one landline."""
    first = ContactList.objects.create(name="Customers")
    second = ContactList.objects.create(name="Newsletter")
    a = people(first, [
        ("+12125550101", "Ann", {"city": "Boston"}),
        ("+12125550102", "Bo😀", {"city": "Austin"}),
        ("+12125550103", "", {"city": "Denver"}),
        ("+12125550104", "Cy", {"city": "San Francisco and the whole Bay Area, " * 5}),
        ("+12125550105", "Di", {}),
    ])
    people(second, [("+442079460106", "Ed", {"city": "London"}), ("+12125550107", "Flo", {"city": "Reno"})])
    ListMembership.objects.create(contact=a[0], contact_list=second)  # Ann is on both lists
    Contact.objects.filter(phone="+12125550105").update(opted_out=True)
    consent_record(phone="+12125550107", action="opt_out", method="staff", detail="test")
    Contact.objects.filter(phone="+12125550103").update(is_fixed_line=True)
    return [first, second]


def test_the_figures_equal_what_is_then_sent(engine, sandbox, make_sender, make_campaign, audience):
    sender = make_sender("plivo")
    campaign = make_campaign(sender, audience, body="Hi {{ first_name|default:'there' }} from {{ city }}!")
    figures = preflight.campaign_preflight(campaign=campaign)
    assert figures.recipients == 5  # 7 people, one opted out on the contact, one in the ledger
    assert figures.opted_out == 2
    assert figures.duplicates == 1
    assert figures.landline == 1
    assert figures.empty_fields == {}  # first_name has a default; the one without a city (Di) opted out
    assert set(figures.encodings) == {"GSM-7", "UCS-2"}
    assert figures.encodings["UCS-2"].recipients == 1

    from campaigns.services import campaign_launch

    campaign_launch(campaign=campaign, check_media=False)
    ids = list(Message.objects.filter(campaign=campaign).values_list("id", flat=True))
    assert len(ids) == figures.recipients
    messages_send(message_ids=ids)
    sent = list(Message.objects.filter(campaign=campaign))
    assert all(m.body for m in sent)
    infos = [segment_info(m.body) for m in sent]
    assert sum(i.segments for i in infos) == figures.segments
    for encoding, line in figures.encodings.items():
        assert sum(i.segments for i in infos if i.encoding == encoding) == line.segments
        assert sum(1 for i in infos if i.encoding == encoding) == line.recipients
    assert max((i.segments, i.units) for i in infos) == (figures.longest.segments, figures.longest.units)


def test_cost_uses_the_price_table_and_says_when_prices_are_examples(make_sender, make_campaign, audience):
    sender = make_sender("plivo")
    campaign = make_campaign(sender, audience, body="Short and plain.")
    figures = preflight.campaign_preflight(campaign=campaign)
    by_country = {line.country: line for line in figures.costs}
    assert by_country["US"].recipients == 4 and by_country["GB"].recipients == 1
    us, gb = Price.objects.get(provider="plivo", country="US"), Price.objects.get(provider="plivo", country="GB")
    assert figures.cost_total == (us.per_segment * 4 + gb.per_segment)
    assert figures.cost_has_examples
    Price.objects.filter(provider="plivo").update(is_example=False, per_segment=Decimal("0.01"))
    figures = preflight.campaign_preflight(campaign=campaign)
    assert not figures.cost_has_examples and figures.cost_total == Decimal("0.05")


def test_duration_follows_the_senders_pace(make_sender, make_campaign, audience):
    campaign = make_campaign(make_sender("plivo", mps=0.5), audience, body="Hello")
    figures = preflight.campaign_preflight(campaign=campaign)
    assert figures.duration_seconds == pytest.approx(10.0)  # 5 recipients at one every 2 s


def test_recipients_outside_their_window_are_counted(make_sender, make_campaign, audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hello", window_start=time(9), window_end=time(21),
                             timezone="America/New_York")
    # 12:00 in New York is 17:00 in London: everybody is inside
    noon = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
    assert preflight.campaign_preflight(campaign=campaign, now=noon).outside_window == 0
    # 17:00 in New York is 22:00 in London: the London number waits
    late = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)
    figures = preflight.campaign_preflight(campaign=campaign, now=late)
    assert figures.outside_window == 1
    assert figures.first_opening == datetime(2026, 6, 11, 8, 0, tzinfo=UTC)  # 09:00 BST


def test_samples_show_exact_messages_including_one_lacking_a_field(make_sender, make_campaign, audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hi {{ first_name }}!")
    samples = preflight.campaign_preflight(campaign=campaign).samples
    assert samples[0].body == "Hi Ann!"
    assert any(s.missing == ["first_name"] and s.body == "Hi !" for s in samples)


def test_launch_now_goes_through_the_confirmation(admin_client, engine, make_sender, make_campaign, audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hello {{ first_name }}")
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/" in page
    # the old direct action only leads to the confirmation
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/action/launch/")
    assert response.status_code == 302 and response["Location"].endswith("/confirm/launch/")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/")
    figures = page.context["figures"]
    assert figures.recipients == 5
    html = page.content.decode()
    assert 'data-figure="recipients">5<' in html and "example prices" in html
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/",
                                 {"fingerprint": "5:stale"})
    assert response.status_code == 200 and "changed since" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/",
                                 {"fingerprint": figures.fingerprint})
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    assert Message.objects.filter(campaign=campaign).count() == figures.recipients


def test_a_change_after_the_figures_were_shown_asks_again(admin_client, engine, make_sender, make_campaign,
                                                         audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hello")
    figures = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/").context["figures"]
    people(audience[0], [("+12125550199", "New", {})])
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/",
                                 {"fingerprint": figures.fingerprint})
    assert response.status_code == 200
    assert response.context["figures"].recipients == 6
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_the_bulk_launch_shows_figures_first(admin_client, engine, make_sender, make_campaign, audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hello")
    url = "/admin/campaigns/campaign/"
    page = admin_client.post(url, {"action": "launch_selected", "_selected_action": [campaign.pk]})
    assert page.status_code == 200 and "Send now to 5 recipients" in page.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    fingerprint = page.context["entries"][0]["figures"].fingerprint
    response = admin_client.post(url, {"action": "launch_selected", "_selected_action": [campaign.pk],
                                       "confirm": "yes", f"fingerprint_{campaign.pk}": fingerprint})
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"


def test_saving_with_a_time_asks_to_confirm_the_schedule(admin_client, engine, make_sender, make_campaign,
                                                        audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hello")
    at = (timezone.now() + timedelta(days=1)).replace(microsecond=0, second=0)
    local = timezone.localtime(at)
    data = {"name": campaign.name, "sender": campaign.sender_id, "backup_sender": "", "body": "Hello",
            "media_urls": "", "lists": [lst.pk for lst in audience], "scheduled_at_0": local.strftime("%Y-%m-%d"),
            "scheduled_at_1": local.strftime("%H:%M:%S"), "window_start": "", "window_end": "", "timezone": ""}
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302 and response["Location"].endswith(f"/{campaign.pk}/confirm/schedule/")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    page = admin_client.get(response["Location"])
    response = admin_client.post(response["Location"], {"fingerprint": page.context["figures"].fingerprint})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("scheduled", at)


def test_resend_to_failed_is_confirmed_with_its_own_figures(admin_client, engine, make_sender, make_campaign,
                                                           audience):
    from campaigns.services import campaign_launch

    campaign = make_campaign(make_sender("plivo"), audience, body="Hello {{ first_name }}")
    campaign_launch(campaign=campaign, check_media=False)
    failed = list(Message.objects.filter(campaign=campaign).order_by("id")[:2])
    Message.objects.filter(pk__in=[m.pk for m in failed]).update(status="failed", body="Hello again")
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/confirm/resend_failed/")
    figures = page.context["figures"]
    assert figures.recipients == 2 and figures.segments == 2
    before = Message.objects.filter(campaign=campaign).count()
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/confirm/resend_failed/",
                                 {"fingerprint": figures.fingerprint})
    assert response.status_code == 302
    assert Message.objects.filter(campaign=campaign).count() == before + 2


def test_a_user_without_change_permission_gets_no_confirmation_and_sends_nothing(client, make_sender,
                                                                                make_campaign, audience):
    campaign = make_campaign(make_sender("plivo"), audience, body="Hello")
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(viewer)
    for action in ("launch", "schedule", "resend_failed"):
        assert client.get(f"/admin/campaigns/campaign/{campaign.pk}/confirm/{action}/").status_code == 403
        assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/confirm/{action}/",
                           {"fingerprint": "x"}).status_code == 403
    assert client.post("/admin/campaigns/compose/preview/", {"body": "Hi"}).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_the_compose_preview_renders_real_recipients(admin_client, audience):
    data = admin_client.post("/admin/campaigns/compose/preview/",
                             {"body": "Hi {{ first_name }} in {{ city }}", "lists": [audience[0].pk]}).json()
    assert data["error"] == "" and data["recipients"] == 4
    assert data["empty"] == {"first_name": 1}
    assert data["samples"][0]["body"] == "Hi Ann in Boston"
    assert any(s["missing"] == ["first_name"] for s in data["samples"])
    assert data["longest"]["segments"] >= 2  # Cy's long city
    data = admin_client.post("/admin/campaigns/compose/preview/",
                             {"body": "Hi {{ first_name|default:'you' }}", "lists": [audience[0].pk]}).json()
    assert data["empty"] == {}  # a fallback leaves no gap
    data = admin_client.post("/admin/campaigns/compose/preview/", {"body": "Hi {{ frist_name }}"}).json()
    assert "frist_name" in data["error"]


def test_a_campaign_already_sending_offers_no_launch(admin_client, engine, make_sender, make_campaign, audience):
    from campaigns.services import campaign_launch

    campaign = make_campaign(make_sender("plivo"), audience, body="Hello")
    campaign_launch(campaign=campaign, check_media=False)
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/").content.decode()
    assert "only a draft or a scheduled campaign can be launched" in page
    assert 'id="confirm-launch"' not in page


def test_resend_counts_its_window_in_each_contacts_zone(engine, make_sender, make_campaign, audience):
    from campaigns.services import campaign_launch

    campaign = make_campaign(make_sender("plivo"), audience, body="Hello", window_start=time(9), window_end=time(21),
                             timezone="America/New_York")
    campaign_launch(campaign=campaign, check_media=False)
    Message.objects.filter(campaign=campaign, to__in=["+12125550101", "+442079460106"]).update(status="failed")
    Contact.objects.filter(phone="+12125550101").update(timezone="Asia/Tokyo")  # lives in Tokyo
    # 16:00 UTC: noon in New York, 17:00 in London, 01:00 in Tokyo
    figures = preflight.campaign_resend_preflight(campaign=campaign, now=datetime(2026, 6, 10, 16, 0, tzinfo=UTC))
    assert (figures.recipients, figures.outside_window) == (2, 1)
    assert figures.first_opening == datetime(2026, 6, 11, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
