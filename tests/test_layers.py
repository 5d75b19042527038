"""The seam between the two apps, read from the source: ``campaigns`` uses messaging only through its
services and selectors (it names no messaging table and writes no messaging model), and ``messaging`` never
imports ``campaigns`` nor reads a campaign through a message's foreign key."""

from __future__ import annotations

import ast
from pathlib import Path

from django.apps import apps

from tests.support import ROOT

WRITES = {"create", "update", "bulk_create", "bulk_update", "delete", "get_or_create", "update_or_create"}
NO_JOIN = ("campaign__isnull",)  # a test on the message's own column: no join to the campaign table


def modules(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, [alias.asname or alias.name for alias in node.names]))
    return out


def messaging_offences(source: str) -> list[str]:
    """What a messaging module may not do: import campaigns, or walk a message's campaign foreign key."""
    tree = ast.parse(source)
    found = [f"imports {module}" for module, _ in _imports(tree) if module.split(".")[0] == "campaigns"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "campaign":
            found.append(f"line {node.lineno}: .campaign")
        lookups = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            lookups.append(node.value)
        if isinstance(node, ast.keyword) and node.arg:
            lookups.append(node.arg)
        found += [f"line {node.lineno}: {text}" for text in lookups
                  if text.startswith("campaign__") and text not in NO_JOIN]
    return found


def campaigns_offences(source: str, messaging_models: dict[str, str]) -> list[str]:
    """What a campaigns module may not do: name a messaging table, or write a messaging model."""
    tree = ast.parse(source)
    models = {name for module, names in _imports(tree) if module == "messaging.models" for name in names}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"line {node.lineno}: names {t}" for t in messaging_models.values() if t in node.value]
        if isinstance(node, ast.Attribute) and node.attr == "_meta" and getattr(node.value, "id", "") in models:
            found.append(f"line {node.lineno}: {node.value.id}._meta")
        if (isinstance(node, ast.Attribute) and node.attr in WRITES and isinstance(node.value, ast.Attribute)
                and node.value.attr == "objects" and getattr(node.value.value, "id", "") in models):
            found.append(f"line {node.lineno}: {node.value.value.id}.objects.{node.attr}")
    return found


def _messaging_tables() -> dict[str, str]:
    # Proxy models (the inbox's Reply) share their table with the model they show.
    return {model.__name__: model._meta.db_table for model in apps.get_app_config("messaging").get_models()
            if not model._meta.proxy}


def test_messaging_never_imports_campaigns_nor_walks_to_a_campaign():
    offences = {str(p.relative_to(ROOT)): messaging_offences(p.read_text()) for p in modules("messaging")}
    assert {path: found for path, found in offences.items() if found} == {}


def test_campaigns_names_no_messaging_table_and_writes_no_messaging_model():
    tables = _messaging_tables()
    offences = {str(p.relative_to(ROOT)): campaigns_offences(p.read_text(), tables) for p in modules("campaigns")}
    assert {path: found for path, found in offences.items() if found} == {}


def test_the_checks_find_what_they_forbid():
    assert len(messaging_offences(
        "import campaigns.models\nfrom campaigns.services import x\nbody = m.campaign.body\n"
        "Message.objects.filter(campaign__status='sending')\nq = 'campaign__name'\n"
        "Message.objects.filter(campaign__isnull=True)\n"
    )) == 5
    assert len(campaigns_offences(
        "from messaging.models import Message, Suppression\nMessage.objects.create(to='x')\n"
        "Suppression.objects.filter(phone='x').update(opted_out=True)\nsql = 'INSERT INTO messaging_message'\n"
        "table = Message._meta.db_table\nMessage.objects.filter(to='x').count()\n",
        _messaging_tables(),
    )) == 3
