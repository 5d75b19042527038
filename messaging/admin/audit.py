"""The audit log page: every entry of the admin's change log (launches, cancels, exports, credential changes,
consent undone, and the admin's own add/change/delete), newest first, filterable, and read-only: nobody edits
or deletes an entry here."""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from ..models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("action_time", "user", "what", "on", "object_link")
    list_filter = ("action_flag", ("content_type", admin.RelatedOnlyFieldListFilter),
                   ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("object_repr", "change_message", "user__username")
    list_select_related = ("user", "content_type")
    date_hierarchy = "action_time"
    fields = readonly_fields = ("action_time", "user", "content_type", "object_id", "object_repr", "what")
    actions = None
    show_full_result_count = False

    @admin.display(description="what")
    def what(self, obj) -> str:
        if obj.is_addition():
            return f"Added. {obj.get_change_message()}".strip()
        if obj.is_deletion():
            return "Deleted."
        return obj.get_change_message() or "Changed."

    @admin.display(description="on", ordering="content_type")
    def on(self, obj) -> str:
        return obj.content_type.name if obj.content_type_id else "-"

    @admin.display(description="object")
    def object_link(self, obj):
        if obj.is_deletion() or not obj.content_type_id or not obj.object_id:
            return obj.object_repr
        try:
            url = reverse(f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change", args=[obj.object_id])
        except NoReverseMatch:
            return obj.object_repr
        return format_html('<a href="{}">{}</a>', url, obj.object_repr)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
