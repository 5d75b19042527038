"""The product's admin site: its name in the header and the browser's title, no link to a public site (there is
none), and its home page, which shows an overview (campaigns in flight, scheduled, recent failures, volume per
provider, senders that need attention) above the list of models, each panel only to staff who may view what it
links to."""

from __future__ import annotations

from django.contrib import admin

PRODUCT_NAME = "Campaign messaging"


class ProductAdminSite(admin.AdminSite):
    site_header = PRODUCT_NAME
    site_title = PRODUCT_NAME
    index_title = "Overview"
    site_url = None  # no public site: the header's name leads to this overview

    def index(self, request, extra_context=None):
        return super().index(request, extra_context={"overview": overview_panels(request.user),
                                                     **(extra_context or {})})


def overview_panels(user) -> dict:
    """The overview's panels this user may see: the campaign panels with ``campaigns.view_campaign``, the provider
    and sender panels with ``messaging.view_sender`` (they link to campaign and sender pages). Empty: the home
    shows the plain list of models."""
    from campaigns import overview
    from messaging import selectors as messaging

    panels: dict = {}
    if user.has_perm("campaigns.view_campaign"):
        panels.update(
            campaigns=True,
            paused_automatically=overview.campaigns_paused_automatically(),
            in_flight=overview.campaigns_in_flight(),
            in_flight_count=overview.campaigns_in_flight_count(),
            scheduled=overview.campaigns_scheduled(),
            scheduled_count=overview.campaigns_scheduled_count(),
            failures=overview.failures_recent(),
            failures_days=overview.FAILURES_DAYS,
            pace_minutes=messaging.PACE_MINUTES,
        )
    if user.has_perm("messaging.view_sender"):
        panels.update(
            senders=True,
            volume=overview.providers_volume(),
            periods=overview.period_starts(),
            attention=messaging.senders_attention(),
            callbacks_hours=messaging.CALLBACKS_REFUSED_HOURS,
        )
    return panels
