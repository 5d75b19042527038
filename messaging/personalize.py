"""Message templates: Django's template language on plain text (no HTML escaping).

Written with the standard engine instead of a hand-made formatter so staff get filters such as
``{{ first_name|default:"there" }}``; compiled templates are cached per process.
"""

from __future__ import annotations

from functools import lru_cache

from django.template import Context, Engine, TemplateSyntaxError

_engine = Engine(autoescape=False, libraries={}, builtins=["django.template.defaultfilters"])


@lru_cache(maxsize=256)
def _compile(text: str):
    return _engine.from_string(text)


def template_errors(text: str) -> str:
    """Empty when the template compiles, else the reason in plain words."""
    try:
        _compile(text)
    except TemplateSyntaxError as exc:
        return str(exc)
    return ""


def render(text: str, context: dict) -> str:
    if "{" not in text:
        return text
    return _compile(text).render(Context(context, autoescape=False)).strip()


def contact_context(contact, phone: str | None = None) -> dict:
    """Template variables for one contact (a model instance or a dict of its fields): its custom fields, then
    the standard ones (which win). ``phone`` saves re-reading the contact's number when it is known."""
    if contact is None:
        return {}
    if isinstance(contact, dict):
        get = contact.get
    else:
        def get(name, default=None):
            return getattr(contact, name, default)
    context = dict(get("custom_fields") or {})
    context.update(
        first_name=get("first_name") or "",
        last_name=get("last_name") or "",
        email=get("email") or "",
        phone=phone if phone is not None else str(get("phone") or ""),
    )
    return context
