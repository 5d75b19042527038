from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.utils import timezone

from messaging.personalize import template_errors
from messaging.selectors import MESSAGE_STATUSES, is_opted_out

from . import exports, selectors, services
from .imports.selectors import custom_field_keys
from .models import Campaign, Contact, ContactList, ListMembership, Tag


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


class MembershipInline(admin.TabularInline):
    model = ListMembership
    extra = 0
    raw_id_fields = ("contact",)


class ListSizeFilter(admin.SimpleListFilter):
    title = "size"
    parameter_name = "size"

    def lookups(self, request, model_admin):
        return [("empty", "empty"), ("small", "1 to 999 contacts"), ("large", "1,000 contacts or more")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "empty":
            return queryset.filter(member_count=0)
        if value == "small":
            return queryset.filter(member_count__gte=1, member_count__lt=1000)
        if value == "large":
            return queryset.filter(member_count__gte=1000)
        return queryset


class InCampaignFilter(admin.SimpleListFilter):
    title = "used by a campaign"
    parameter_name = "in_campaign"

    def lookups(self, request, model_admin):
        return [("yes", "yes"), ("no", "no")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            used = Campaign.lists.through.objects.values("contactlist_id")
            return queryset.filter(pk__in=used) if self.value() == "yes" else queryset.exclude(pk__in=used)
        return queryset


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "description", "created_at")
    list_filter = (ListSizeFilter, InCampaignFilter, "created_at")
    search_fields = ("name", "description")
    date_hierarchy = "created_at"
    actions = ["export_csv"]

    def get_queryset(self, request):
        # One aggregate over the memberships' (list, contact) index for the whole page, not a query per row.
        return super().get_queryset(request).annotate(member_count=Count("listmembership"))

    @admin.display(description="contacts", ordering="member_count")
    def member_count(self, obj) -> int:
        return obj.member_count

    @admin.action(description="Export the contacts of selected lists to CSV", permissions=["change"])
    def export_csv(self, request, queryset):
        return _csv_response(exports.lists_export(lists=list(queryset)), "lists")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "contact_count")
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(contact_count=Count("contacts"))

    @admin.display(description="contacts", ordering="contact_count")
    def contact_count(self, obj) -> int:
        return obj.contact_count


def _csv_response(lines, stem: str) -> StreamingHttpResponse:
    from django.utils import timezone

    response = StreamingHttpResponse(exports.with_bom(lines), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{stem}-{stamp}.csv"'
    return response


class ContactActionForm(helpers.ActionForm):
    contact_list = forms.ModelChoiceField(ContactList.objects.all(), required=False, label="List",
                                          empty_label="(list)")
    tag = forms.ModelChoiceField(Tag.objects.all(), required=False, label="Tag", empty_label="(tag)")


class CustomFieldFilter(admin.SimpleListFilter):
    """Contacts having a custom field; ``?custom_field=key=value`` also matches a value exactly."""

    title = "custom field"
    parameter_name = "custom_field"

    def lookups(self, request, model_admin):
        return [(key, f"has {key}") for key in custom_field_keys()]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        key, _, wanted = value.partition("=")
        key = key.strip()
        if not key.replace("_", "").isalnum():
            return queryset.none()
        if wanted:
            return queryset.filter(**{f"custom_fields__{key}": wanted})
        return queryset.filter(custom_fields__has_key=key)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("phone", "first_name", "last_name", "email", "opted_out", "is_fixed_line", "created_at")
    list_filter = ("opted_out", "is_fixed_line", "lists", "tags", CustomFieldFilter)
    search_fields = ("phone", "first_name", "last_name", "email")
    filter_horizontal = ("tags",)
    inlines = [MembershipInline]
    show_full_result_count = False
    change_list_template = "admin/campaigns/contact/change_list.html"
    action_form = ContactActionForm
    actions = ["add_to_list", "remove_from_list", "add_tag", "remove_tag", "opt_out", "opt_in", "export_csv"]
    readonly_fields = ("opted_out",)  # consent changes go through the ledger (the opt-out/opt-in actions)

    def save_model(self, request, obj, form, change):
        if not change:  # a new contact starts with its number's consent state
            obj.opted_out = is_opted_out(str(obj.phone))
        super().save_model(request, obj, form, change)

    def _chosen(self, request, name: str, model):
        pk = request.POST.get(name)
        obj = model.objects.filter(pk=pk).first() if pk and str(pk).isdigit() else None
        if obj is None:
            self.message_user(request, f"Choose a {name.replace('contact_', '')} next to the action.", messages.ERROR)
        return obj

    @admin.action(description="Add to the chosen list", permissions=["change"])
    def add_to_list(self, request, queryset):
        target = self._chosen(request, "contact_list", ContactList)
        if target:
            n = services.contact_list_add(contact_list=target, contact_ids=list(queryset.values_list("pk", flat=True)))
            self.message_user(request, f"{n} contacts added to {target}.")

    @admin.action(description="Remove from the chosen list", permissions=["change"])
    def remove_from_list(self, request, queryset):
        target = self._chosen(request, "contact_list", ContactList)
        if target:
            n = services.contact_list_remove(contact_list=target,
                                             contact_ids=list(queryset.values_list("pk", flat=True)))
            self.message_user(request, f"{n} contacts removed from {target}.")

    @admin.action(description="Tag with the chosen tag", permissions=["change"])
    def add_tag(self, request, queryset):
        tag = self._chosen(request, "tag", Tag)
        if tag:
            n = services.contact_tag_add(tag=tag, contact_ids=list(queryset.values_list("pk", flat=True)))
            self.message_user(request, f"{n} contacts tagged {tag}.")

    @admin.action(description="Remove the chosen tag", permissions=["change"])
    def remove_tag(self, request, queryset):
        tag = self._chosen(request, "tag", Tag)
        if tag:
            n = services.contact_tag_remove(tag=tag, contact_ids=list(queryset.values_list("pk", flat=True)))
            self.message_user(request, f"Tag {tag} removed from {n} contacts.")

    @admin.action(description="Opt out (consent ledger)", permissions=["change"])
    def opt_out(self, request, queryset):
        n = services.contacts_consent_set(contact_ids=list(queryset.values_list("pk", flat=True)), opted_out=True,
                                          user=request.user)
        self.message_user(request, f"{n} contacts opted out; the consent ledger records it under your name.")

    @admin.action(description="Opt back in (consent ledger)", permissions=["change"])
    def opt_in(self, request, queryset):
        n = services.contacts_consent_set(contact_ids=list(queryset.values_list("pk", flat=True)), opted_out=False,
                                          user=request.user)
        self.message_user(request, f"{n} contacts opted back in; the consent ledger records it under your name.")

    @admin.action(description="Export to CSV", permissions=["change"])
    def export_csv(self, request, queryset):
        return _csv_response(exports.contacts_export(queryset=queryset), "contacts")


from .imports import admin as _imports_admin  # noqa: E402,F401  (registers ImportJobAdmin)
