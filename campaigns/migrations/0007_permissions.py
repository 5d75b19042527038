from django.db import migrations


def create_roles(apps, schema_editor):
    """The custom permissions exist only after a migration run's end; create them now (and every app's
    default ones), then the three groups of ``campaigns.roles``."""
    from django.contrib.auth.management import create_permissions

    from campaigns.roles import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps, strict=False)  # a permission a later migration creates is granted by that one


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0006_compose_windows_prices"),
        ("messaging", "0007_permissions_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),  # Administrators see and clear login lockouts
    ]

    operations = [
        migrations.AlterModelOptions(
            name="campaign",
            options={
                "ordering": ["-id"],
                "permissions": [
                    ("launch_campaign", "Can launch, schedule, pause and resume a campaign"),
                    ("cancel_campaign", "Can cancel a campaign"),
                    ("resend_campaign", "Can resend a campaign's failed messages"),
                    ("test_send_campaign", "Can send a campaign's test message"),
                    ("export_campaign", "Can export a campaign's results"),
                ],
            },
        ),
        migrations.AlterModelOptions(
            name="contact",
            options={"ordering": ["id"], "permissions": [("export_contact", "Can export contacts and lists")]},
        ),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
