"""Media URLs are asked their size and type when a campaign is saved and when it is launched, never when one of
its pages is viewed: the campaign keeps the result of the last check, and its pages show that."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from tests.campaigns.test_campaign_admin import form_data
from tests.support import MediaHandler

pytestmark = pytest.mark.django_db

ADD = "/admin/campaigns/campaign/add/"


def _pages(admin_client, campaign) -> list[str]:
    """Every page that shows a draft campaign's checks: its own page, the launch and schedule confirmations, the
    bulk launch confirmation."""
    base = f"/admin/campaigns/campaign/{campaign.pk}"
    return [
        admin_client.get(f"{base}/change/").content.decode(),
        admin_client.get(f"{base}/confirm/launch/").content.decode(),
        admin_client.get(f"{base}/confirm/schedule/").content.decode(),
        admin_client.post("/admin/campaigns/campaign/", {"action": "launch_selected",
                                                         "_selected_action": [campaign.pk]}).content.decode(),
    ]


def test_saving_asks_each_url_once_and_the_pages_show_what_was_found_without_asking(
        admin_client, make_sender, make_audience, media_server):
    sender, audience = make_sender("plivo"), make_audience(3)
    data = form_data(sender, [audience], media_urls=f"{media_server}/small.png\n{media_server}/unsized.png")
    assert admin_client.post(ADD, data).status_code == 302
    assert sorted(MediaHandler.requests) == ["/small.png", "/unsized.png"]
    campaign = Campaign.objects.get()
    unsized = f"{media_server}/unsized.png did not say its size (no Content-Length)"
    assert campaign.media_checked_at is not None
    assert campaign.media_check["problems"] == [] and campaign.media_check["warnings"][0].startswith(unsized)

    MediaHandler.requests.clear()
    for _ in range(3):
        for page in _pages(admin_client, campaign):
            assert unsized in page or "Send now to 3 recipients" in page
    assert MediaHandler.requests == []  # viewing asked no server


def test_the_launch_asks_again_and_keeps_what_it_found(admin_client, engine, make_sender, make_audience,
                                                      media_server):
    sender, audience = make_sender("plivo"), make_audience(3)
    data = form_data(sender, [audience], media_urls=f"{media_server}/small.png")
    assert admin_client.post(ADD, data).status_code == 302
    campaign = Campaign.objects.get()
    saved_at = campaign.media_checked_at
    MediaHandler.sizes = {**MediaHandler.sizes, "/small.png": 6 * 1024 * 1024}  # the file grew since
    try:
        page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/")
        assert "Plivo accepts" not in page.content.decode()  # the last check's result: it was small then
        MediaHandler.requests.clear()
        response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/confirm/launch/",
                                     {"fingerprint": page.context["figures"].fingerprint}, follow=True)
    finally:
        MediaHandler.sizes = {**MediaHandler.sizes, "/small.png": 1000}
    assert MediaHandler.requests == ["/small.png"]
    said = (f"The media files total 6,291,456 bytes (6.0 MB) ({media_server}/small.png 6,291,456 bytes (6.0 MB)); "
            "Plivo accepts at most 5,242,880 bytes (5.0 MB) in one message.")
    assert said in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.media_checked_at > saved_at
    assert campaign.media_check["problems"][0].startswith(said)
    MediaHandler.requests.clear()
    assert all(said in page for page in _pages(admin_client, campaign)[:3])  # shown from now on, not asked
    assert MediaHandler.requests == []


def test_media_changed_without_a_check_is_said_and_checked_at_launch(admin_client, engine, make_sender,
                                                                     make_campaign, make_audience, media_server):
    campaign = make_campaign(make_sender("plivo"), [make_audience(2)], media_urls=[f"{media_server}/big.png"])
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "have not been checked with their servers since they were last changed" in page
    assert MediaHandler.requests == []
    from campaigns.services import CampaignError, campaign_launch

    with pytest.raises(CampaignError, match="big.png 6,291,456 bytes"):
        campaign_launch(campaign=campaign)
    assert MediaHandler.requests == ["/big.png"]
    campaign.refresh_from_db()
    assert campaign.media_check["urls"] == [f"{media_server}/big.png"]
