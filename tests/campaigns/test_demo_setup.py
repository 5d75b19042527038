"""The demo data of `make run` (a superuser admin/admin among them) is refused outside development."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from campaigns.models import Campaign

pytestmark = pytest.mark.django_db


def test_with_debug_off_no_superuser_with_a_known_password_is_created(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match=r"development only \(DEBUG=true"):
        call_command("demo_setup")
    assert not get_user_model().objects.filter(username="admin").exists()
    assert not Campaign.objects.exists()


def test_in_development_it_creates_the_demo(settings):
    settings.DEBUG = True
    call_command("demo_setup", contacts=5)
    assert get_user_model().objects.get(username="admin").check_password("admin")
    assert Campaign.objects.get().name == "Demo campaign"
