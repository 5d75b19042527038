"""The campaign admin: compose, check and control a campaign."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from messaging.personalize import template_errors
from messaging.providers import provider_choices
from messaging.providers.base import CAUSE_CHOICES
from messaging.selectors import MESSAGE_STATUSES

from .. import preflight, selectors, services
from ..media import MediaField, media_links_html, media_problems, media_save
from ..models import Campaign, Price


class CampaignForm(forms.ModelForm):
    media = MediaField(required=False, label="Media (MMS)")
    url_problems: tuple[str, ...] = ()  # media URLs over a provider's limit, asked before the admin's transaction

    class Meta:
        model = Campaign
        fields = ("name", "sender", "more_senders", "backup_sender", "body", "lists", "scheduled_at",
                  "window_start", "window_end", "timezone")
        widgets = {
            "body": forms.Textarea(attrs={"rows": 5, "class": "vLargeTextField compose-body", "spellcheck": "true"}),
            "window_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "window_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.media_urls:
            self.initial["media"] = list(self.instance.media_urls)
        if "timezone" in self.fields:
            self.fields["timezone"] = forms.ChoiceField(
                label="Campaign timezone", required=False, choices=[("", f"server default ({settings.TIME_ZONE})")]
                + [(name, name) for name in sorted(zoneinfo.available_timezones())],
                help_text=self.fields["timezone"].help_text)
        if "scheduled_at" in self.fields:
            self.fields["scheduled_at"].help_text = (
                f"In your timezone ({timezone.get_current_timezone_name()}). Saving with a time asks you to "
                "confirm the schedule, with its recipients and cost.")

    def clean(self):
        """The campaign's own checks (``services.campaign_checks``) on what was entered, each shown beside the
        field it is about, and the media (uploaded files and URLs) against each chosen sender's provider: count,
        and the type and size of uploads. The servers of media URLs are asked their type and size on the
        confirmation page, outside the admin's transaction, not while saving."""
        cleaned = super().clean()
        sender = cleaned.get("sender")
        media = cleaned.get("media")
        if sender and not self.errors:
            planned = [*media.urls, *(f.name for f in media.files)] if media else []
            draft = Campaign(sender=sender, body=cleaned.get("body") or "", media_urls=planned)
            senders = [sender, *[s for s in (cleaned.get("more_senders") or []) if s.pk != sender.pk]]
            problems, _warnings = services.campaign_checks(campaign=draft, senders=senders)
            if media:
                problems += media_problems(senders=senders, urls=media.urls, uploads=media.files, ask_servers=False)
                problems += list(self.url_problems)
            shown = set()
            for problem in problems:
                field = "media" if getattr(problem, "field", "media") in ("media_urls", "media") else problem.field
                if field in self.fields and field != "lists" and str(problem) not in shown:
                    shown.add(str(problem))
                    self.add_error(field, str(problem))
        return cleaned

    def clean_scheduled_at(self):
        at = self.cleaned_data.get("scheduled_at")
        if at and "scheduled_at" in self.changed_data and at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future, or use Launch now on the campaign page.")
        return at

    def clean_body(self):
        body = self.cleaned_data.get("body") or ""
        error = template_errors(body, preflight.known_variables())
        if error:
            raise forms.ValidationError(error)
        return body

    def clean_window_end(self):
        start, end = self.cleaned_data.get("window_start"), self.cleaned_data.get("window_end")
        if (start is None) != (end is None):
            raise forms.ValidationError("Give both ends of the sending window, or neither.")
        if start is not None and start == end:
            raise forms.ValidationError("The window opens and closes at the same time; leave both empty to send at "
                                        "any hour.")
        return end


@dataclass(frozen=True)
class _MediaUrlCheck:
    """The media URLs posted, asked of their servers when saving, for these senders."""

    senders: list
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _list_label(contact_list, counts) -> str:
    """A list in the audience picker, with who is on it."""
    if counts is None:
        return str(contact_list)
    return (f"{contact_list.name} ({counts.members} members, {counts.opted_out} opted out, "
            f"{counts.landline} landline)")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "status_text", "sender", "scheduled_at", "recipient_count", "suppressed_count",
                    "launched_at", "completed_at", "created_by")
    list_filter = ("status", "sender")
    search_fields = ("name", "body")
    list_select_related = ("sender", "created_by")
    filter_horizontal = ("lists", "more_senders")
    change_form_template = "admin/campaigns/campaign/change_form.html"
    actions = ["launch_selected"]

    @admin.display(description="status", ordering="status")
    def status_text(self, obj):
        """The status, and why the product paused the campaign when it did."""
        if obj.status == Campaign.Status.PAUSED and obj.paused_reason:
            return format_html('{} <span class="paused-reason" title="{}">(paused automatically)</span>',
                               obj.get_status_display(), obj.paused_reason)
        return obj.get_status_display()

    fieldsets = (
        (None, {"fields": ("name", "sender", "more_senders", "backup_sender")}),
        ("Message", {"fields": ("body", "media")}),
        ("Audience", {"fields": ("lists",)}),
        ("When", {"fields": ("scheduled_at", ("window_start", "window_end"), "timezone"),
                  "description": "Leave the time empty to keep a draft and launch it yourself. A sending window "
                                 "holds each message until it is daytime where its recipient is."}),
    )
    EDITABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)

    def _composing(self, request, obj) -> bool:
        """The form is shown for composing (a draft or scheduled campaign, by someone who may change it)."""
        return obj is None or (obj.status in self.EDITABLE and self.has_change_permission(request, obj))

    def has_delete_permission(self, request, obj=None):
        # A launched campaign keeps its messages and their history: cancel it instead.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in self.EDITABLE)

    def delete_queryset(self, request, queryset):
        launched = queryset.exclude(status__in=self.EDITABLE)
        kept = list(launched.values_list("name", flat=True))
        if kept:
            self.message_user(request, f"Kept {len(kept)} launched campaign(s), which keep their history: "
                                       f"{', '.join(kept[:10])}. Cancel them instead.", messages.WARNING)
        super().delete_queryset(request, queryset.filter(status__in=self.EDITABLE))

    def get_readonly_fields(self, request, obj=None):
        if not self._composing(request, obj):
            return ("name", "sender", "more_senders", "backup_sender", "body", "media_links", "lists", "scheduled_at",
                    "window_start", "window_end", "timezone")
        return ()

    def get_fieldsets(self, request, obj=None):
        if not self._composing(request, obj):  # sent, or only viewed: the media as links, not a form field
            return [(name, {**opts, "fields": tuple("media_links" if f == "media" else f for f in opts["fields"])})
                    for name, opts in self.fieldsets]
        return self.fieldsets

    @admin.display(description="media")
    def media_links(self, obj) -> str:
        return media_links_html(obj.media_urls or [])

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Media URLs are asked their size and type when saving, here, before the admin opens its transaction
        (a network call never runs inside one), and only for someone who may save: the form shows what was
        found beside the media field, and the campaign keeps it (``media_check``) for its pages, which never
        ask the servers themselves."""
        may_save = self.has_add_permission(request) if object_id is None else self.has_change_permission(request)
        if request.method == "POST" and may_save:
            request._media_url_check = self._media_url_check(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _media_url_check(self, request) -> _MediaUrlCheck | None:
        """What each chosen sender's provider says of the media URLs posted (read by the form's own media
        field; a field that does not validate is left to the form to explain)."""
        from messaging.selectors import senders_by_id, senders_media_problems

        field = CampaignForm.base_fields["media"]
        try:
            media = field.clean(field.widget.value_from_datadict(request.POST, request.FILES, "media"))
        except forms.ValidationError:
            return None
        ids = [v for v in [request.POST.get("sender"), *request.POST.getlist("more_senders")] if v and v.isdigit()]
        if not ids:
            return None
        senders = senders_by_id(int(v) for v in ids)
        if not media.urls:
            return _MediaUrlCheck(senders)
        problems, warnings = senders_media_problems(senders=senders, urls=media.urls)
        return _MediaUrlCheck(senders, tuple(problems), tuple(warnings))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        check = getattr(request, "_media_url_check", None)
        return type(form.__name__, (form,), {"url_problems": check.problems}) if check and check.problems else form

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "lists" and field is not None:
            counts = selectors.list_counts(list(field.queryset.values_list("pk", flat=True)))
            field.label_from_instance = lambda item: _list_label(item, counts.get(item.pk))
        return field

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        media = form.cleaned_data.get("media")
        if media is not None:
            obj.media_urls = media_save(media)  # uploads stored only now, on a valid form
        check = getattr(request, "_media_url_check", None)
        if check is not None:  # the URLs were asked when saving; the uploads were checked as files
            obj.media_check = services.media_check_record(urls=obj.media_urls, senders=check.senders,
                                                          problems=list(check.problems),
                                                          warnings=list(check.warnings))
            obj.media_checked_at = timezone.now()
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """After the audience lists are saved: a time given is confirmed on the next page (the campaign stays a
        draft until then); no time makes a scheduled campaign a draft again. A scheduled campaign that is edited
        goes back to draft until its schedule is confirmed again, with the new figures."""
        super().save_related(request, form, formsets, change)
        campaign = form.instance
        if campaign.status not in self.EDITABLE:
            return
        services.campaign_unschedule(campaign=campaign)
        if not campaign.scheduled_at:
            return
        if campaign.scheduled_at <= timezone.now():
            self.message_user(request, "Saved as a draft: its scheduled time has passed. Set a new time or launch "
                                       "it now.", messages.WARNING)
            return
        request._confirm_schedule = campaign.pk

    def _after_save(self, request, response):
        pk = getattr(request, "_confirm_schedule", None)
        if pk and not self.has_launch_permission(request):
            self.message_user(request, "Saved as a draft. Scheduling sends messages: someone who may launch "
                                       "campaigns confirms the schedule.", messages.WARNING)
            return response
        if pk and "_continue" not in request.POST and "_addanother" not in request.POST:
            self.message_user(request, "Saved as a draft. Check the figures and confirm the schedule.")
            return redirect(reverse("campaigns:campaign_confirm", args=[pk, "schedule"]))
        if pk:
            self.message_user(request, "Saved as a draft: confirm the schedule with the Schedule button.",
                              messages.WARNING)
        return response

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._after_save(request, super().response_change(request, obj))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            dashboard = selectors.campaign_dashboard(campaign=campaign)
            filters = selectors.ResultFilters.from_query(request.GET)
            results = selectors.campaign_results_page(
                campaign=campaign, filters=filters, after=selectors.query_id(request.GET.get("after")),
                before=selectors.query_id(request.GET.get("before")), counts=dashboard["counts"])
            problems, warnings = [], []
            if campaign.status in self.EDITABLE:
                # Media files are asked their size and type on the confirmation page, not on every view.
                problems, warnings = services.campaign_checks(campaign=campaign)
            filter_params = filters.params()
            extra_context.update(
                summary=dashboard,
                dashboard=dashboard,
                failures=dashboard["failures"],
                problems=problems,
                warnings=warnings,
                results=results,
                filters=filters,
                filter_query=urlencode(filter_params),
                filtered=bool(filter_params),
                message_statuses=MESSAGE_STATUSES,
                cause_choices=CAUSE_CHOICES,
                sender_choices=selectors.campaign_result_senders(campaign=campaign, by_sender=dashboard["by_sender"]),
                provider_choices=provider_choices(),
                can_launch=self.has_launch_permission(request),
                can_cancel=self.has_cancel_permission(request),
                can_resend=self.has_resend_permission(request),
                can_test_send=self.has_test_send_permission(request),
                can_export=self.has_export_permission(request),
            )
        extra_context.update(self._compose_context(request))
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {**(extra_context or {}), **self._compose_context(request)})

    def _compose_context(self, request) -> dict:
        return {"compose_preview_url": reverse("campaigns:compose_preview")}

    # The controls' permissions (see campaigns.roles); admin actions name them through ``permissions=[...]``.
    def has_launch_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.opts.app_label}.launch_campaign")

    def has_cancel_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.opts.app_label}.cancel_campaign")

    def has_resend_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.opts.app_label}.resend_campaign")

    def has_test_send_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.opts.app_label}.test_send_campaign")

    def has_export_permission(self, request, obj=None):
        return request.user.has_perm(f"{self.opts.app_label}.export_campaign")

    @admin.action(description="Launch selected campaigns now (after confirming)", permissions=["launch"])
    def launch_selected(self, request, queryset):
        """First a confirmation page with each campaign's figures; launched only when confirmed, and only the
        campaigns whose figures are still those shown."""
        campaigns = list(queryset.select_related("sender", "backup_sender"))
        if request.POST.get("confirm") != "yes":
            entries = []
            for campaign in campaigns:
                launchable = campaign.status in self.EDITABLE
                problems = services.campaign_problems(campaign=campaign) if launchable else [
                    f"This campaign is {campaign.get_status_display()}; it cannot be launched."]
                figures = preflight.campaign_preflight(campaign=campaign) if launchable else None
                entries.append({"campaign": campaign, "problems": problems, "figures": figures})
            context = {
                **self.admin_site.each_context(request),
                "title": "Launch these campaigns now?",
                "opts": self.model._meta,
                "entries": entries,
                "total": sum(e["figures"].recipients for e in entries if e["figures"] and not e["problems"]),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/campaigns/campaign/confirm_bulk.html", context)
        for campaign in campaigns:
            expected = request.POST.get(f"fingerprint_{campaign.pk}", "")
            current = preflight.campaign_fingerprint(campaign=campaign,
                                                     recipients=preflight.audience_count(campaign=campaign))
            if expected != current:
                self.message_user(request, f"{campaign.name}: not launched, its audience or message changed since "
                                           "the figures were shown.", messages.WARNING)
                continue
            try:
                result = services.campaign_launch(campaign=campaign, user=request.user)
            except services.CampaignError as exc:
                self.message_user(request, f"{campaign.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign.name}: launched to {result.recipients} recipients.")
        return None


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("provider_name", "country_display", "per_segment", "mms_per_message", "currency", "is_example")
    list_display_links = ("provider_name",)
    list_filter = ("provider", "is_example", "currency")
    list_editable = ("per_segment", "mms_per_message", "is_example")
    search_fields = ("provider", "country")

    @admin.display(description="provider", ordering="provider")
    def provider_name(self, obj) -> str:
        from messaging.providers import provider_choices

        return dict(provider_choices()).get(obj.provider, obj.provider)

    @admin.display(description="country", ordering="country")
    def country_display(self, obj) -> str:
        return obj.country or "any other"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "provider":
            from messaging.providers import provider_choices

            return forms.ChoiceField(choices=provider_choices(), label="Provider")
        if db_field.name in ("per_segment", "mms_per_message"):  # narrow enough for the editable list
            kwargs["widget"] = forms.NumberInput(attrs={"step": "0.00001", "class": "price-amount"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        obj.country = (obj.country or "").upper()
        super().save_model(request, obj, form, change)
