"""The campaign admin: compose, check and control a campaign."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.utils import timezone

from messaging.personalize import template_errors
from messaging.selectors import MESSAGE_STATUSES

from .. import selectors, services
from ..models import Campaign


class CampaignForm(forms.ModelForm):
    media_urls = forms.CharField(
        label="Media URLs", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One public URL per line (MMS).",
    )

    class Meta:
        model = Campaign
        fields = ("name", "sender", "more_senders", "backup_sender", "body", "media_urls", "lists", "scheduled_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.media_urls:
            self.initial["media_urls"] = "\n".join(self.instance.media_urls)

    def clean_media_urls(self):
        from django.core.validators import URLValidator

        urls = [line.strip() for line in (self.cleaned_data.get("media_urls") or "").splitlines() if line.strip()]
        validate = URLValidator(schemes=["http", "https"])
        for number, url in enumerate(urls, start=1):
            try:
                validate(url)
            except forms.ValidationError:
                raise forms.ValidationError(f"Line {number} is not an http(s) URL: {url}") from None
        return urls

    def clean(self):
        """The campaign's own checks (``services.campaign_checks``) on what was entered, each shown beside the
        field it is about. Media sizes are checked on the campaign page and at launch, not on every save."""
        cleaned = super().clean()
        sender = cleaned.get("sender")
        if sender and not self.errors:
            draft = Campaign(sender=sender, body=cleaned.get("body") or "", media_urls=cleaned.get("media_urls") or [])
            senders = [sender, *[s for s in (cleaned.get("more_senders") or []) if s.pk != sender.pk]]
            problems, _warnings = services.campaign_checks(campaign=draft, senders=senders)
            for problem in problems:
                if problem.field in self.fields and problem.field != "lists":
                    self.add_error(problem.field, str(problem))
        return cleaned

    def clean_scheduled_at(self):
        at = self.cleaned_data.get("scheduled_at")
        if at and "scheduled_at" in self.changed_data and at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future, or use Launch now on the campaign page.")
        return at

    def clean_body(self):
        body = self.cleaned_data.get("body") or ""
        error = template_errors(body)
        if error:
            raise forms.ValidationError(f"Template error: {error}")
        return body


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "status", "sender", "scheduled_at", "recipient_count", "suppressed_count",
                    "launched_at", "completed_at", "created_by")
    list_filter = ("status", "sender")
    search_fields = ("name", "body")
    list_select_related = ("sender", "created_by")
    filter_horizontal = ("lists", "more_senders")
    change_form_template = "admin/campaigns/campaign/change_form.html"
    actions = ["launch_selected"]

    def get_readonly_fields(self, request, obj=None):
        if obj and obj.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            return ("name", "sender", "more_senders", "backup_sender", "body", "media_urls", "lists", "scheduled_at")
        return ()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """After the audience lists are saved: a time given schedules the campaign, no time makes it a draft
        again (both through the services, which check the campaign can be sent)."""
        super().save_related(request, form, formsets, change)
        campaign = form.instance
        if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            return
        if not campaign.scheduled_at:
            services.campaign_unschedule(campaign=campaign)
            return
        if campaign.status == Campaign.Status.DRAFT and campaign.scheduled_at <= timezone.now():
            self.message_user(request, "Saved as a draft: its scheduled time has passed. Set a new time or launch "
                                       "it now.", messages.WARNING)
            return
        try:
            services.campaign_schedule(campaign=campaign, at=campaign.scheduled_at)
        except services.CampaignError as exc:
            services.campaign_unschedule(campaign=campaign)
            self.message_user(request, f"Saved as a draft, not scheduled: {exc}", messages.WARNING)
        else:
            self.message_user(request, f"Scheduled for {campaign.scheduled_at:%Y-%m-%d %H:%M %Z}.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            status = request.GET.get("recipient_status") or ""
            search = request.GET.get("recipient_q") or ""
            page = Paginator(selectors.campaign_recipients(campaign=campaign, status=status, search=search), 50)
            problems, warnings = [], []
            if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
                # Outside the admin's transaction (the form view opens it later): media sizes are asked of
                # their servers here.
                problems, warnings = services.campaign_checks(campaign=campaign, check_media=True)
            extra_context.update(
                summary=selectors.campaign_summary(campaign=campaign),
                problems=problems,
                warnings=warnings,
                recipients=page.get_page(request.GET.get("page")),
                recipient_status=status,
                recipient_q=search,
                message_statuses=MESSAGE_STATUSES,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Launch selected campaigns now", permissions=["change"])
    def launch_selected(self, request, queryset):
        for campaign in queryset.select_related("sender"):
            try:
                result = services.campaign_launch(campaign=campaign, user=request.user)
            except services.CampaignError as exc:
                self.message_user(request, f"{campaign.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign.name}: launched to {result.recipients} recipients.")
