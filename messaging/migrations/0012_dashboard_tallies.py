import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncHour, TruncMinute

# A message the provider accepted has its send time, whatever it became (a failure reported later included).
SENT = ("sent", "delivered", "undelivered", "failed")


def tallies_fill(apps, schema_editor):
    """The dashboards' figures of the messages stored before they were kept as things happen: outcomes per
    minute and per sender, failures by cause and code, messages a resend replaced, replies and opt-outs. Each
    figure is written in shard 0."""
    Message = apps.get_model("messaging", "Message")
    ConsentEvent = apps.get_model("messaging", "ConsentEvent")
    CampaignMinute = apps.get_model("messaging", "CampaignMinute")
    CampaignTally = apps.get_model("messaging", "CampaignTally")
    SenderHour = apps.get_model("messaging", "SenderHour")
    outbound = Message.objects.filter(direction="outbound")
    # (status counted, the messages, the time it happened)
    events = [("sent", outbound.filter(status__in=SENT, sent_at__isnull=False), "sent_at"),
              ("delivered", outbound.filter(status="delivered"), "delivered_at"),
              ("undelivered", outbound.filter(status="undelivered"), "updated_at"),
              ("failed", outbound.filter(status="failed"), "updated_at")]
    minutes, tallies, hours = [], [], []
    for status, rows, stamp in events:
        rows = rows.exclude(**{f"{stamp}__isnull": True}).order_by()
        for row in (rows.filter(campaign__isnull=False).annotate(at=TruncMinute(stamp))
                    .values("campaign_id", "at").annotate(n=Count("id"))):
            minutes.append(CampaignMinute(campaign_id=row["campaign_id"], minute=row["at"], status=status,
                                          count=row["n"]))
        for row in rows.annotate(at=TruncHour(stamp)).values("sender_id", "at").annotate(n=Count("id")):
            hours.append(SenderHour(sender_id=row["sender_id"], hour=row["at"], status=status, count=row["n"]))
        failure = status in ("undelivered", "failed")
        keys = ("campaign_id", "sender_id", "error_cause", "error_code") if failure else ("campaign_id", "sender_id")
        for row in rows.filter(campaign__isnull=False).values(*keys).annotate(n=Count("id")):
            tallies.append(CampaignTally(
                campaign_id=row["campaign_id"], sender_id=row["sender_id"], event=status,
                cause=(row.get("error_cause") or "unknown") if failure else "",
                code=(row.get("error_code") or "")[:40] if failure else "", count=row["n"]))
    # A failed message is replaced when a resend gave its recipient a later round: one grouped query.
    later = outbound.filter(campaign_id=OuterRef("campaign_id"), to=OuterRef("to"), round__gt=OuterRef("round"))
    replaced = (outbound.filter(campaign__isnull=False, status__in=("failed", "undelivered")).filter(Exists(later))
                .order_by().values("campaign_id", "sender_id", "status").annotate(n=Count("id")))
    for row in replaced:
        tallies.append(CampaignTally(campaign_id=row["campaign_id"], sender_id=row["sender_id"], event="superseded",
                                     cause=row["status"], count=row["n"]))
    replies = Message.objects.filter(direction="inbound", reply_campaign__isnull=False).order_by()
    for row in replies.values("reply_campaign_id", "sender_id").annotate(
            n=Count("id"), numbers=Count("to", distinct=True), helps=Count("id", filter=Q(keyword="help"))):
        for event, n in (("reply", row["n"]), ("replier", row["numbers"]), ("help", row["helps"])):
            if n:
                tallies.append(CampaignTally(campaign_id=row["reply_campaign_id"], sender_id=row["sender_id"],
                                             event=event, count=n))
    for entry in ConsentEvent.objects.filter(action="opt_out", message__isnull=False).select_related("message"):
        campaign_id = entry.message.reply_campaign_id or entry.message.campaign_id
        if campaign_id:
            tallies.append(CampaignTally(campaign_id=campaign_id, sender_id=entry.message.sender_id, event="opt_out",
                                         count=1))
    CampaignMinute.objects.bulk_create(minutes, batch_size=1000)
    SenderHour.objects.bulk_create(hours, batch_size=1000)
    merged = {}
    for tally in tallies:
        key = (tally.campaign_id, tally.sender_id, tally.event, tally.cause, tally.code)
        if key in merged:
            merged[key].count += tally.count
        else:
            merged[key] = tally
    CampaignTally.objects.bulk_create(merged.values(), batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0009_number_flags_pause_reason'),
        ('messaging', '0011_reply_once_reply_campaign'),
    ]

    operations = [
        migrations.AddField(
            model_name='senderpace',
            name='open_reason',
            field=models.CharField(blank=True, db_default='', default='', help_text='why the circuit last opened', max_length=300),
        ),
        migrations.AddField(
            model_name='senderpace',
            name='open_cause',
            field=models.CharField(blank=True, db_default='', default='', help_text='the cause (messaging.providers.base.causes) of the failures that last opened it', max_length=20),
        ),
        migrations.CreateModel(
            name='CallbackTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('accepted', models.BooleanField()),
                ('reason', models.CharField(blank=True, max_length=120)),
                ('shard', models.PositiveSmallIntegerField(default=0)),
                ('count', models.BigIntegerField(default=0)),
                ('last_at', models.DateTimeField()),
                ('sender', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='messaging.sender')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('sender', 'hour', 'accepted', 'reason', 'shard'), name='callback_tally_once')],
            },
        ),
        migrations.CreateModel(
            name='CampaignMinute',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('minute', models.DateTimeField()),
                ('status', models.CharField(max_length=12)),
                ('shard', models.PositiveSmallIntegerField(default=0)),
                ('count', models.BigIntegerField(default=0)),
                ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='campaigns.campaign')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('campaign', 'minute', 'status', 'shard'), name='campaign_minute_once')],
            },
        ),
        migrations.CreateModel(
            name='CampaignTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(max_length=12)),
                ('cause', models.CharField(blank=True, max_length=20)),
                ('code', models.CharField(blank=True, max_length=40)),
                ('shard', models.PositiveSmallIntegerField(default=0)),
                ('count', models.BigIntegerField(default=0)),
                ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='campaigns.campaign')),
                ('sender', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='messaging.sender')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('campaign', 'sender', 'event', 'cause', 'code', 'shard'), name='campaign_tally_once')],
            },
        ),
        migrations.CreateModel(
            name='SenderHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('status', models.CharField(max_length=12)),
                ('shard', models.PositiveSmallIntegerField(default=0)),
                ('count', models.BigIntegerField(default=0)),
                ('sender', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='messaging.sender')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('sender', 'hour', 'status', 'shard'), name='sender_hour_once')],
            },
        ),
        migrations.RunPython(tallies_fill, migrations.RunPython.noop),
    ]
