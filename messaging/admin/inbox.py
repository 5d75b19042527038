"""The inbox: replies to our senders, and the conversation with each number (what we sent, what they wrote),
from which staff answer. Seen with ``messaging.view_message``; answering and marking read need
``messaging.answer_message``."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from .. import audience, selectors, services
from ..models import Dispatch, Message, Reply, Sender

ANSWER_PERMISSION = "messaging.answer_message"
VIEW_PERMISSION = "messaging.view_message"


class ReadFilter(admin.SimpleListFilter):
    title = "read"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("no", "Unread"), ("yes", "Read")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(read_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(read_at__isnull=False)
        return queryset


class CampaignFilter(admin.SimpleListFilter):
    """The campaign a reply answers (campaigns that have replies, by name)."""

    title = "campaign"
    parameter_name = "campaign"

    def lookups(self, request, model_admin):
        answered = Message.objects.filter(reply_campaign_id=OuterRef("campaign_id"))
        rows = Dispatch.objects.filter(Exists(answered)).order_by("-campaign_id").values_list("campaign_id", "name")
        return [(str(cid), name or f"campaign #{cid}") for cid, name in rows[:100]]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(reply_campaign_id=int(self.value()))
        return queryset


class AnswerForm(forms.Form):
    body = forms.CharField(label="Text", widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=1600)
    sender = forms.ModelChoiceField(queryset=Sender.objects.none(), label="Through", empty_label=None)

    def __init__(self, *args, senders=(), initial_sender=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sender"].queryset = Sender.objects.filter(pk__in=[s.pk for s in senders], is_active=True)
        if initial_sender is not None:
            self.fields["sender"].initial = initial_sender.pk


@admin.register(Reply)
class ReplyAdmin(admin.ModelAdmin):
    list_display = ("received", "who", "text", "attachments", "sender", "answers_campaign", "keyword", "read")
    list_display_links = None
    list_filter = (ReadFilter, "sender", CampaignFilter, "keyword")
    search_fields = ("to", "body")
    list_select_related = ("sender",)
    actions = ["mark_read", "mark_unread"]
    show_full_result_count = False
    list_per_page = 50

    # ---- permissions: the inbox is part of messages ----

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW_PERMISSION)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_answer_permission(self, request, obj=None):
        return request.user.has_perm(ANSWER_PERMISSION)

    # ---- the list ----

    def get_queryset(self, request):
        names = Dispatch.objects.filter(campaign_id=OuterRef("reply_campaign_id")).values("name")[:1]
        return super().get_queryset(request).annotate(campaign_label=Subquery(names))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        names = audience_names(rows)
        for row in rows:  # the page's contact names, read once for the page
            row.contact_name = names.get(row.contact_id, "")
        changelist.result_list = rows
        return changelist

    @admin.display(description="received", ordering="id")
    def received(self, obj):
        return obj.created_at

    @admin.display(description="from")
    def who(self, obj):
        name = getattr(obj, "contact_name", "")
        label = f"{name} {obj.to}".strip() if name else (obj.to or "(no address)")
        url = reverse("admin:messaging_reply_conversation", args=[obj.pk])
        if obj.read_at is None:
            return format_html('<a href="{}" class="reply-unread"><strong>{}</strong></a>', url, label)
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="text")
    def text(self, obj):
        return Truncator(obj.body or "").chars(80) or "-"

    @admin.display(description="media")
    def attachments(self, obj):
        count = len(obj.media_urls or [])
        return f"{count} file{'s' if count != 1 else ''}" if count else "-"

    @admin.display(description="campaign")
    def answers_campaign(self, obj):
        campaign_id = obj.reply_campaign_id
        if not campaign_id:
            return "-"
        name = getattr(obj, "campaign_label", None) or f"campaign #{campaign_id}"
        return format_html('<a href="{}">{}</a>', reverse("admin:campaigns_campaign_change", args=[campaign_id]),
                           name)

    @admin.display(description="read", boolean=True)
    def read(self, obj):
        return obj.read_at is not None

    @admin.action(description="Mark as read", permissions=["answer"])
    def mark_read(self, request, queryset):
        changed = services.replies_mark(replies=list(queryset), read=True, user=request.user)
        self.message_user(request, f"{changed} replies marked read.")

    @admin.action(description="Mark as unread", permissions=["answer"])
    def mark_unread(self, request, queryset):
        changed = services.replies_mark(replies=list(queryset), read=False, user=request.user)
        self.message_user(request, f"{changed} replies marked unread.")

    # ---- the conversation ----

    def get_urls(self):
        extra = [path("<int:reply_id>/conversation/", self.admin_site.admin_view(self.conversation_view),
                      name="messaging_reply_conversation")]
        return extra + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if str(object_id).isdigit() and Reply.objects.filter(pk=object_id).exists():
            return HttpResponseRedirect(reverse("admin:messaging_reply_conversation", args=[object_id]))
        return super().change_view(request, object_id, form_url, extra_context)

    def conversation_view(self, request, reply_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        reply = get_object_or_404(Reply.objects.select_related("sender"), pk=reply_id)
        may_answer = self.has_answer_permission(request)
        thread = selectors.conversation(address=reply.to) if reply.to else [reply]
        senders = list({m.sender_id: m.sender for m in thread}.values())
        latest_reply = next((m for m in reversed(thread) if m.direction == Message.Direction.INBOUND), reply)
        form = AnswerForm(senders=senders, initial_sender=latest_reply.sender)
        if request.method == "POST":
            if not may_answer:
                raise PermissionDenied
            form = AnswerForm(request.POST, senders=senders, initial_sender=latest_reply.sender)
            if form.is_valid():
                try:
                    services.reply_answer(reply=latest_reply, body=form.cleaned_data["body"], user=request.user,
                                          sender=form.cleaned_data["sender"])
                except services.AnswerRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    self.message_user(request, f"Answer queued to {reply.to}.", messages.SUCCESS)
                    return HttpResponseRedirect(request.path)
        elif may_answer and reply.to:
            services.conversation_mark_read(address=reply.to, user=request.user)
        contact_id = next((m.contact_id for m in reversed(thread) if m.contact_id), None)
        names = audience_names(thread)
        rows = [{"message": m, "inbound": m.direction == Message.Direction.INBOUND,
                 "media": [u for u in m.media_urls or [] if str(u).startswith(("https://", "http://"))],
                 "campaign_id": m.campaign_id or m.reply_campaign_id, "campaign": getattr(m, "campaign_name", "")}
                for m in thread]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Conversation with {names.get(contact_id) or reply.to or 'an unknown sender'}",
            "reply": reply,
            "address": reply.to,
            "contact_id": contact_id,
            "contact_name": names.get(contact_id, ""),
            "rows": rows,
            "form": form,
            "may_answer": may_answer,
            "opted_out": selectors.address_opted_out(reply.to),
            "last_change": selectors.consent_last_change(reply.to),
            "shown_max": selectors.CONVERSATION_MAX,
        }
        return TemplateResponse(request, "admin/messaging/reply/conversation.html", context)


def audience_names(rows) -> dict[int, str]:
    """The contact name of each row's contact, by contact id (from the app that keeps contacts)."""
    fields = audience.contact_fields(r.contact_id for r in rows)
    out = {}
    for contact_id, values in fields.items():
        name = f"{values.get('first_name', '')} {values.get('last_name', '')}".strip()
        if name:
            out[contact_id] = name
    return out
