"""Each launched campaign gets the dispatch record the send path now reads instead of the campaign: its
template, media, senders, backup sender and whether sending is allowed. Messages still waiting get the
campaign's media now (it used to be filled in at send time)."""

from django.db import migrations

STATES = {"sending": "sending", "completed": "sending", "paused": "paused", "canceled": "canceled"}
WAITING = ("queued", "errored")


def forwards(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Dispatch = apps.get_model("messaging", "Dispatch")
    Message = apps.get_model("messaging", "Message")
    for campaign in Campaign.objects.filter(status__in=list(STATES)).iterator():
        more = [s.pk for s in campaign.more_senders.order_by("id") if s.pk != campaign.sender_id]
        Dispatch.objects.get_or_create(
            campaign_id=campaign.pk,
            defaults={
                "name": campaign.name,
                "state": STATES[campaign.status],
                "template": campaign.body or "",
                "media_urls": list(campaign.media_urls or []),
                "sender_ids": [campaign.sender_id, *more],
                "backup_sender_id": campaign.backup_sender_id,
            },
        )
        if campaign.media_urls:
            Message.objects.filter(campaign_id=campaign.pk, status__in=WAITING).update(
                media_urls=list(campaign.media_urls)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_campaign_more_senders"),
        ("messaging", "0005_dispatch_event_parts"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
