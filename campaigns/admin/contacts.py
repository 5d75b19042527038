"""The audience admin: contacts, lists and tags."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.utils import timezone

from messaging.selectors import is_opted_out

from .. import exports, services
from ..imports.selectors import custom_field_keys
from ..models import Campaign, Contact, ContactList, ListMembership, Tag


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
