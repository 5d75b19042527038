"""Senders in the admin: write-only secrets in labelled fields for each credential key of the provider, a health
panel (circuit, pace in use, callbacks accepted and refused), the webhook URLs to paste in the provider's console,
the provider's documented limits, and a credentials check."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

from .. import selectors, services
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
    "are refused until one is set: enter one under Callback password, then paste the new webhook URLs in the "
    "provider's console."
)


# Credential words written as staff read them in the providers' consoles ("auth_id" is "Auth ID").
_LABEL_WORDS = {"id": "ID", "api": "API", "sid": "SID", "url": "URL"}


def credential_label(key: str) -> str:
    """The human name of a credential key: ``api_key_id`` is "API key ID", ``signing_secret`` "Signing secret"."""
    words = [_LABEL_WORDS.get(word, word) for word in key.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def credential_field(provider: str, key: str) -> str:
    """The form field of one credential key of one provider."""
    return f"credential_{provider}_{key}"


def credentials_optional(provider: str, options: dict | None) -> frozenset[str]:
    """The credential keys a sender of this provider with these options may leave out (``Provider.credentials_optional``)."""
    cls = PROVIDERS.get(provider)
    return cls.credentials_optional(options or {}) if cls is not None else frozenset()


class SecretInput(forms.PasswordInput):
    """A write-only secret: an empty password box (left blank, the stored value is kept) and, once a value is
    stored, a box to tick to remove it. Its value is ``(text, remove)``."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"autocomplete": "new-password", "spellcheck": "false", **(attrs or {})},
                         render_value=False)
        self.removable = False

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, None, attrs, renderer)
        if not self.removable:
            return html
        box = f"{(attrs or {}).get('id') or 'id_' + name}_clear"
        return format_html('{}<label class="secret-remove" for="{}"><input type="checkbox" name="{}" id="{}"> '
                           "Remove</label>", html, box, f"{name}_clear", box)

    def value_from_datadict(self, data, files, name):
        remove = forms.CheckboxInput().value_from_datadict(data, files, f"{name}_clear")
        return (str(data.get(name) or ""), bool(remove))

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}_clear" not in data


class SecretField(forms.Field):
    """One credential key: ``(value, remove)``; ``("", False)`` keeps what is stored."""

    widget = SecretInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        text, remove = value if isinstance(value, tuple) else (value or "", False)
        text = text.strip()
        return (text, remove and not text)  # a new value wins over the box

    def has_changed(self, initial, data):
        text, remove = self.to_python(data)
        return bool(text or remove)


class _SenderForm(forms.ModelForm):
    """Secrets are write-only: the form shows only their last 4 characters and never sends them back. Stored
    secrets the configured key cannot decrypt are shown as such and never merged into. Each provider's
    credential keys have their own labelled fields; only the chosen provider's are used."""

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
        self._credential_help()
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

    def _credential_help(self) -> None:
        """Each key's field says what is stored for it (its last 4 characters) for the sender's own provider."""
        stored = self.instance.credentials if self.instance.pk else {}
        optional = credentials_optional(self.instance.provider, self.instance.options) if self.instance.pk else set()
        for code, cls in PROVIDERS.items():
            for key in cls.credential_keys:
                field = self.fields[credential_field(code, key)]
                if not self.instance.pk or self.instance.provider != code:
                    field.help_text = "Encrypted; once saved, shown only by its last 4 characters."
                elif is_undecryptable(stored):
                    field.help_text = (f"Stored now: {UNDECRYPTABLE_MESSAGE}. Fix CREDENTIALS_KEY, or give every "
                                       f"key of {cls.name} to replace them.")
                elif stored.get(key):
                    field.widget.removable = True
                    field.help_text = f"Stored now: {_masked(stored[key])}. Leave blank to keep it."
                else:
                    field.help_text = "None stored."
                if self.instance.pk and code == self.instance.provider and key in optional:
                    field.help_text += " Optional for this sender: its callbacks are proven by the callback password."

    def _credentials_clean(self, provider: str, options: dict) -> None:
        """The credentials to store for the chosen provider (``self.credentials_new``, None to leave them as
        they are) and the keys changed (``self.credentials_changed``, for the audit log), or an error on each
        missing key's field naming it."""
        self.credentials_new = None
        self.credentials_changed = []
        cls = PROVIDERS.get(provider)
        if cls is None:
            return
        given = {key: self.cleaned_data.get(credential_field(provider, key)) or ("", False)
                 for key in cls.credential_keys}
        values = {key: text for key, (text, _remove) in given.items() if text}
        removed = {key for key, (_text, remove) in given.items() if remove}
        same_provider = bool(self.instance.pk) and self.instance.provider == provider
        stored = self.instance.credentials if same_provider else {}
        required = [key for key in cls.credential_keys if key not in credentials_optional(provider, options)]
        if is_undecryptable(stored):
            if not values and not removed:
                return  # kept as they are: the right key still reads them
            missing = [key for key in required if key not in values]
            if missing:
                message = (f"The stored {UNDECRYPTABLE_MESSAGE}, so nothing can be merged into them. Fix "
                           f"CREDENTIALS_KEY, or give every key of {cls.name} to replace them.")
                for key in missing:
                    self.add_error(credential_field(provider, key), message)
                return
            new = dict(values)
        else:
            new = {key: value for key, value in (stored or {}).items() if key not in removed}
            new.update(values)
        missing = [key for key in required if not new.get(key)]
        for key in missing:
            self.add_error(credential_field(provider, key), f"{cls.name} needs {credential_label(key)}.")
        if missing:
            return
        before = self.instance.credentials if self.instance.pk else {}
        gone = set() if is_undecryptable(before) else set(before or {}) - set(new)
        self.credentials_new = new
        self.credentials_changed = [*(f"credential {key}" for key in sorted(values)),
                                    *(f"credential {key} (removed)" for key in sorted(gone))]

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
        options = cleaned.get("options")
        self._credentials_clean(cleaned.get("provider") or "", options if isinstance(options, dict) else {})
        return cleaned

    def save(self, commit=True):
        sender = super().save(commit=False)
        if getattr(self, "credentials_new", None) is not None:
            sender.credentials = self.credentials_new
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


SenderForm = type("SenderForm", (_SenderForm,), {
    "__module__": __name__,
    "__doc__": _SenderForm.__doc__,
    **{credential_field(code, key): SecretField(label=credential_label(key))
       for code, cls in PROVIDERS.items() for key in cls.credential_keys},
})

CREDENTIAL_FIELDSETS = tuple(
    (f"{cls.name} credentials", {
        "fields": tuple(credential_field(code, key) for key in cls.credential_keys),
        "classes": ("sender-credentials", f"sender-credentials-{code}"),
        "description": f"Used when the provider is {cls.name}. Encrypted and write-only.",
    })
    for code, cls in PROVIDERS.items()
)


def _refusal_advice(reason: str, sender: Sender) -> str:
    """What to check for a kind of refused callback (``reason`` starts with the HTTP status we answered)."""
    status = reason.split(" ", 1)[0]
    cls = PROVIDERS.get(sender.provider)
    name = cls.name if cls else sender.provider
    if status == "403":
        if cls is not None and cls.callback_password_needed(sender.options or {}) and not sender.callback_password:
            return ("This sender has no callback password, so its callbacks are refused: set one below, then paste "
                    f"the new webhook URLs in {name}'s console.")
        if cls is not None and cls.callback_password_needed(sender.options or {}):
            return ("The callback credentials did not match: paste the webhook URLs shown below, with the callback "
                    f"password, in {name}'s console again (a new callback password needs new URLs there).")
        return (f"{name}'s signature did not match: check that the {name} credentials above hold the secret "
                f"{name} signs callbacks with (the one in its console), and that its console calls the webhook URLs "
                "shown below, exactly.")
    if status == "503":
        return ("This sender's stored secrets cannot be used, or one needed to verify callbacks is missing: see its "
                "credentials below.")
    if status == "400":
        return f"The callback could not be read as {name} writes it: check the webhook URLs set in {name}'s console."
    if status == "413":
        return "The callback was larger than CALLBACK_MAX_BYTES allows."
    return ""


def _health_context(sender: Sender) -> dict:
    """The health panel at the top of the sender's page: the selector's figures, with its pace in words and what
    to check for each kind of refused callback."""
    health = selectors.sender_health(sender)
    if health.pace_reduced:
        in_use = (f"{_pace(health.effective_mps)} ({health.rate_factor:.0%} of the configured pace): reduced after "
                  "the provider answered 429; it comes back step by step as messages go through.")
    else:
        in_use = "As configured."
    return {
        "health": health,
        "health_pace": {"configured": _pace(health.configured_mps), "in_use": in_use},
        "health_refusals": [{"refusal": r, "advice": _refusal_advice(r.reason, sender)} for r in health.refusals],
    }


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    form = SenderForm
    list_display = ("name", "provider", "callbacks", "address", "mps", "is_active", "credentials_summary",
                    "created_at")
    list_filter = ("provider", "is_active")
    search_fields = ("name", "address")
    readonly_fields = ("uuid", "callbacks", "webhook_urls", "webhook_urls_to_paste", "provider_limits",
                       "created_at", "updated_at")
    actions = ["check_credentials"]
    fieldsets = (
        (None, {"fields": ("name", "provider", "address", "is_active", "mps")}),
        *CREDENTIAL_FIELDSETS,
        ("Callback password", {"fields": ("callback_password_input", "callback_password_clear")}),
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
        if obj is not None and not self.has_change_permission(request, obj):
            own = f"sender-credentials-{obj.provider}"
            return [(name, options) for name, options in fieldsets
                    if "sender-credentials" not in options.get("classes", ()) or own in options["classes"]]
        if obj is None:
            return fieldsets
        swap = {"webhook_urls": "webhook_urls_to_paste"}
        return [(name, {**options, "fields": tuple(swap.get(f, f) for f in options["fields"])})
                for name, options in fieldsets]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sender = self.get_object(request, object_id)
        if request.method == "GET" and sender is not None and selectors.sender_callbacks_unprotected(sender=sender):
            self.message_user(request, f"{sender.name}: {UNPROTECTED}", messages.WARNING)
        if sender is not None:
            extra_context = {**(extra_context or {}), **_health_context(sender)}
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
        changed = list(getattr(form, "credentials_changed", []))
        if form.cleaned_data.get("callback_password_input"):
            changed.append("callback password")
        elif form.cleaned_data.get("callback_password_clear"):
            changed.append("callback password (cleared)")
        elif getattr(form, "callback_password_generated", False):
            changed.append("callback password (generated at random)")
        if changed:  # names only: a value never reaches the log
            services.audit_record(user=request.user, obj=obj, action="Changed credentials", detail=", ".join(changed))
