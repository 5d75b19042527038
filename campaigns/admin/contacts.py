"""The audience admin: contacts, lists and tags."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from messaging.selectors import is_opted_out
from messaging.services import audit_record_many, audit_record_on_model

from .. import exports, selectors, services
from ..imports.selectors import custom_field_keys
from ..models import Campaign, Contact, ContactList, ImportJob, ListMembership, Tag
from .forms import CUSTOM_PREFIX, NEW_NAME, NEW_VALUE, ContactForm

MEMBERS_PER_PAGE = 50


def _may_export_contacts(model_admin, request) -> bool:
    """The export actions of lists and of contacts: a permission of its own (see campaigns.roles)."""
    return request.user.has_perm("campaigns.export_contact")


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


def _query(request, **changes) -> str:
    """The page's query string with ``changes`` (an empty value drops the parameter), other parameters kept."""
    params = request.GET.copy()
    for name, value in changes.items():
        params.pop(name, None)
        if value not in (None, ""):
            params[name] = value
    return f"?{params.urlencode()}" if params else "?"


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "opted_out_count", "landline_count", "description", "created_at")
    list_filter = (ListSizeFilter, InCampaignFilter, "created_at")
    search_fields = ("name", "description")
    date_hierarchy = "created_at"
    actions = ["export_csv"]
    change_form_template = "admin/campaigns/contactlist/change_form.html"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != f"{self.opts.app_label}_{self.opts.model_name}_changelist":
            return queryset  # a list's own page reads its counts through the selector, once
        # The changelist: one aggregate over memberships joined to their contacts for the whole page, not a
        # query per row.
        return queryset.annotate(
            member_count=Count("listmembership"),
            opted_out_count=Count("listmembership", filter=Q(listmembership__contact__opted_out=True)),
            landline_count=Count("listmembership", filter=Q(listmembership__contact__is_fixed_line=True)),
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj) -> int:
        return obj.member_count

    @admin.display(description="opted out", ordering="opted_out_count")
    def opted_out_count(self, obj) -> int:
        return obj.opted_out_count

    @admin.display(description="landline", ordering="landline_count")
    def landline_count(self, obj) -> int:
        return obj.landline_count

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        contact_list = self.get_object(request, unquote(object_id))
        if contact_list is not None and self.has_view_or_change_permission(request, contact_list):
            extra_context.update(self._audience_context(request, contact_list))
        return super().change_view(request, object_id, form_url, extra_context)

    def _audience_context(self, request, contact_list: ContactList) -> dict:
        """The list's counts, a page of its members (searchable) and its recent imports."""
        counts = selectors.list_counts([contact_list.pk])[contact_list.pk]
        search = (request.GET.get("q") or "").strip()
        paginator = Paginator(selectors.list_members(contact_list, search), MEMBERS_PER_PAGE)
        if not search:
            paginator.count = counts.members  # already counted: no second count over a big list
        page = paginator.get_page(request.GET.get("p"))
        page_links = [
            (number, None if number in (page.number, Paginator.ELLIPSIS) else _query(request, p=number))
            for number in paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
        ] if paginator.num_pages > 1 else []
        imports_admin = self.admin_site.get_model_admin(ImportJob)
        contacts_admin = self.admin_site.get_model_admin(Contact)
        can_view_imports = imports_admin.has_view_permission(request)
        return {
            "counts": counts,
            "member_page": page,
            "members_q": search,
            "members_page_links": page_links,
            "members_all_url": _query(request, q="", p=""),
            "members_kept_params": [(k, v) for k, v in request.GET.items() if k not in ("q", "p")],
            "can_view_contacts": contacts_admin.has_view_permission(request),
            "can_view_imports": can_view_imports,
            "can_import": imports_admin.has_add_permission(request),
            "recent_imports": selectors.list_recent_imports(contact_list) if can_view_imports else [],
        }

    has_export_permission = _may_export_contacts

    @admin.action(description="Export the contacts of selected lists to CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        lists = list(queryset)
        audit_record_many(user=request.user, objects=lists, action="Exported its contacts to CSV")
        return _csv_response(exports.lists_export(lists=lists), "lists")


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
    list_display = ("phone", "first_name", "last_name", "email", "opted_out", "is_fixed_line", "number_problem",
                    "created_at")
    list_filter = ("opted_out", "is_fixed_line", "number_problem", "lists", "tags", CustomFieldFilter)
    search_fields = ("phone", "first_name", "last_name", "email")
    filter_horizontal = ("tags",)
    inlines = [MembershipInline]
    show_full_result_count = False
    change_list_template = "admin/campaigns/contact/change_list.html"
    action_form = ContactActionForm
    actions = ["add_to_list", "remove_from_list", "add_tag", "remove_tag", "opt_out", "opt_in", "clear_number_flag",
               "export_csv"]
    # Consent changes go through the ledger (the opt-out/opt-in actions); flags come from providers' reports and
    # are cleared by the action.
    readonly_fields = ("opted_out", "number_flag")
    form = ContactForm

    def _custom_keys(self, request) -> list[str]:
        """The custom field names in use, read once per request (the layout and the form both need them)."""
        if not hasattr(request, "_custom_field_keys"):
            request._custom_field_keys = custom_field_keys()
        return request._custom_field_keys

    def _editable(self, request, obj) -> bool:
        return self.has_change_permission(request, obj) if obj else self.has_add_permission(request)

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ("phone", ("first_name", "last_name"), "email", "timezone", "opted_out",
                                  "is_fixed_line", "number_flag", "tags")})
        if not self._editable(request, obj):
            return [main, ("Custom fields", {"fields": ("custom_fields_table",)})]
        names = [CUSTOM_PREFIX + key for key in ContactForm.keys_for(obj, self._custom_keys(request))]
        return [main, ("Custom fields", {
            "fields": (*names, NEW_NAME, NEW_VALUE),
            "description": "Used in message templates as {{ name }}. Empty a value to remove that field from "
                           "this contact.",
        })]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if kwargs.get("fields"):  # the custom field inputs are added by the form itself, not by the model
            kwargs["fields"] = [name for name in kwargs["fields"] if not name.startswith(CUSTOM_PREFIX)]
        form = super().get_form(request, obj, change, **kwargs)
        form.known_keys = self._custom_keys(request)
        return form

    @admin.display(description="number flagged", ordering="number_problem")
    def number_flag(self, obj) -> str:
        if obj is None or not obj.number_problem:
            return "-"
        when = f" on {obj.number_problem_at:%Y-%m-%d}" if obj.number_problem_at else ""
        return f"{obj.get_number_problem_display()}{when}: {obj.number_problem_detail}. Skipped at launch."

    @admin.display(description="custom fields")
    def custom_fields_table(self, obj) -> str:
        fields = (obj.custom_fields or {}) if obj else {}
        if not fields:
            return "none"
        return format_html('<table class="custom-fields"><tbody>{}</tbody></table>', format_html_join(
            "", "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", sorted((k, str(v)) for k, v in fields.items())))

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

    def has_opt_in_permission(self, request):
        # Opting a number back in is an Administrator's decision (see campaigns.roles).
        return self.has_change_permission(request) and request.user.has_perm("messaging.undo_consentevent")

    has_export_permission = _may_export_contacts

    @admin.action(description="Opt back in (consent ledger)", permissions=["opt_in"])
    def opt_in(self, request, queryset):
        n = services.contacts_consent_set(contact_ids=list(queryset.values_list("pk", flat=True)), opted_out=False,
                                          user=request.user)
        self.message_user(request, f"{n} contacts opted back in; the consent ledger records it under your name.")

    @admin.action(description="Clear the number flag (include again at launch)", permissions=["change"])
    def clear_number_flag(self, request, queryset):
        n = services.contacts_number_clear(contacts=list(queryset.exclude(number_problem="")), user=request.user)
        self.message_user(request, f"{n} contacts will be messaged again by the next launch.")

    @admin.action(description="Export to CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        count = queryset.count()
        audit_record_on_model(user=request.user, model=Contact, label=f"{count} contacts",
                              action="Exported contacts to CSV")
        return _csv_response(exports.contacts_export(queryset=queryset), "contacts")
