"""Message templates: a small part of Django's template language, on plain text (no HTML escaping).

A message may use variables (``{{ first_name }}``: a plain name, never ``a.b``), the filters listed in
``messaging.template_library`` (``{{ first_name|default:"there" }}``, ``|upper``, ``|truncatechars:20``, ...)
and ``{% if %} … {% elif %} … {% else %} … {% endif %}`` with ``and``, ``or``, ``not``, comparisons and ``in``.
Every other tag (``include``, ``for``, ``load``, ``now``, ...) and filter (``safe``, ``date``, ...) is refused
when the template is checked, in plain words. Django's own parser does the work: the engine's only builtin
library is ``messaging.template_library``, so anything else fails to compile.

The cost of rendering one message is bounded: a template has at most ``MAX_TEMPLATE_CHARS`` characters and
``MAX_IF_DEPTH`` nested ``if`` blocks, the truncating filters take bounded numbers, and a rendering longer
than ``MAX_OUTPUT_CHARS`` is an error. The caps are above the longest body any provider takes (Sendblue's
18,995 characters), so they never refuse a message a provider would send. Compiled templates are cached per
process.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Lexer, TokenType, Variable, VariableNode
from django.template.defaulttags import IfNode

from .template_library import BOUNDED_ARGUMENTS, FILTERS, FilterError

STANDARD_VARIABLES = ("first_name", "last_name", "email", "phone")
MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_CHARS = 20_000
MAX_IF_DEPTH = 10

# Names the engine itself puts in every context: constants, not contact fields.
_CONSTANTS = ("True", "False", "None")

ALLOWED = (
    "use variables such as {{ first_name }}, the filters " + ", ".join(FILTERS)
    + " and {% if %} … {% elif %} … {% else %} … {% endif %}"
)


class TemplateRenderError(ValueError):
    """A template cannot be rendered for this context; the message says why, in plain words."""


class _MessageEngine(Engine):
    default_builtins = ["messaging.template_library"]


_engine = _MessageEngine(autoescape=False, libraries={})


def _tag_refused(tag: str) -> str:
    return f"The {{% {tag} %}} tag is not allowed in messages; {ALLOWED}."


def _plain(exc: TemplateSyntaxError) -> str:
    """Django's compile error in words a person writing a message understands."""
    text = str(exc)
    if m := re.match(r"Invalid block tag on line (\d+): '([^']*)'", text):
        line, tag = m.groups()
        if tag in ("elif", "else", "endif"):
            return f"{{% {tag} %}} on line {line} has no {{% if %}} before it."
        opened = tag[3:] if tag.startswith("end") and tag != "end" else tag
        return _tag_refused(opened)
    if m := re.match(r"Invalid filter: '([^']*)'", text):
        return f"The filter |{m[1]} is not allowed in messages; {ALLOWED}."
    if m := re.match(r"Unclosed tag on line (\d+): '([^']*)'", text):
        return f"The {{% {m[2]} %}} on line {m[1]} has no {{% end{m[2]} %}}."
    if m := re.match(r"Variables and attributes may not begin with underscores: '([^']*)'", text):
        return f"A variable name cannot start with _: {{{{ {m[1]} }}}}."
    if m := re.match(r"(\w+) requires (\d+) arguments, (\d+) provided", text):
        name, wanted, given = m[1], int(m[2]), int(m[3])
        if wanted > given:
            return f'The filter |{name} needs a value after a colon, e.g. {{{{ first_name|{name}:"…" }}}}.'
        return f"The filter |{name} takes no value after a colon."
    if m := re.match(r"Could not parse the remainder: '[^']*' from '(.*)'$", text):
        return (f"Cannot read {{{{ {m[1]} }}}}: a variable is one name of letters, digits and _, optionally "
                f'followed by filters such as |default:"there".')
    if re.match(r"Empty (variable|block) tag", text):
        return "An empty {{ }} or {% %} is not allowed in messages."
    if "if tag" in text or "if expression" in text or text.startswith("Malformed template tag"):
        return f"An {{% if %}} condition cannot be read: {text}"
    return text


def _too_deep(text: str) -> str:
    """Refuse deeply nested ``if`` blocks from the tokens, before the parser recurses into them."""
    depth = 0
    for token in Lexer(text).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        command = token.contents.split()[0] if token.contents.split() else ""
        if command == "if":
            depth += 1
            if depth > MAX_IF_DEPTH:
                return (f"The {{% if %}} blocks on line {token.lineno} are nested more than {MAX_IF_DEPTH} "
                        f"deep; use {{% elif %}} instead of an {{% if %}} inside an {{% else %}}.")
        elif command == "endif":
            depth -= 1
    return ""


def _expressions(nodelist):
    """Every filter expression of a compiled template, in the order it appears in the text."""
    for node in nodelist:
        if isinstance(node, VariableNode):
            yield node.filter_expression
        elif isinstance(node, IfNode):
            for condition, body in node.conditions_nodelists:
                if condition is not None:
                    yield from _condition_expressions(condition)
                yield from _expressions(body)


def _condition_expressions(condition):
    if isinstance(getattr(condition, "value", None), FilterExpression):  # a literal of the condition
        yield condition.value
        return
    for part in (condition.first, condition.second):
        if part is not None:
            yield from _condition_expressions(part)


def _variables_of(expression: FilterExpression):
    """The variables an expression reads: its value and the filter values that are variables."""
    if isinstance(expression.var, Variable):
        yield expression.var
    for _func, args in expression.filters:
        for lookup, arg in args:
            if lookup:
                yield arg


def _filter_name(func) -> str:
    return getattr(func, "_filter_name", "")


def _expression_errors(expression: FilterExpression) -> str:
    for variable in _variables_of(expression):
        if variable.lookups and len(variable.lookups) > 1:
            return (f"{{{{ {variable.var} }}}}: a variable in a message is a plain name such as "
                    f"{{{{ first_name }}}}; a dot (a.b) is not allowed.")
    for func, args in expression.filters:
        name = _filter_name(func)
        if name in BOUNDED_ARGUMENTS:
            low, high = BOUNDED_ARGUMENTS[name]
            lookup, arg = args[0]
            if lookup:  # a number is parsed as a Variable holding a literal; a name is not a number
                arg = arg.literal if arg.lookups is None else None
            try:
                number = int(arg)
            except (TypeError, ValueError):
                number = None
            if number is None or not low <= number <= high:
                return f"The filter |{name} takes a number from {low:,} to {high:,}, e.g. |{name}:{min(high, 20)}."
    return ""


@lru_cache(maxsize=256)
def _compiled(text: str):
    """(template, "") or (None, the reason it is refused)."""
    if len(text) > MAX_TEMPLATE_CHARS:
        return None, f"The message is {len(text):,} characters long; a message template has at most {MAX_TEMPLATE_CHARS:,}."
    error = _too_deep(text)
    if error:
        return None, error
    try:
        template = _engine.from_string(text)
    except TemplateSyntaxError as exc:
        return None, _plain(exc)
    for expression in _expressions(template.nodelist):
        error = _expression_errors(expression)
        if error:
            return None, error
    return template, ""


def template_variables(text: str) -> list[str]:
    """The variable names a template uses (in its text, its ``if`` conditions and as filter values), in the
    order they first appear; [] when the template is refused."""
    template, error = _compiled(text)
    if error:
        return []
    names: dict[str, None] = {}
    for expression in _expressions(template.nodelist):
        for variable in _variables_of(expression):
            if variable.lookups and variable.var not in _CONSTANTS:
                names.setdefault(variable.var)
    return list(names)


def variables_with_fallback(text: str) -> set[str]:
    """The variables whose every use in the message's text has a fallback (``|default:…`` or
    ``|default_if_none:…``): an empty value leaves no gap. A variable used only in ``if`` conditions counts too."""
    template, error = _compiled(text)
    if error:
        return set()
    printed: dict[str, bool] = {}
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        expression = node.filter_expression
        variable = expression.var
        if isinstance(variable, Variable) and variable.lookups:
            covered = any(_filter_name(f) in ("default", "default_if_none") for f, _args in expression.filters)
            printed[variable.var] = printed.get(variable.var, True) and covered
    return {name for name in template_variables(text) if printed.get(name, True)}


def template_errors(text: str, known: set[str] | None = None) -> str:
    """Empty when the template can be used, else the reason in plain words. With ``known`` (the contacts'
    field names; the standard variables are always known), a variable that is not one of them is refused."""
    error = _compiled(text)[1]
    if error or known is None:
        return error
    known = set(known) | set(STANDARD_VARIABLES)
    for name in template_variables(text):
        if name not in known:
            listed = [*STANDARD_VARIABLES, *sorted(known - set(STANDARD_VARIABLES))]
            close = difflib.get_close_matches(name, listed, n=1)
            hint = f" (did you mean {{{{ {close[0]} }}}}?)" if close else ""
            return f"Unknown variable {{{{ {name} }}}}{hint}: the contacts have {', '.join(listed)}."
    return ""


def render(text: str, context: dict) -> str:
    """The template rendered with ``context``, stripped; ``TemplateRenderError`` saying why when it cannot be
    (a refused template, a filter that fails on this context's values, a result that is too long)."""
    if "{" not in text:
        return text
    template, error = _compiled(text)
    if error:
        raise TemplateRenderError(error)
    try:
        out = template.render(Context(context, autoescape=False)).strip()
    except FilterError as exc:
        raise TemplateRenderError(str(exc)[:1].upper() + str(exc)[1:] + ".") from exc
    except Exception as exc:  # whatever else a value can make the engine raise
        raise TemplateRenderError(f"The template failed on these values: {exc}") from exc
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateRenderError(f"The message would be {len(out):,} characters long; the most is {MAX_OUTPUT_CHARS:,}.")
    return out


def message_context(fields: dict | None, *, phone: str) -> dict:
    """The variables a message's template sees: its contact's fields (see ``messaging.audience``) and the
    number it goes to as ``phone``."""
    return {**(fields or {}), "phone": phone}
