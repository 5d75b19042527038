"""Message templates: variables, a short list of filters and ``if``; everything else is refused in plain words
when the template is checked, and rendering one message has a bounded cost. At send time a template that
fails on one recipient's data fails that message only."""

from __future__ import annotations

import pytest

from messaging.personalize import (
    MAX_IF_DEPTH,
    MAX_OUTPUT_CHARS,
    MAX_TEMPLATE_CHARS,
    STANDARD_VARIABLES,
    TemplateRenderError,
    render,
    template_errors,
    template_variables,
)
from messaging.template_library import FILTERS

# ---- what renders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "context", "expected"), [
    ("Hi {{ first_name }}!", {"first_name": "Ada"}, "Hi Ada!"),
    ('Hi {{ first_name|default:"there" }}', {"first_name": ""}, "Hi there"),
    ('Hi {{ nickname|default_if_none:"you" }}', {"nickname": None}, "Hi you"),
    ("{{ first_name|upper }} {{ last_name|lower }}", {"first_name": "ada", "last_name": "LOVELACE"}, "ADA lovelace"),
    ("{{ name|title }} {{ city|capfirst }}", {"name": "ada lovelace", "city": "london"}, "Ada Lovelace London"),
    ("{{ text|truncatechars:5 }}|{{ text|truncatewords:2 }}", {"text": "one two three"}, "one …|one two …"),
    ('{{ phone|cut:"+" }} {{ code|slice:":2" }}', {"phone": "+1212", "code": "ABCD"}, "1212 AB"),
    ('{{ vip|yesno:"gold,standard" }} {{ n }} item{{ n|pluralize }}', {"vip": True, "n": 3}, "gold 3 items"),
    ("{{ code|length }} {{ code|first }}{{ code|last }}", {"code": "XYZ"}, "3 XZ"),
    ("{{ points|add:5 }} {{ points|add:bonus }}", {"points": "10", "bonus": 2}, "15 12"),
    ("{% if vip %}VIP{% elif points > 100 %}many{% else %}few{% endif %}", {"vip": False, "points": 150}, "many"),
    ("{% if vip and not blocked or points >= 3 %}yes{% endif %}", {"vip": True, "blocked": True, "points": 1}, ""),
    ('{% if plan == "gold" and "a" in name %}yes{% else %}no{% endif %}', {"plan": "gold", "name": "Bob"}, "no"),
    ("{% if plan != 'gold' %}upgrade{% endif %}{# a note for staff #}", {"plan": "basic"}, "upgrade"),
    ("Hi {{ first_name }}", {}, "Hi"),  # a missing field renders as nothing
    ("<b>{{ first_name }}</b> & co", {"first_name": "<Ada>"}, "<b><Ada></b> & co"),  # plain text: no escaping
])
def test_variables_allowed_filters_and_if_render(text, context, expected):
    assert template_errors(text) == ""
    assert render(text, context) == expected


# ---- what is refused, saying what and what to use instead --------------------------------------------


@pytest.mark.parametrize(("tag", "text"), [
    ("include", '{% include "other.txt" %}'),
    ("for", "{% for x in items %}{{ x }}{% endfor %}"),
    ("load", "{% load humanize %}"),
    ("now", '{% now "Y" %}'),
    ("extends", '{% extends "base.txt" %}'),
    ("block", "{% block body %}x{% endblock %}"),
    ("with", "{% with a=first_name %}{{ a }}{% endwith %}"),
    ("cycle", "{% cycle 'a' 'b' %}"),
    ("url", "{% url 'admin:index' %}"),
    ("csrf_token", "{% csrf_token %}"),
    ("debug", "{% debug %}"),
    ("templatetag", "{% templatetag openblock %}"),
    ("widthratio", "{% widthratio a b 100 %}"),
    ("firstof", "{% firstof a b %}"),
    ("lorem", "{% lorem 10000 w %}"),
    ("spaceless", "{% spaceless %}x{% endspaceless %}"),
    ("autoescape", "{% autoescape off %}x{% endautoescape %}"),
    ("filter", "{% filter upper %}x{% endfilter %}"),
    ("ssi", "{% ssi '/etc/passwd' %}"),
    ("verbatim", "{% verbatim %}x{% endverbatim %}"),
    ("comment", "{% comment %}x{% endcomment %}"),
    ("regroup", "{% regroup a by b as c %}"),
    ("for", "Hi {% if vip %}{% for x in items %}{{ x }}{% endfor %}{% endif %}"),  # inside an if too
])
def test_every_other_tag_is_refused_by_name(tag, text):
    error = template_errors(text)
    assert error.startswith(f"The {{% {tag} %}} tag is not allowed in messages; use variables"), error
    assert "the filters default, default_if_none, upper" in error and "{% if %}" in error and "{% endif %}" in error
    with pytest.raises(TemplateRenderError, match="not allowed in messages"):
        render(text, {"items": [1, 2], "vip": True})


@pytest.mark.parametrize("name", [
    "safe", "date", "pprint", "urlize", "stringformat", "escape", "join", "center", "ljust", "floatformat",
    "random", "linebreaks", "filesizeformat", "dictsort", "unordered_list", "json_script", "wordwrap", "humanize",
])
def test_every_other_filter_is_refused_by_name(name):
    for text in (f"{{{{ first_name|{name} }}}}", f'{{{{ first_name|upper|{name}:"x" }}}}',
                 f"{{% if first_name|{name} %}}x{{% endif %}}"):
        error = template_errors(text)
        assert error.startswith(f"The filter |{name} is not allowed in messages; use variables"), error
        assert "default, default_if_none" in error


def test_the_allowed_filters_are_a_short_known_list():
    assert list(FILTERS) == ["default", "default_if_none", "upper", "lower", "title", "capfirst", "truncatechars",
                             "truncatewords", "cut", "slice", "yesno", "pluralize", "length", "first", "last", "add"]


@pytest.mark.parametrize("text", ["Hi {{ contact.first_name }}", "{{ first_name.upper }}", "{{ items.0 }}",
                                  '{{ first_name|default:contact.name }}', "{% if contact.vip %}x{% endif %}",
                                  "{% if not a or b.c == 1 %}x{% endif %}", "{{ block.super }}"])
def test_a_dotted_variable_is_refused(text):
    error = template_errors(text)
    assert "a variable in a message is a plain name such as {{ first_name }}; a dot (a.b) is not allowed" in error
    assert template_variables(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi {{ _secret }}", "A variable name cannot start with _: {{ _secret }}."),
    ("{{ first_name|default }}", 'The filter |default needs a value after a colon, e.g. {{ first_name|default:"…" }}.'),
    ('{{ first_name|upper:"x" }}', "The filter |upper takes no value after a colon."),
    ("Hi {% if vip %}friend", "The {% if %} on line 1 has no {% endif %}."),
    ("Hi\n{% else %}", "{% else %} on line 2 has no {% if %} before it."),
    ("Hi {% endif %}", "{% endif %} on line 1 has no {% if %} before it."),
    ("Hi {{ first name }}", "Cannot read {{ first name }}: a variable is one name of letters, digits and _, "
                            'optionally followed by filters such as |default:"there".'),
    ("Hi {{ }}", "An empty {{ }} or {% %} is not allowed in messages."),
    ("{% if vip plan %}x{% endif %}", "An {% if %} condition cannot be read: Unused 'plan' at end of if expression."),
    ("{% if %}x{% endif %}", "An {% if %} condition cannot be read: Unexpected end of expression in if tag."),
    ("{{ bio|truncatechars:100000 }}", "The filter |truncatechars takes a number from 1 to 2,000, e.g. "
                                       "|truncatechars:20."),
    ("{{ bio|truncatewords:0 }}", "The filter |truncatewords takes a number from 1 to 500, e.g. |truncatewords:20."),
    ("{{ bio|truncatechars:size }}", "The filter |truncatechars takes a number from 1 to 2,000, e.g. "
                                     "|truncatechars:20."),
])
def test_mistakes_are_explained_in_plain_words(text, expected):
    assert template_errors(text) == expected


def test_unknown_variables_are_refused_with_the_closest_known_name():
    known = {"plan", "city"}
    assert template_errors("Hi {{ frist_name }}", known) == (
        "Unknown variable {{ frist_name }} (did you mean {{ first_name }}?): "
        "the contacts have first_name, last_name, email, phone, city, plan."
    )
    assert template_errors("{% if plann == 'gold' %}x{% endif %}", known).startswith(
        "Unknown variable {{ plann }} (did you mean {{ plan }}?): "
    )
    assert template_errors('{{ first_name|default:nick }}', known).startswith("Unknown variable {{ nick }}: ")
    assert template_errors("{{ first_name }} {{ phone }} {{ city|upper }} {% if plan == None %}{% endif %}",
                           known) == ""
    assert template_errors("Hi {{ frist_name }}") == ""  # without ``known``, any name may be used
    assert template_errors("{% for %}", known).startswith("The {% for %} tag")  # the syntax is reported first


def test_template_variables_in_first_use_order():
    text = ('{% if vip and points > limit or not False %}{{ first_name|default:nickname }}'
            '{% elif city %}{{ phone }} {{ first_name }} {{ "text" }} {{ 5 }}{% endif %} {{ vip }}')
    assert template_variables(text) == ["vip", "points", "limit", "first_name", "nickname", "city", "phone"]
    assert template_variables("No variables at all.") == []
    assert template_variables("{% include 'x' %}{{ first_name }}") == []
    assert STANDARD_VARIABLES == ("first_name", "last_name", "email", "phone")


# ---- bounded cost --------------------------------------------------------------------------------


def test_a_template_longer_than_the_cap_is_refused():
    just = "{{ first_name }}" + "x" * (MAX_TEMPLATE_CHARS - len("{{ first_name }}"))
    assert template_errors(just) == ""
    error = template_errors(just + "x")
    assert error == f"The message is {MAX_TEMPLATE_CHARS + 1:,} characters long; a message template has at most " \
                    f"{MAX_TEMPLATE_CHARS:,}."
    with pytest.raises(TemplateRenderError, match="a message template has at most"):
        render(just + "x", {})


def test_if_blocks_nested_too_deep_are_refused():
    def nested(depth):
        return "{% if a %}" * depth + "x" + "{% endif %}" * depth

    assert template_errors(nested(MAX_IF_DEPTH)) == ""
    assert render(nested(MAX_IF_DEPTH), {"a": True}) == "x"
    assert template_errors(nested(MAX_IF_DEPTH + 1)).startswith(
        f"The {{% if %}} blocks on line 1 are nested more than {MAX_IF_DEPTH} deep"
    )
    # A template made of nothing but nested ifs is refused before Django's parser recurses into it.
    assert "nested more than" in template_errors(nested(MAX_TEMPLATE_CHARS // 25))
    assert template_errors("{% if a %}x{% endif %}" * 200) == ""  # many blocks side by side are fine


def test_output_longer_than_the_cap_is_an_error():
    assert render("{{ bio }}", {"bio": "x" * MAX_OUTPUT_CHARS}) == "x" * MAX_OUTPUT_CHARS
    with pytest.raises(TemplateRenderError) as caught:
        render("{{ bio }}!", {"bio": "x" * MAX_OUTPUT_CHARS})
    assert str(caught.value) == f"The message would be {MAX_OUTPUT_CHARS + 1:,} characters long; the most is " \
                                f"{MAX_OUTPUT_CHARS:,}."
    # A long value cut down by a filter is fine.
    assert render("{{ bio|upper|truncatechars:3 }}", {"bio": "y" * 100_000}) == "YY…"


def test_a_filter_cannot_grow_a_text_past_the_cap():
    text = "{{ bio" + "|add:bio" * 40 + "|truncatechars:10 }}"
    assert template_errors(text) == ""
    assert render(text, {"bio": "z" * 100}) == "zzzzzzzzz…"
    with pytest.raises(TemplateRenderError, match=r"^The filter \|add could not be applied to 'zzz.*the result "
                                                  r"would be longer than 20,000 characters\.$"):
        render(text, {"bio": "z" * 1_000})


def test_a_filter_that_fails_on_a_value_names_the_filter_and_the_value():
    with pytest.raises(TemplateRenderError) as caught:
        render("Your code starts with {{ code|first }}", {"code": 42})
    assert str(caught.value) == "The filter |first could not be applied to 42: 'int' object is not subscriptable."
    assert isinstance(caught.value, ValueError)
    assert render("Your code starts with {{ code|first }}", {"code": "42"}) == "Your code starts with 4"


# ---- the send path: one recipient's data fails its own message, never the batch --------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields", "reason"), [
    ("Hi {{ first_name }}{% if note %} {{ note }}{% endif %}", {"note": "n" * (MAX_OUTPUT_CHARS + 1)},
     f"The message would be {len('Hi Person1 ') + MAX_OUTPUT_CHARS + 1:,} characters long; the most is "
     f"{MAX_OUTPUT_CHARS:,}."),
    ("Hi {{ first_name }}, your code starts with {{ code|first }}", {"code": 7},
     "The filter |first could not be applied to 7: 'int' object is not subscriptable."),
])
def test_a_template_that_fails_for_one_contact_fails_only_that_message(
    make_sender, make_audience, make_campaign, sandbox, engine, body, fields, reason
):
    from campaigns.models import Contact
    from campaigns.services import campaign_launch
    from messaging.models import Message
    from messaging.selectors import campaign_counts, campaign_counts_exact
    from messaging.services import messages_send

    sender, backup = make_sender("plivo"), make_sender("plivo")
    audience = make_audience(4)
    contacts = list(Contact.objects.filter(lists=audience).order_by("id"))
    for contact in contacts:
        contact.custom_fields = {"code": "AB"}
    contacts[1].custom_fields = fields
    Contact.objects.bulk_update(contacts, ["custom_fields"])
    campaign = make_campaign(sender, [audience], body=body, backup_sender=backup)
    campaign_launch(campaign=campaign)
    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))

    outcome = messages_send(message_ids=[m.pk for m in messages])

    assert (outcome["sent"], outcome["failed"], outcome["failover"]) == (3, 1, 0), outcome
    broken = Message.objects.get(campaign=campaign, to=contacts[1].phone)
    assert (broken.status, broken.error_code, broken.sender_id) == (Message.Status.FAILED, "template", sender.pk)
    assert broken.error_message == f"The message template could not be rendered for this recipient: {reason}"
    assert broken.body == ""
    others = Message.objects.filter(campaign=campaign).exclude(pk=broken.pk)
    assert {m.status for m in others} == {Message.Status.SENT}
    assert sorted(m.body.split(",")[0] for m in others) == ["Hi Person0", "Hi Person2", "Hi Person3"]
    assert sandbox.ledger()["accepted"] == 3  # the broken message never reached a provider
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)
