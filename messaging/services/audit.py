"""The audit log: who launched, paused, canceled, resent, exported, imported, changed credentials or undid
consent, when, and on what.

Entries are the admin's own change log (``LogEntry``), so each object's History page lists them beside the
admin's add/change/delete entries; the audit page (``AuditEntry``) shows them all. The text is plain words,
never a secret: a credentials change names the keys that changed, not their values."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

MAX_TEXT = 2000  # LogEntry.change_message is a text column; one entry stays readable


def audit_record(*, user, obj: Model, action: str, detail: str = "") -> None:
    """One entry: ``user`` did ``action`` (a short verb phrase, "Launched") to ``obj``. Nothing is recorded
    without a person (a scheduled launch run by the beat was recorded when it was scheduled)."""
    audit_record_many(user=user, objects=[obj], action=action, detail=detail)


def audit_record_on_model(*, user, model: type[Model], label: str, action: str, detail: str = "") -> None:
    """One entry about many rows of ``model`` at once (an export of 100,000 contacts): shown on the audit page
    under ``label``, not in any one object's History."""
    if user is None or not getattr(user, "pk", None):
        return
    LogEntry.objects.create(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(model, for_concrete_model=False),
        object_id=None,
        object_repr=label[:200],
        action_flag=CHANGE,
        change_message=(f"{action}: {detail}" if detail else action)[:MAX_TEXT],
    )


def audit_record_many(*, user, objects: Iterable[Model], action: str, detail: str = "") -> int:
    """The same entry for each of ``objects`` (an action on a selection), in one statement."""
    if user is None or not getattr(user, "pk", None):
        return 0
    message = f"{action}: {detail}" if detail else action
    entries = []
    content_types: dict[type, ContentType] = {}
    for obj in objects:
        model = type(obj)
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(model, for_concrete_model=False)
        entries.append(LogEntry(
            user_id=user.pk,
            content_type=content_types[model],
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=CHANGE,
            change_message=message[:MAX_TEXT],
        ))
    LogEntry.objects.bulk_create(entries, batch_size=1000)
    return len(entries)
