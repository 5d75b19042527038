"""Messages and their status history in the admin: read-only, with the staff decisions an unknown outcome needs."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .. import services
from ..encoding import segment_info
from ..models import Dispatch, Message, MessageEvent
from ..providers.base import CAUSE_CHOICES
from ..providers.codes import error_meaning


class CauseFilter(admin.SimpleListFilter):
    """What a failure means, across providers (``messaging.providers.base.causes``)."""

    title = "error cause"
    parameter_name = "cause"

    def lookups(self, request, model_admin):
        return CAUSE_CHOICES

    def queryset(self, request, queryset):
        return queryset.filter(error_cause=self.value()) if self.value() else queryset


class EventInline(admin.TabularInline):
    """A message's whole history on its page: every send answer, status callback, lookup and change of ours,
    in the order they came, with the provider's own status and code."""

    model = MessageEvent
    fk_name = "message"
    verbose_name = "event"
    verbose_name_plural = "history (every send answer, status report, lookup and change, in order)"
    fields = readonly_fields = ("received_at", "source", "status", "raw_status", "error_code", "error_meaning",
                                "part_of", "occurred_at", "applied", "event_link")
    ordering = ("id",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sender")

    @admin.display(description="what it says")
    def error_meaning(self, obj):
        """The provider's text, or what it documents the code to mean."""
        return obj.error_message or (error_meaning(obj.sender.provider, obj.error_code) if obj.error_code else "")

    @admin.display(description="part")
    def part_of(self, obj):
        return f"{obj.part} of {obj.parts}" if obj.parts > 1 else ""

    @admin.display(description="as received")
    def event_link(self, obj):
        return format_html('<a href="{}">payload</a>', reverse("admin:messaging_messageevent_change", args=[obj.pk]))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "to", "sender", "campaign_name", "direction", "kind", "status", "error", "attempts",
                    "sent_at", "delivered_at", "updated_at")
    list_filter = ("status", "direction", "kind", CauseFilter, "sender")
    search_fields = ("to", "provider_message_id", "body")
    list_select_related = ("sender",)
    # The campaign and the contact are another app's rows: shown by name from the dispatch record, or by id,
    # with a link, never read from here. Every field is read-only; they are shown in the model's order.
    fields = readonly_fields = [
        name for f in Message._meta.fields
        for name in ({"campaign": ["campaign_name"], "contact": ["contact_link"]}.get(f.name, [f.name]))
    ]
    actions = ["resend_unconfirmed", "confirm_sent"]
    show_full_result_count = False
    inlines = [EventInline]

    def get_queryset(self, request):
        names = Dispatch.objects.filter(campaign_id=OuterRef("campaign_id")).values("name")[:1]
        return super().get_queryset(request).annotate(campaign_label=Subquery(names))

    @admin.display(description="campaign", ordering="campaign_id")
    def campaign_name(self, obj):
        if not obj.campaign_id:
            return "-"
        label = getattr(obj, "campaign_label", None) or f"campaign #{obj.campaign_id}"
        return format_html('<a href="{}">{}</a>', reverse("admin:campaigns_campaign_change", args=[obj.campaign_id]),
                           label)

    @admin.display(description="error", ordering="error_code")
    def error(self, obj):
        if not (obj.error_code or obj.error_cause):
            return "-"
        cause = obj.cause
        label = f"{cause.label}: " if cause else ""
        return format_html('<span title="{}">{}{}</span>', f"{cause.explanation} {cause.advice}" if cause else "",
                           label, obj.error_code or "")

    @admin.display(description="contact")
    def contact_link(self, obj):
        if not obj.contact_id:
            return "-"
        return format_html('<a href="{}">contact #{}</a>',
                           reverse("admin:campaigns_contact_change", args=[obj.contact_id]), obj.contact_id)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # messages change through the send path and the actions below, never by editing

    def has_resend_permission(self, request):
        return request.user.has_perm(f"{self.opts.app_label}.resend_message")

    @admin.action(description="Resend messages whose outcome is unknown (unconfirmed)…", permissions=["resend"])
    def resend_unconfirmed(self, request, queryset):
        """First a confirmation with the recipients, the segments by encoding and the risk; resent only when
        confirmed. Only unconfirmed messages are resent (the service checks each)."""
        unconfirmed = queryset.filter(status=Message.Status.UNCONFIRMED).select_related("sender")
        if request.POST.get("confirm") != "yes":
            rows = list(unconfirmed.order_by("id")[:1000])
            by_encoding: dict[str, list[int]] = {}
            for message in rows:
                info = segment_info(message.body or "")
                line = by_encoding.setdefault(info.encoding, [0, 0])
                line[0] += 1
                line[1] += info.segments
            context = {
                **self.admin_site.each_context(request),
                "title": "Resend messages whose outcome is unknown?",
                "opts": self.model._meta,
                "messages_shown": rows[:20],
                "count": unconfirmed.count(),
                "skipped": queryset.exclude(status=Message.Status.UNCONFIRMED).count(),
                "recipients": unconfirmed.values("to").distinct().count(),
                "by_encoding": by_encoding,
                "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/messaging/message/confirm_resend.html", context)
        done = [pk for pk in unconfirmed.values_list("pk", flat=True) if services.message_resend(message_id=pk)]
        services.audit_record_many(user=request.user, objects=Message.objects.filter(pk__in=done),
                                   action="Resent (outcome was unknown)")
        self.message_user(request, f"{len(done)} unconfirmed messages will be sent again.")
        return None

    @admin.action(description="Mark unconfirmed messages as sent (checked with the provider)", permissions=["resend"])
    def confirm_sent(self, request, queryset):
        done = [pk for pk in queryset.values_list("pk", flat=True) if services.message_confirm_sent(message_id=pk)]
        services.audit_record_many(user=request.user, objects=Message.objects.filter(pk__in=done),
                                   action="Marked as sent (checked with the provider)")
        self.message_user(request, f"{len(done)} unconfirmed messages recorded as sent.")


@admin.register(MessageEvent)
class MessageEventAdmin(admin.ModelAdmin):
    list_display = ("id", "provider_message_id", "sender", "source", "status", "raw_status", "error_code",
                    "sequence", "occurred_at", "applied")
    list_filter = ("source", "status", "applied", "sender")
    search_fields = ("provider_message_id",)
    list_select_related = ("sender",)
    raw_id_fields = ("message",)
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in MessageEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
