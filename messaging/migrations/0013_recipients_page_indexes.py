from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0009_number_flags_pause_reason'),
        ('messaging', '0012_dashboard_tallies'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['campaign', 'status', 'id'], name='message_campaign_status_id'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('error_cause', ''), _negated=True), fields=['campaign', 'error_cause', 'id'], name='message_campaign_cause_id'),
        ),
        migrations.RemoveIndex(
            model_name='message',
            name='message_campaign_status',
        ),
    ]
