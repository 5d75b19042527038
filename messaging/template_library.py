"""The whole template language of a message: the ``if`` tag (``elif``, ``else``, ``and``, ``or``, ``not``,
comparisons, ``in``) and a short list of Django's own filters, nothing else. ``messaging.personalize`` makes
this module the engine's only builtin library, so any other tag or filter fails to compile.

Each filter is Django's, guarded: an exception it raises on a recipient's value becomes a ``FilterError``
naming the filter, and a filter may not make a text longer than ``MAX_FILTER_CHARS`` unless it is no longer
than the value it was given (a chain of ``|add:`` cannot grow a message without bound).
"""

from __future__ import annotations

import functools

from django.template import Library, defaultfilters
from django.template.defaulttags import do_if

MAX_FILTER_CHARS = 20_000

# The numbers a filter may take: (smallest, largest), checked when a template is saved.
BOUNDED_ARGUMENTS = {"truncatechars": (1, 2_000), "truncatewords": (1, 500)}

FILTERS = {
    "default": defaultfilters.default,
    "default_if_none": defaultfilters.default_if_none,
    "upper": defaultfilters.upper,
    "lower": defaultfilters.lower,
    "title": defaultfilters.title,
    "capfirst": defaultfilters.capfirst,
    "truncatechars": defaultfilters.truncatechars,
    "truncatewords": defaultfilters.truncatewords,
    "cut": defaultfilters.cut,
    "slice": defaultfilters.slice_filter,
    "yesno": defaultfilters.yesno,
    "pluralize": defaultfilters.pluralize,
    "length": defaultfilters.length,
    "first": defaultfilters.first,
    "last": defaultfilters.last,
    "add": defaultfilters.add,
}

register = Library()


class FilterError(Exception):
    """A filter could not handle a recipient's value."""

    def __init__(self, name: str, value, reason: str):
        super().__init__(f"the filter |{name} could not be applied to {_shown(value)}: {reason}")
        self.name = name


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}… ({len(str(value)):,} characters)"


def _guarded(name: str, func):
    @functools.wraps(func)  # keeps the signature Django checks the number of arguments against
    def guarded(value, *args):
        try:
            result = func(value, *args)
        except Exception as exc:
            raise FilterError(name, value, str(exc) or type(exc).__name__) from exc
        if isinstance(result, str) and len(result) > MAX_FILTER_CHARS and len(result) > len(str(value)):
            raise FilterError(name, value, f"the result would be longer than {MAX_FILTER_CHARS:,} characters")
        return result

    return guarded


for _name, _func in FILTERS.items():
    register.filter(_name, _guarded(_name, _func))

register.tag("if", do_if)
