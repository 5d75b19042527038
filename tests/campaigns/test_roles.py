"""The role definitions: every permission they name exists, and the migration's groups match them."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from campaigns.roles import ROLES, role_permissions, roles_sync

pytestmark = pytest.mark.django_db


def test_every_permission_a_role_names_exists():
    for role in ROLES:
        assert role_permissions(apps, role)  # strict: LookupError on a name that does not exist


def test_a_name_that_does_not_exist_is_refused_outside_migrations_and_skipped_in_them(monkeypatch):
    monkeypatch.setitem(ROLES, "Viewer", [*ROLES["Viewer"], "campaigns.fly_campaign"])
    with pytest.raises(LookupError, match="fly_campaign"):
        roles_sync()
    roles_sync(strict=False)
    assert Group.objects.get(name="Viewer").permissions.filter(codename="view_campaign").exists()


def test_syncing_puts_a_group_back_to_its_definition(roles):
    viewer = Group.objects.get(name="Viewer")
    viewer.permissions.add(*role_permissions(apps, "Campaign manager"))
    roles_sync()
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in viewer.permissions.select_related("content_type")}
    assert granted == set(ROLES["Viewer"])
