"""The three staff roles, as Django groups: what each may see and do.

- Viewer: dashboards, campaign results, messages, replies and the consent ledger, read only.
- Campaign manager: everything a Viewer sees, plus composing, scheduling, launching, pausing, resuming,
  canceling, resending and test-sending campaigns, importing and editing contacts, and exporting.
- Administrator: everything, including senders and their credentials, undoing consent entries (and opting
  numbers back in), users and groups, login lockouts, and the audit log.

Launching, canceling, resending, test-sending and exporting are permissions of their own (declared on the
models), never "change": a person who may edit a draft may not necessarily send it. A migration creates the
groups (``roles_sync``); running it again puts each group back to this definition and leaves other groups
alone. Give a person a role by adding them to its group (Users, in the admin).

A migration syncs the roles with the definition below as it is when the migration runs, so a permission named
here that a later migration creates is skipped by the earlier one (``strict=False``) and granted by the later
one, which calls ``roles_sync`` again. Outside migrations every name must exist (a test checks it)."""

from __future__ import annotations

VIEWER = "Viewer"
CAMPAIGN_MANAGER = "Campaign manager"
ADMINISTRATOR = "Administrator"

_VIEW = [
    "campaigns.view_campaign",
    "campaigns.view_contact",
    "campaigns.view_contactlist",
    "campaigns.view_tag",
    "campaigns.view_importjob",
    "campaigns.view_price",
    "messaging.view_sender",
    "messaging.view_message",
    "messaging.view_messageevent",
    "messaging.view_consentevent",
    "messaging.view_suppression",
]

_MANAGE = [
    "campaigns.add_campaign",
    "campaigns.change_campaign",
    "campaigns.delete_campaign",
    "campaigns.launch_campaign",
    "campaigns.cancel_campaign",
    "campaigns.resend_campaign",
    "campaigns.test_send_campaign",
    "campaigns.export_campaign",
    "campaigns.add_contact",
    "campaigns.change_contact",
    "campaigns.export_contact",
    "campaigns.add_contactlist",
    "campaigns.change_contactlist",
    "campaigns.add_tag",
    "campaigns.change_tag",
    "campaigns.add_importjob",
    "campaigns.delete_importjob",
    "messaging.resend_message",
    "messaging.answer_message",
]

ROLES: dict[str, list[str]] = {
    VIEWER: _VIEW,
    CAMPAIGN_MANAGER: _VIEW + _MANAGE,
    # Every permission of the product's apps (the audit log is messaging's), users and groups, login lockouts.
    ADMINISTRATOR: ["campaigns.*", "messaging.*", "auth.*", "axes.*"],
}


def role_permissions(apps, role: str, *, strict: bool = True):
    """The Permission rows of ``role`` (``app.*`` is every permission of that app). LookupError for a name that
    does not exist, unless not ``strict`` (a migration run before the one that creates it)."""
    Permission = apps.get_model("auth", "Permission")
    rows = []
    for name in ROLES[role]:
        app_label, _, codename = name.partition(".")
        found = Permission.objects.filter(content_type__app_label=app_label)
        if codename != "*":
            found = found.filter(codename=codename)
            if strict and not found.exists():
                raise LookupError(f"Role {role!r} names permission {name!r}, which does not exist.")
        rows.extend(found)
    return rows


def roles_sync(apps=None, *, strict: bool = True) -> None:
    """Create or update the three groups. ``apps`` is a migration's app registry (or the live one)."""
    if apps is None:
        from django.apps import apps as live_apps

        apps = live_apps
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(role_permissions(apps, role, strict=strict))
