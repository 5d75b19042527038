"""The consent ledger in the admin: append-only entries, an undo that is an entry of its own, and each number's
current state, read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from .. import services
from ..models import ConsentEvent, Suppression
from ..phones import phone_e164


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """The current consent state of each number, read-only: it changes through consent-ledger entries."""

    list_display = ("phone", "opted_out", "updated_at")
    list_filter = ("opted_out",)
    search_fields = ("phone",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ConsentEventForm(forms.ModelForm):
    class Meta:
        model = ConsentEvent
        fields = ("phone", "action", "detail")

    def clean_phone(self):
        try:
            return phone_e164(self.cleaned_data.get("phone") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    form = ConsentEventForm
    list_display = ("phone", "action", "method", "detail", "caused_by", "created_by", "created_at", "undoes")
    list_filter = ("action", "method")
    search_fields = ("phone", "detail")
    list_select_related = ("created_by", "undoes")
    actions = ["undo"]

    def get_readonly_fields(self, request, obj=None):
        return [*(f.name for f in ConsentEvent._meta.fields if f.name != "message"), "caused_by"] if obj else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["phone", "action", "detail"]
        return [("caused_by" if f.name == "message" else f.name) for f in ConsentEvent._meta.fields if f.name != "id"]

    @admin.display(description="caused by")
    def caused_by(self, obj):
        """The reply (opening its conversation) or the provider's report (the message) behind the entry."""
        if obj is None or not obj.message_id:
            return "-"
        if obj.method == ConsentEvent.Method.KEYWORD:
            return format_html('<a href="{}">the reply</a>',
                               reverse("admin:messaging_reply_conversation", args=[obj.message_id]))
        return format_html('<a href="{}">message #{}</a>',
                           reverse("admin:messaging_message_change", args=[obj.message_id]), obj.message_id)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # append-only: entries are read-only

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger keeps its history: an entry is undone by another entry, never deleted

    def save_model(self, request, obj, form, change):
        if change:
            return  # the ledger is append-only
        entry = services.consent_record(phone=obj.phone, action=obj.action, method=ConsentEvent.Method.STAFF,
                                        detail=obj.detail, user=request.user)
        obj.pk = entry.pk

    def has_undo_permission(self, request):
        return request.user.has_perm(f"{self.opts.app_label}.undo_consentevent")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and not self.has_undo_permission(request) and "action" in form.base_fields:
            # Opting a number back in is an Administrator's decision: others may only record an opt-out.
            field = form.base_fields["action"]
            field.choices = [(v, label) for v, label in field.choices if v != ConsentEvent.Action.OPT_IN]
        return form

    @admin.action(description="Undo (adds an entry of its own)", permissions=["undo"])
    def undo(self, request, queryset):
        done = 0
        for entry in queryset:
            try:
                services.consent_undo(event=entry, user=request.user)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} entries undone.")
