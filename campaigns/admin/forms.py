"""Forms of the audience admin."""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

from django import forms

from ..imports.selectors import custom_field_keys
from ..models import Contact

CUSTOM_PREFIX = "custom__"
NEW_NAME, NEW_VALUE = "new_custom_field_name", "new_custom_field_value"
# The names a message template already gives another meaning: the contact's standard fields (which win over a
# custom field of the same name) and the template language's own literals.
RESERVED_NAMES = frozenset({"first_name", "last_name", "email", "phone", "timezone", "True", "False", "None"})
# A variable a message template can use: Django's template language refuses names starting with "_".
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@lru_cache(maxsize=1)
def timezone_choices() -> tuple[tuple[str, str], ...]:
    return (("", "(from the number)"), *((name, name) for name in sorted(zoneinfo.available_timezones())))


def custom_field_name_error(name: str) -> str:
    """Why ``name`` cannot name a custom field, or ``""``."""
    if not FIELD_NAME.fullmatch(name):
        return (f"“{name}” cannot be used in a message template: use letters, digits and underscores, "
                f"starting with a letter (e.g. company_name).")
    if name in RESERVED_NAMES:
        return f"“{name}” is a standard field of every contact; give the custom field another name."
    return ""


class ContactForm(forms.ModelForm):
    """The contact form, with each custom field as a labelled text input instead of raw JSON.

    One input per custom field name in use (``custom_field_keys``) and per name the contact has, and a pair of
    inputs to add a field. An empty value removes the field from the contact."""

    timezone = forms.ChoiceField(
        required=False, choices=timezone_choices,
        help_text="Used for the contact's local time. Leave it blank to go by the number's country.",
    )
    new_custom_field_name = forms.CharField(
        label="New field", required=False, max_length=64,
        help_text="Its name in templates, e.g. company_name for {{ company_name }}.",
    )
    new_custom_field_value = forms.CharField(label="Value of the new field", required=False)

    class Meta:
        model = Contact
        exclude = ("custom_fields",)

    # The custom field names in use across contacts; the admin sets them once per request (``custom_field_keys``
    # costs two small queries).
    known_keys: list[str] | None = None

    @staticmethod
    def keys_for(instance: Contact | None, known: list[str]) -> list[str]:
        """The custom field names the form shows for ``instance``: those in use and the contact's own."""
        return sorted(set(known) | set((instance.custom_fields or {}) if instance else {}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        own = dict(self.instance.custom_fields or {})
        known = custom_field_keys() if self.known_keys is None else self.known_keys
        self.custom_keys = self.keys_for(self.instance, known)
        for key in self.custom_keys:
            value = own.get(key)
            self.fields[CUSTOM_PREFIX + key] = forms.CharField(
                label=key, required=False, initial="" if value is None else str(value),
                help_text=f"{{{{ {key} }}}} in a message template. Empty: the contact has no {key}.",
                widget=forms.TextInput(attrs={"class": "vTextField"}),
            )
        current = self.instance.timezone
        if current and current not in zoneinfo.available_timezones():
            # A value saved before (or by another tool) stays selectable rather than failing the form.
            self.fields["timezone"].choices = [*timezone_choices(), (current, current)]

    def clean(self):
        cleaned = super().clean()
        name = (cleaned.get(NEW_NAME) or "").strip()
        value = cleaned.get(NEW_VALUE) or ""
        if name:
            error = custom_field_name_error(name)
            if not error and name in self.custom_keys:
                error = f"“{name}” is already a field above: give its value there."
            if error:
                self.add_error(NEW_NAME, error)
            elif not value:
                self.add_error(NEW_VALUE, f"Give a value for the new field “{name}”.")
        elif value:
            self.add_error(NEW_NAME, "Name the new field, or leave its value empty.")
        return cleaned

    def custom_fields(self) -> dict:
        """The contact's custom fields as entered. A value left as it was keeps its stored type."""
        stored = dict(self.instance.custom_fields or {})
        fields = dict(stored)
        for key in self.custom_keys:
            value = self.cleaned_data.get(CUSTOM_PREFIX + key) or ""
            if not value:
                fields.pop(key, None)
            elif key not in stored or str(stored[key]) != value:
                fields[key] = value
        name = (self.cleaned_data.get(NEW_NAME) or "").strip()
        if name:
            fields[name] = self.cleaned_data[NEW_VALUE]
        return fields

    def save(self, commit=True):
        self.instance.custom_fields = self.custom_fields()
        return super().save(commit=commit)
