"""Staff views behind the admin: campaign controls and live stats. Parse, call a service, answer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .models import Campaign

ACTIONS = {
    "launch": ("campaigns.change_campaign", lambda c, r: services.campaign_launch(campaign=c, user=r.user)),
    "pause": ("campaigns.change_campaign", lambda c, r: services.campaign_pause(campaign=c)),
    "resume": ("campaigns.change_campaign", lambda c, r: services.campaign_resume(campaign=c)),
    "cancel": ("campaigns.change_campaign", lambda c, r: services.campaign_cancel(campaign=c)),
    "resend_failed": ("campaigns.change_campaign", lambda c, r: services.campaign_resend_failed(campaign=c)),
    "test_send": (
        "campaigns.change_campaign",
        lambda c, r: services.campaign_test_send(campaign=c, phone=r.POST.get("phone", ""), user=r.user),
    ),
}

DONE = {
    "launch": lambda res: f"Launched to {res.recipients} recipients ({res.suppressed} opted out, skipped).",
    "pause": lambda res: "Paused. Messages already being sent will finish.",
    "resume": lambda res: "Resumed. Only messages not yet sent will go.",
    "cancel": lambda res: f"Canceled. {res} waiting messages were canceled.",
    "resend_failed": lambda res: f"{res} new messages queued for recipients whose message failed.",
    "test_send": lambda res: f"Test message queued to {res.to}.",
}


@staff_member_required
@require_POST
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("sender"), pk=pk)
    back = reverse("admin:campaigns_campaign_change", args=[pk])
    if action not in ACTIONS:
        messages.error(request, f"Unknown action {action!r}.")
        return redirect(back)
    permission, call = ACTIONS[action]
    if not request.user.has_perm(permission):
        messages.error(request, "You may not change campaigns.")
        return redirect(back)
    try:
        result = call(campaign, request)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, DONE[action](result))
    return redirect(back)


@staff_member_required
@require_GET
def campaign_stats(request: HttpRequest, pk: int) -> JsonResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    return JsonResponse(selectors.campaign_summary(campaign=campaign))
