import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0007_permissions_audit"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallbackNonce",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("nonce", models.CharField(help_text="the signature scheme's name, then the nonce", max_length=100)),
                ("seen_at", models.DateTimeField(db_index=True)),
                (
                    "sender",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="messaging.sender"
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("sender", "nonce"), name="callback_nonce_once")],
            },
        ),
    ]
