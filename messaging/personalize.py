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


def message_context(fields: dict | None, *, phone: str) -> dict:
    """The variables a message's template sees: its contact's fields (see ``messaging.audience``) and the
    number it goes to as ``phone``."""
    return {**(fields or {}), "phone": phone}
