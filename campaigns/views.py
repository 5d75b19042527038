"""Staff views behind the admin: campaign controls, the confirmation before anything is sent, the compose
preview, live stats and the export of a campaign's results. Parse, call a service, answer."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from messaging.services import audit_record

from . import exports, preflight, selectors, services
from .models import Campaign

# Each control and the permission it needs (see campaigns.roles): what sends or stops messages is a permission
# of its own, never "change".
ACTIONS = {
    "pause": ("campaigns.launch_campaign", lambda c, r: services.campaign_pause(campaign=c, user=r.user)),
    "resume": ("campaigns.launch_campaign", lambda c, r: services.campaign_resume(campaign=c, user=r.user)),
    "cancel": ("campaigns.cancel_campaign", lambda c, r: services.campaign_cancel(campaign=c, user=r.user)),
    "test_send": (
        "campaigns.test_send_campaign",
        lambda c, r: services.campaign_test_send(campaign=c, phone=r.POST.get("phone", ""), user=r.user),
    ),
}

DONE = {
    "pause": lambda res: "Paused. Messages already being sent will finish.",
    "resume": lambda res: "Resumed. Only messages not yet sent will go.",
    "cancel": lambda res: f"Canceled. {res} waiting messages were canceled.",
    "test_send": lambda res: f"Test message queued to {res.to}.",
}


@staff_member_required
@require_POST
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action in CONFIRMED:  # sent only from the confirmation page
        return redirect(reverse("campaigns:campaign_confirm", args=[pk, action]))
    if action not in ACTIONS:
        raise Http404("No such action.")
    permission, call = ACTIONS[action]
    if not request.user.has_perm(permission):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign.objects.select_related("sender"), pk=pk)
    back = reverse("admin:campaigns_campaign_change", args=[pk])
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
    if not request.user.has_perm("campaigns.view_campaign"):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign, pk=pk)
    return JsonResponse(selectors.campaign_dashboard(campaign=campaign))


# Each export format: its content type and the stream of its content (text is encoded as UTF-8 on the way).
EXPORTS = {
    "csv": ("text/csv; charset=utf-8", exports.results_csv),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", exports.results_xlsx),
}


@staff_member_required
@require_GET
def campaign_export(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    """The campaign's results as the results table filters them (same query parameters), as CSV or XLSX,
    streamed; recorded in the audit log."""
    if fmt not in EXPORTS:
        raise Http404("No such format.")
    if not request.user.has_perm("campaigns.export_campaign"):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign, pk=pk)
    filters = selectors.ResultFilters.from_query(request.GET)
    described = ", ".join(f"{name}={value}" for name, value in filters.params().items()) or "all messages"
    audit_record(user=request.user, obj=campaign, action=f"Exported its results ({fmt.upper()})", detail=described)
    content_type, stream = EXPORTS[fmt]
    response = StreamingHttpResponse(stream(campaign=campaign, filters=filters), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.{fmt}"'
    return response


# ---- the confirmation before anything is sent ------------------------------------------------------------

CONFIRMED = {
    "launch": "Launch now",
    "schedule": "Schedule",
    "resend_failed": "Resend to failed",
}
CONFIRMED_PERMISSION = {
    "launch": "campaigns.launch_campaign",
    "schedule": "campaigns.launch_campaign",
    "resend_failed": "campaigns.resend_campaign",
}


def _figures(campaign: Campaign, action: str) -> preflight.Preflight:
    if action == "resend_failed":
        return preflight.campaign_resend_preflight(campaign=campaign)
    return preflight.campaign_preflight(campaign=campaign, action=action)


def _current_fingerprint(campaign: Campaign, action: str) -> str:
    if action == "resend_failed":
        return preflight.campaign_resend_preflight(campaign=campaign).fingerprint
    return preflight.campaign_fingerprint(campaign=campaign, recipients=preflight.audience_count(campaign=campaign))


def _confirmed_do(request: HttpRequest, campaign: Campaign, action: str) -> str:
    """Run the confirmed action; returns what to tell staff. CampaignError when it is not allowed now."""
    if action == "launch":
        result = services.campaign_launch(campaign=campaign, user=request.user)
        return f"Launched to {result.recipients} recipients ({result.suppressed} opted out, skipped)."
    if action == "schedule":
        if not campaign.scheduled_at:
            raise services.CampaignError("Set a time to schedule it at.")
        if campaign.scheduled_at <= timezone.now():
            raise services.CampaignError("Its scheduled time has passed: set a new time or launch it now.")
        services.campaign_schedule(campaign=campaign, at=campaign.scheduled_at, user=request.user)
        local = timezone.localtime(campaign.scheduled_at)
        return f"Scheduled for {local:%Y-%m-%d %H:%M} ({timezone.get_current_timezone_name()})."
    created = services.campaign_resend_failed(campaign=campaign, user=request.user)
    return f"{created} new messages queued for recipients whose message failed."


@staff_member_required
def campaign_confirm(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """GET: the figures of what ``action`` would send, with a button to confirm. POST: do it, provided the
    audience and the content are still what was shown (else show the new figures)."""
    if action not in CONFIRMED:
        raise Http404("No such action.")
    if not request.user.has_perm(CONFIRMED_PERMISSION[action]):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign.objects.select_related("sender", "backup_sender"), pk=pk)
    back = reverse("admin:campaigns_campaign_change", args=[pk])
    if request.method == "POST":
        if request.POST.get("fingerprint") != _current_fingerprint(campaign, action):
            messages.warning(request, "The audience or the message changed since these figures were shown. "
                                      "Check them again before confirming.")
        else:
            try:
                done = _confirmed_do(request, campaign, action)
            except (services.CampaignError, ValueError) as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, done)
                return redirect(back)
    problems: list[str] = []
    warnings: list[str] = []
    if action in ("launch", "schedule") and campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        problems = [f"This campaign is {campaign.get_status_display().lower()}; only a draft or a scheduled "
                    "campaign can be launched or scheduled."]
    elif action in ("launch", "schedule"):
        problems, warnings = services.campaign_checks(campaign=campaign)  # the last media check: no network
    context = {
        **admin.site.each_context(request),
        "title": f"{CONFIRMED[action]}: {campaign.name}",
        "opts": Campaign._meta,
        "original": campaign,
        "action": action,
        "action_label": CONFIRMED[action],
        "figures": _figures(campaign, action),
        "problems": problems,
        "warnings": warnings,
        "back": back,
        "timezone_name": timezone.get_current_timezone_name(),
    }
    return TemplateResponse(request, "admin/campaigns/campaign/confirm.html", context)


@staff_member_required
@require_POST
def compose_preview(request: HttpRequest) -> JsonResponse:
    """The compose page's live preview: the message as a few real recipients of the chosen lists get it."""
    if not (request.user.has_perm("campaigns.change_campaign") or request.user.has_perm("campaigns.add_campaign")):
        raise PermissionDenied
    body = request.POST.get("body", "")[:20000]
    list_ids = [int(v) for v in request.POST.getlist("lists") if v.isdigit()][:1000]
    return JsonResponse(preflight.compose_preview(body=body, list_ids=list_ids))
