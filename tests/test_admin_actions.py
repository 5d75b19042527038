"""Every admin action of the product declares the permission it needs: a staff member who may only view a
model is offered none of its actions and cannot run one by posting the form; one with the permission can."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import RequestFactory
from django.urls import reverse

pytestmark = pytest.mark.django_db

APPS = ("campaigns", "messaging")


def product_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in APPS]


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", password="pw", is_staff=True)
    for codename in codenames:
        app_label, _, name = codename.partition(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=name))
    return User.objects.get(pk=user.pk)  # permissions are cached per instance


def own_actions(model_admin, request) -> set[str]:
    return set(model_admin.get_actions(request)) - {"delete_selected"}


@pytest.mark.parametrize("model,model_admin", product_admins(), ids=lambda x: getattr(x, "__name__", ""))
def test_a_view_only_user_is_offered_no_action(model, model_admin):
    request = RequestFactory().get("/")
    # A proxy without permissions of its own (the inbox) is seen with its model's.
    opts = model._meta if model._meta.default_permissions else model._meta.concrete_model._meta
    request.user = staff(f"{opts.app_label}.view_{opts.model_name}")
    assert model_admin.has_view_permission(request)
    assert own_actions(model_admin, request) == set()
    for name in model_admin.actions or ():
        func = getattr(model_admin, name) if isinstance(name, str) else name
        assert getattr(func, "allowed_permissions", None), f"{model.__name__}: {name} declares no permission"


def test_the_permission_the_action_names_is_enough():
    from campaigns.models import Campaign

    model_admin = admin.site._registry[Campaign]
    request = RequestFactory().get("/")
    request.user = staff("campaigns.view_campaign", "campaigns.change_campaign")
    assert "launch_selected" not in own_actions(model_admin, request)  # changing a draft is not sending it
    request.user = staff("campaigns.view_campaign", "campaigns.launch_campaign")
    assert "launch_selected" in own_actions(model_admin, request)


def test_posting_an_action_without_its_permission_changes_nothing(client, make_sender, make_audience, make_campaign,
                                                                  settings):
    """The action a view-only user was not offered cannot be run by posting the changelist form either."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from campaigns.models import Campaign

    campaign = make_campaign(make_sender("plivo"), [make_audience(3)])
    client.force_login(staff("campaigns.view_campaign"))
    response = client.post(reverse("admin:campaigns_campaign_changelist"),
                           {"action": "launch_selected", "_selected_action": [campaign.pk]})
    assert response.status_code in (200, 302, 403)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
