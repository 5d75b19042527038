"""The campaign form in the admin: a time given is confirmed on the next page, then schedules the campaign
(through the service and its checks); no time makes it a draft again; a past time is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign

pytestmark = pytest.mark.django_db


def form_data(sender, lists, **overrides) -> dict:
    data = {
        "name": "Spring sale",
        "sender": sender.pk,
        "backup_sender": "",
        "body": "Hi {{ first_name }}",
        "media_urls": "",
        "lists": [lst.pk for lst in lists],
        "scheduled_at_0": "",
        "scheduled_at_1": "",
    }
    data.update(overrides)
    return data


def when(at) -> dict:
    local = timezone.localtime(at)
    return {"scheduled_at_0": local.strftime("%Y-%m-%d"), "scheduled_at_1": local.strftime("%H:%M:%S")}


def test_a_time_schedules_the_campaign_and_no_time_makes_it_a_draft(admin_client, make_sender, make_audience):
    sender, audience = make_sender("plivo"), make_audience(3)
    at = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = admin_client.post("/admin/campaigns/campaign/add/", form_data(sender, [audience], **when(at)))
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Spring sale")
    assert response["Location"] == f"/admin/campaigns/campaign/{campaign.pk}/confirm/schedule/"
    assert (campaign.status, campaign.scheduled_at) == ("draft", at)  # until the schedule is confirmed
    figures = admin_client.get(response["Location"]).context["figures"]
    assert figures.recipients == 3
    assert admin_client.post(response["Location"], {"fingerprint": figures.fingerprint}).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("scheduled", at)
    assert campaign.created_by.username == "admin"

    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", form_data(sender, [audience]))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("draft", None)


def test_a_past_time_is_refused_with_a_clear_message(admin_client, make_sender, make_audience):
    sender, audience = make_sender("plivo"), make_audience(3)
    at = timezone.now() - timedelta(hours=1)
    response = admin_client.post("/admin/campaigns/campaign/add/", form_data(sender, [audience], **when(at)))
    assert response.status_code == 200
    assert "Choose a time in the future" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_campaign_that_cannot_be_sent_is_saved_as_a_draft_and_says_why(admin_client, make_sender):
    sender = make_sender("plivo")
    at = timezone.now() + timedelta(days=1)
    response = admin_client.post("/admin/campaigns/campaign/add/", form_data(sender, [], **when(at)), follow=True)
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.status == "draft"
    page = response.content.decode()
    assert "Choose at least one audience list." in page
    assert 'id="confirm-schedule"' not in page


def test_the_campaign_page_points_staff_at_messages_waiting_for_their_decision(
    admin_client, make_sender, make_audience, make_campaign
):
    from campaigns.services import campaign_launch
    from messaging.models import Message
    from messaging.services import messages_move

    campaign = make_campaign(make_sender("cloudvno"), [make_audience(3)])
    campaign_launch(campaign=campaign, check_media=False)
    first = Message.objects.filter(campaign=campaign).order_by("id").first()
    messages_move(Message.objects.filter(pk=first.pk), Message.Status.UNCONFIRMED, from_statuses=("queued",))

    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "1 message with an unknown outcome" in page
    link = f"/admin/messaging/message/?campaign__exact={campaign.pk}&amp;status__exact=unconfirmed"
    assert link in page
    listing = admin_client.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200 and first.to in listing.content.decode()


def test_a_sender_whose_secrets_cannot_be_read_is_a_reason_shown_never_a_server_error(
    admin_client, make_sender, make_audience, make_campaign, settings
):
    """A wrong CREDENTIALS_KEY makes a sender unusable; every campaign screen says so and nothing answers 500."""
    from campaigns.models import Campaign
    from messaging.models import Message

    campaign = make_campaign(make_sender("plivo", name="Main line"), [make_audience(2)])
    settings.CREDENTIALS_KEYS = ["x3TyNa1m0iwh9s0dAg3CKNeqZhVrR1sbHEb4i0Z7mTs="]  # not the key they were saved with

    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()
    for action, data in (("launch", {}), ("test_send", {"phone": "+12125550199"})):
        response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/action/{action}/", data, follow=True)
        assert response.status_code == 200 and "cannot be decrypted" in response.content.decode(), action
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                                 form_data(campaign.sender, [make_audience(1, prefix="+1646555")], name="Renamed"))
    assert response.status_code == 200 and "cannot be decrypted" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert not Message.objects.exists()


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def test_an_uploaded_image_becomes_the_campaigns_public_media(admin_client, make_sender, make_audience, settings,
                                                              tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = str(tmp_path)
    sender, audience = make_sender("plivo"), make_audience(3)
    data = form_data(sender, [audience], media_upload=SimpleUploadedFile("Shop front.png", PNG, "image/png"),
                     media_urls="")
    response = admin_client.post("/admin/campaigns/campaign/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Spring sale")
    [url] = campaign.media_urls
    assert url.startswith(f"{settings.PUBLIC_BASE_URL}/media/campaign-media/") and url.endswith(".png")
    served = admin_client.get(url.removeprefix(settings.PUBLIC_BASE_URL))
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert url in page and "[]" not in page.split('id="campaign-panel"')[0].split("Media (MMS)")[-1][:2000]


def test_media_a_provider_cannot_take_is_refused_naming_the_limit(admin_client, make_sender, make_audience):
    from django.core.files.uploadedfile import SimpleUploadedFile

    sender, audience = make_sender("sendblue"), make_audience(3)
    data = form_data(sender, [audience], media_upload=[SimpleUploadedFile("a.png", PNG, "image/png"),
                                                       SimpleUploadedFile("b.png", PNG, "image/png")])
    response = admin_client.post("/admin/campaigns/campaign/add/", data)
    assert response.status_code == 200
    assert "Sendblue accepts at most 1 media file" in response.content.decode()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("body, said", [
    ("Hi {{ frist_name }}", "Unknown variable {{ frist_name }} (did you mean {{ first_name }}?)"),
    ("{% include 'x.txt' %}", "The {% include %} tag is not allowed in messages"),
    ("{% now 'Y' %}", "The {% now %} tag is not allowed in messages"),
])
def test_a_template_outside_the_message_language_is_refused_when_saving(admin_client, make_sender, make_audience,
                                                                       body, said):
    from django.utils.html import escape

    sender, audience = make_sender("plivo"), make_audience(3)
    response = admin_client.post("/admin/campaigns/campaign/add/", form_data(sender, [audience], body=body))
    assert response.status_code == 200
    assert escape(said) in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_media_url_over_the_providers_limit_is_refused_when_saving(admin_client, make_sender, make_audience,
                                                                     media_server):
    sender, audience = make_sender("plivo"), make_audience(3)
    data = form_data(sender, [audience], media_urls=f"{media_server}/small.png\n{media_server}/big.png")
    response = admin_client.post("/admin/campaigns/campaign/add/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "The media files total 6,292,456 bytes (6.0 MB)" in page
    assert "Plivo accepts at most 5,242,880 bytes (5.0 MB) in one message." in page
    assert not Campaign.objects.exists()
    data = form_data(sender, [audience], media_urls=f"{media_server}/small.png")
    assert admin_client.post("/admin/campaigns/campaign/add/", data).status_code == 302
    assert Campaign.objects.get().media_urls == [f"{media_server}/small.png"]
