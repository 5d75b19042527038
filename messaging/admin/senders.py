"""Senders in the admin: write-only secrets, the pace in use, the webhook URLs to paste in the provider's console,
the provider's documented limits, and a credentials check."""

from __future__ import annotations

import json
import re

from django import forms
from django.contrib import admin, messages
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

from .. import pacing, selectors, services
from ..fields import UNDECRYPTABLE_MESSAGE, is_undecryptable
from ..models import Sender
from ..providers import PROVIDERS, inbound_url, provider_for
from ..providers.base import ConfigurationError, ProviderError, url_for_console, url_with_basic_auth
from ..services import callback_url


def _masked(value) -> str:
    text = str(value or "")
    return ("•" * 6 + text[-4:]) if len(text) > 4 else "•" * len(text)


def _pace(mps: float) -> str:
    return f"{mps:g} message per second" if mps == 1 else f"{mps:g} messages per second"


CALLBACK_PASSWORD_MIN = 8
UNPROTECTED_SHORT = "unprotected: set a callback password"
UNPROTECTED = (
    "Callbacks unprotected: this sender has no callback password, and its provider signs nothing. Its callbacks "
    "are refused until one is set: enter one under Credentials, then paste the new webhook URLs in the "
    "provider's console."
)


class SenderForm(forms.ModelForm):
    """Secrets are write-only: the form shows only their last 4 characters and never sends them back. Stored
    secrets the configured key cannot decrypt are shown as such and never merged into."""

    credentials_input = forms.CharField(
        label="Credentials",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="",
    )
    callback_password_input = forms.CharField(
        label="Callback password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="",
    )
    callback_password_clear = forms.BooleanField(label="Remove the callback password", required=False)

    mps = forms.FloatField(
        label="Messages per second",
        required=False,
        min_value=0.001,
        help_text="Blank: the provider's documented pace for this kind of sender (long code, toll-free, short code).",
    )

    class Meta:
        model = Sender
        exclude = ("credentials", "callback_password")
        widgets = {name: forms.Textarea(attrs={"rows": 2, "cols": 60})
                   for name in ("opt_out_text", "opt_in_text", "help_text_reply")}

    def _keywords(self, name: str) -> str:
        """One word per keyword, upper case, comma-separated; empty: the standard words (a number can always opt
        out)."""
        words = [w.strip().upper() for w in re.split(r"[,\n;]", self.cleaned_data.get(name) or "") if w.strip()]
        if not words:
            return Sender._meta.get_field(name).default
        bad = [w for w in words if " " in w or len(w) > 30]
        if bad:
            raise forms.ValidationError(f"A keyword is one word: {', '.join(bad)}.")
        return ", ".join(dict.fromkeys(words))

    def clean_opt_out_keywords(self):
        return self._keywords("opt_out_keywords")

    def clean_opt_in_keywords(self):
        return self._keywords("opt_in_keywords")

    def clean_help_keywords(self):
        return self._keywords("help_keywords")

    def _keyword_overlap(self) -> None:
        lists = {name: {w.strip() for w in (self.cleaned_data.get(name) or "").split(",") if w.strip()}
                 for name in ("opt_out_keywords", "opt_in_keywords", "help_keywords")}
        names = list(lists)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                both = lists[first] & lists[second]
                if both:
                    self.add_error(second, f"{', '.join(sorted(both))} is already a keyword above: a word has one "
                                           "meaning.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        keys = "; ".join(f"{cls.name}: {', '.join(cls.credential_keys)}" for cls in PROVIDERS.values())
        current = ""
        stored = self.instance.credentials if self.instance.pk else {}
        if is_undecryptable(stored):
            current = (f" Stored now: {UNDECRYPTABLE_MESSAGE}. Fix CREDENTIALS_KEY, or give every key of the "
                       "provider to replace them.")
        elif stored:
            current = " Stored now: " + ", ".join(f"{k} {_masked(v)}" for k, v in sorted(stored.items())) + "."
        self.fields["credentials_input"].help_text = (
            "One key=value per line (or a JSON object). Keys given replace the stored ones; keys left out are "
            f"kept; an empty value removes a key. Keys per provider: {keys}.{current}"
        )
        password = self.instance.callback_password if self.instance.pk else ""
        if is_undecryptable(password):
            now = " Stored now: the callback password cannot be decrypted with the configured key."
        elif password:
            now = f" Stored now: {_masked(password)}."
        else:
            now = " None stored."
        basic = ", ".join(cls.name for cls in PROVIDERS.values() if cls.callback_basic_auth)
        self.fields["callback_password_input"].help_text = (
            f"{basic}, and Sendblue with the option callback_verification url_token: HTTP Basic password required "
            "on every callback (with the user name in the options as callback_username); callbacks are refused "
            "without one. A new sender gets a random one. Encrypted; leave blank to keep the stored one."
            f"{now}"
        )

    def clean_credentials_input(self):
        text = (self.cleaned_data.get("credentials_input") or "").strip()
        if not text:
            return {}
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise forms.ValidationError("This is not a valid JSON object.") from None
            if not isinstance(data, dict):
                raise forms.ValidationError("Give a JSON object of key: value.")
            return {str(k): str(v) for k, v in data.items()}
        data = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(f"Line {number} has no '=': write key=value.")
            key, value = line.split("=", 1)
            data[key.strip()] = value.strip()
        return data

    def clean_callback_password_input(self):
        password = self.cleaned_data.get("callback_password_input") or ""
        if password and len(password) < CALLBACK_PASSWORD_MIN:
            raise forms.ValidationError(f"Use at least {CALLBACK_PASSWORD_MIN} characters.")
        if password and (":" in password or password.strip() != password):
            raise forms.ValidationError("The password may not contain ':' or start or end with a space.")
        return password

    def clean_options(self):
        options = self.cleaned_data.get("options") or {}
        if isinstance(options, dict) and "callback_password" in options:
            raise forms.ValidationError(
                "callback_password is a secret: enter it in the Callback password field, not in the options."
            )
        return options

    def clean(self):
        cleaned = super().clean()
        self._keyword_overlap()
        provider = cleaned.get("provider")
        given = cleaned.get("credentials_input", {})
        if provider in PROVIDERS:
            allowed = set(PROVIDERS[provider].credential_keys)
            unknown = set(given) - allowed
            if unknown:
                self.add_error(
                    "credentials_input",
                    f"{PROVIDERS[provider].name} uses only {', '.join(sorted(allowed))}; "
                    f"unknown: {', '.join(sorted(unknown))}.",
                )
            elif given and self.instance.pk and is_undecryptable(self.instance.credentials):
                missing = allowed - {k for k, v in given.items() if v}
                if missing:
                    self.add_error(
                        "credentials_input",
                        f"The stored {UNDECRYPTABLE_MESSAGE}, so nothing can be merged into them. Fix "
                        f"CREDENTIALS_KEY, or give every key to replace them (missing: {', '.join(sorted(missing))}).",
                    )
        return cleaned

    def save(self, commit=True):
        sender = super().save(commit=False)
        given = self.cleaned_data.get("credentials_input", {})
        if is_undecryptable(sender.credentials):
            if given:  # clean() let through only a complete set: it replaces what cannot be read
                sender.credentials = {k: v for k, v in given.items() if v}
        else:
            merged = dict(sender.credentials or {})
            for key, value in given.items():
                if value:
                    merged[key] = value
                else:
                    merged.pop(key, None)
            sender.credentials = merged
        if self.cleaned_data.get("callback_password_input"):
            sender.callback_password = self.cleaned_data["callback_password_input"]
        elif self.cleaned_data.get("callback_password_clear"):
            sender.callback_password = ""
        elif sender.pk is None and services.callback_password_needed(provider=sender.provider,
                                                                     options=sender.options):
            sender.callback_password = services.callback_password_new()  # a new sender's callbacks are never open
            self.callback_password_generated = True
        if not self.cleaned_data.get("mps") and sender.provider in PROVIDERS:
            sender.mps = PROVIDERS[sender.provider].default_mps_for(sender.address)
        if commit:
            sender.save()
        return sender


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    form = SenderForm
    list_display = ("name", "provider", "callbacks", "address", "mps", "is_active", "credentials_summary",
                    "created_at")
    list_filter = ("provider", "is_active")
    search_fields = ("name", "address")
    readonly_fields = ("pace_in_use", "uuid", "callbacks", "webhook_urls", "webhook_urls_to_paste", "provider_limits",
                       "created_at", "updated_at")
    actions = ["check_credentials"]
    fieldsets = (
        (None, {"fields": ("name", "provider", "address", "is_active", "mps", "pace_in_use")}),
        ("Credentials", {"fields": ("credentials_input", "callback_password_input", "callback_password_clear")}),
        ("Replies and keywords", {
            "fields": ("opt_out_keywords", "opt_in_keywords", "help_keywords", "opt_out_text", "opt_in_text",
                       "help_text_reply", "provider_answers_keywords"),
            "description": "A reply that is, as a whole, one of these words (case, spaces and punctuation aside) "
                           "changes the number's consent or asks for help. Each change is confirmed once.",
        }),
        ("Advanced", {"fields": ("api_base_url", "options")}),
        ("For the provider's console", {"fields": ("uuid", "callbacks", "webhook_urls", "provider_limits")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="pace in use")
    def pace_in_use(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        factor = pacing.rate_factor(obj.pk)
        if factor >= 1.0:
            return "As configured."
        return (f"{_pace(obj.mps * factor)} ({factor:.0%} of the configured pace): lowered after the provider "
                "answered 429; it comes back step by step as messages go through.")

    @admin.display(description="credentials")
    def credentials_summary(self, obj):
        if is_undecryptable(obj.credentials):
            return UNDECRYPTABLE_MESSAGE
        keys = set(obj.credentials or {})
        needed = set(PROVIDERS[obj.provider].credential_keys) if obj.provider in PROVIDERS else set()
        missing = needed - keys
        return f"missing {', '.join(sorted(missing))}" if missing else "complete"

    def get_fieldsets(self, request, obj=None):
        """Someone who may change the sender sees the webhook URLs with its callback password, to paste in the
        provider's console; anyone else sees a placeholder where the password goes."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not self.has_change_permission(request, obj):
            return fieldsets
        swap = {"webhook_urls": "webhook_urls_to_paste"}
        return [(name, {**options, "fields": tuple(swap.get(f, f) for f in options["fields"])})
                for name, options in fieldsets]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sender = self.get_object(request, object_id)
        if request.method == "GET" and sender is not None and selectors.sender_callbacks_unprotected(sender=sender):
            self.message_user(request, f"{sender.name}: {UNPROTECTED}", messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="callbacks")
    def callbacks(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        if selectors.sender_callbacks_unprotected(sender=obj):
            return format_html('<img src="{}" alt="" class="icon-inline"> <strong>{}</strong>',
                               static("admin/img/icon-alert.svg"), UNPROTECTED_SHORT)
        cls = PROVIDERS.get(obj.provider)
        if cls is not None and cls.callback_password_needed(obj.options or {}):
            return "protected by the callback password"
        return "verified with the provider's signature or secret"

    @admin.display(description="webhook URLs")
    def webhook_urls(self, obj):
        """The URLs with ``<password>`` where the callback password goes (never the password itself)."""
        return self._webhook_urls(obj, with_password=False)

    @admin.display(description="webhook URLs")
    def webhook_urls_to_paste(self, obj):
        """The URLs with the callback password in them, for someone who may change the sender."""
        return self._webhook_urls(obj, with_password=True)

    def _webhook_urls(self, obj, *, with_password: bool):
        if not obj.pk:
            return "Shown once the sender is saved."
        status = callback_url(sender=obj)
        inbound = inbound_url(obj)
        cls = PROVIDERS.get(obj.provider)
        username = str((obj.options or {}).get("callback_username") or "")
        password = obj.callback_password
        if cls is None or not cls.callback_password_needed(obj.options or {}):
            return format_html(
                "Status callbacks: <code>{}</code><br>Inbound messages: <code>{}</code><br>"
                "<small>Each message carries its status URL; paste the inbound URL in the provider's console.</small>",
                status,
                inbound,
            )
        if not password:
            return format_html(
                "Status callbacks: <code>{}</code><br>Inbound messages: <code>{}</code><br><strong>{}</strong>",
                status, inbound, UNPROTECTED,
            )
        if with_password and not is_undecryptable(password):
            # The console needs the credentials inside the URL; only staff who may change the sender see them.
            return format_html(
                "Status callbacks: <code>{}</code><br>Inbound messages: <code>{}</code><br>"
                "<small>Each message carries its status URL with the credentials; paste the inbound URL in the "
                "provider's console. The password is part of these URLs: keep them private.</small>",
                url_with_basic_auth(status, username, password),
                url_with_basic_auth(inbound, username, password),
            )
        return format_html(
            "Status callbacks: <code>{}</code><br>Inbound messages: <code>{}</code><br>"
            "<small>Replace &lt;password&gt; with the callback password. Each message carries its status URL "
            "with the credentials; paste the inbound URL in the provider's console.</small>",
            url_for_console(status, username),
            url_for_console(inbound, username),
        )

    @admin.display(description="documented limits")
    def provider_limits(self, obj):
        cls = PROVIDERS.get(obj.provider)
        if cls is None:
            return "-"
        size = "not documented"
        if cls.max_media_bytes:
            size = f"{cls.max_media_bytes // (1024 * 1024)} MB" + (" per message" if cls.media_limit_is_total
                                                                   else " per file")
        rows = [
            ("Body length", f"{cls.max_body_chars} characters" if cls.max_body_chars else "not documented"),
            ("Media files", str(cls.max_media) if cls.max_media is not None else "not documented"),
            ("Media size", size),
            ("Default pace", _pace(cls.default_mps_for(obj.address)) + " for this sender"),
        ]
        return format_html_join("", "{}: {}<br>", rows)

    @admin.action(description="Check credentials (one harmless call to the provider)", permissions=["change"])
    def check_credentials(self, request, queryset):
        from ..providers.base import OutboundRefusedError

        for sender in queryset:
            try:
                answer = provider_for(sender).check_credentials()
            except OutboundRefusedError as exc:  # refused here: the provider was never called
                self.message_user(request, f"{sender.name}: not checked, its API base URL was refused: {exc.message}.",
                                  messages.ERROR)
            except ProviderError as exc:
                status = f" (HTTP {exc.http_status})" if exc.http_status else ""
                self.message_user(
                    request, f"{sender.name}: {sender.get_provider_display()} refused{status}: {exc.message}",
                    messages.ERROR,
                )
            except ConfigurationError as exc:
                self.message_user(request, f"{sender.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{sender.name}: {answer}", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        given = sorted((form.cleaned_data.get("credentials_input") or {}).keys())
        changed = [*(f"credential {key}" for key in given)]
        if form.cleaned_data.get("callback_password_input"):
            changed.append("callback password")
        elif form.cleaned_data.get("callback_password_clear"):
            changed.append("callback password (cleared)")
        elif getattr(form, "callback_password_generated", False):
            changed.append("callback password (generated at random)")
        if changed:  # names only: a value never reaches the log
            services.audit_record(user=request.user, obj=obj, action="Changed credentials", detail=", ".join(changed))
