"""The callback Basic-auth password leaves the plain ``Sender.options`` for an encrypted field of its own."""

from django.db import migrations

import messaging.fields


def options_to_field(apps, schema_editor):
    Sender = apps.get_model("messaging", "Sender")
    for sender in Sender.objects.filter(options__has_key="callback_password"):
        options = dict(sender.options or {})
        password = options.pop("callback_password", "")
        sender.callback_password = str(password or "")
        sender.options = options
        sender.save(update_fields=["callback_password", "options"])


def field_to_options(apps, schema_editor):
    Sender = apps.get_model("messaging", "Sender")
    for sender in Sender.objects.exclude(callback_password=""):
        password = sender.callback_password
        if isinstance(password, messaging.fields.Undecryptable):
            raise RuntimeError(
                f"Sender {sender.pk}: {messaging.fields.UNDECRYPTABLE_MESSAGE}; set the right CREDENTIALS_KEY first"
            )
        sender.options = {**(sender.options or {}), "callback_password": password}
        sender.save(update_fields=["options"])


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0002_sending_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="sender",
            name="callback_password",
            field=messaging.fields.EncryptedTextField(
                blank=True,
                default="",
                help_text="HTTP Basic password required on callbacks (Bandwidth, Fone Dynamics); encrypted, write-only.",
            ),
        ),
        migrations.RunPython(options_to_field, field_to_options),
    ]
