from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messaging import audience

        from . import selectors, services

        # Messaging keeps numbers, not contacts: it asks us for template fields and time zones, and tells us of
        # consent changes, numbers providers report as unusable, and campaigns to pause.
        audience.register(contact_fields=selectors.contact_template_fields,
                          consent_changed=services.contacts_consent_mirror,
                          contact_timezones=selectors.contact_timezones,
                          number_flagged=services.contacts_number_flag,
                          campaign_paused=services.campaign_pause_for)
