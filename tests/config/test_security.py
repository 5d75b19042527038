"""Login throttling: a username that keeps failing from one address is locked out there for a while, even with the
right password; other addresses and other usernames are not; the wait ends; no password is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-1"
LOGIN = "/admin/login/?next=/admin/"


def attempt(client: Client, username: str, password: str, **headers):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, **headers)


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)


def test_failing_the_limit_locks_the_username_out_from_that_address_even_with_the_right_password(staff, settings):
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    client = Client()
    for n in range(1, 5):
        refused = attempt(client, "staff", f"wrong-{n}")
        assert refused.status_code == 200 and "Please enter the correct username and password" in refused.text
    locked = attempt(client, "staff", "wrong-5")
    assert locked.status_code == 429
    assert "Too many failed login attempts" in locked.text and "Try again in 15 minutes." in locked.text
    assert 'href="/admin/login/"' in locked.text  # back to the login page, nothing more

    right = attempt(client, "staff", PASSWORD)
    assert right.status_code == 429 and "Try again in 15 minutes." in right.text
    assert not logged_in(client)

    # The same username from another address, and another username from this one, are not locked out.
    elsewhere = Client(REMOTE_ADDR="203.0.113.7")
    assert attempt(elsewhere, "staff", PASSWORD).status_code == 302 and logged_in(elsewhere)
    staff.__class__.objects.create_superuser("other", "other@example.com", PASSWORD)
    assert attempt(client, "other", PASSWORD).status_code == 302 and logged_in(client)


def test_the_lockout_ends_after_the_wait_and_each_attempt_meanwhile_starts_it_again(staff, settings):
    client = Client()
    for n in range(5):
        attempt(client, "staff", f"wrong-{n}")
    assert attempt(client, "staff", PASSWORD).status_code == 429
    row = AccessAttempt.objects.get(username="staff")

    # 14 minutes after the last attempt: still locked, and that attempt starts the 15 minutes again.
    AccessAttempt.objects.filter(pk=row.pk).update(attempt_time=row.attempt_time - timedelta(minutes=14))
    assert attempt(client, "staff", PASSWORD).status_code == 429
    row.refresh_from_db()
    AccessAttempt.objects.filter(pk=row.pk).update(attempt_time=row.attempt_time - timedelta(minutes=14))
    assert attempt(client, "staff", PASSWORD).status_code == 429

    # 15 minutes after the last attempt: the right password logs in, and the failures are forgotten.
    row.refresh_from_db()
    AccessAttempt.objects.filter(pk=row.pk).update(attempt_time=row.attempt_time - settings.AXES_COOLOFF_TIME)
    response = attempt(client, "staff", PASSWORD)
    assert response.status_code == 302 and logged_in(client)
    assert not AccessAttempt.objects.filter(username="staff").exists()


def test_no_password_is_kept_and_staff_see_the_attempts_in_the_admin(staff, admin_client):
    client = Client()
    for n in range(5):
        attempt(client, "staff", f"Secret-Guess-{n}")
    row = AccessAttempt.objects.get(username="staff")
    assert row.failures_since_start == 5 and row.ip_address == "127.0.0.1"
    assert "Secret-Guess" not in row.post_data and "csrfmiddlewaretoken" not in row.get_data
    page = admin_client.get(f"/admin/axes/accessattempt/{row.pk}/change/").text
    assert "127.0.0.1" in page and "Secret-Guess" not in page
    assert admin_client.get("/admin/axes/accessattempt/").status_code == 200


def test_behind_proxies_the_client_address_is_the_one_the_outermost_proxy_saw(staff, settings):
    """With PROXY_COUNT=1 the address is the last X-Forwarded-For entry: what a client writes further left does
    not get it out of a lockout, and clients behind the same proxy are told apart."""
    settings.PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    client = Client(**proxy)
    for n in range(5):
        attempt(client, "staff", f"wrong-{n}", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.5")
    assert AccessAttempt.objects.get(username="staff").ip_address == "203.0.113.5"
    spoofed = attempt(client, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.5")
    assert spoofed.status_code == 429
    other = Client(**proxy)
    assert attempt(other, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 302

    # Without PROXY_COUNT the header is not believed: the peer's address counts.
    settings.PROXY_COUNT = 0
    AccessAttempt.objects.all().delete()
    direct = Client(REMOTE_ADDR="198.51.100.20")
    for n in range(5):
        attempt(direct, "staff", f"wrong-{n}", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert AccessAttempt.objects.get(username="staff").ip_address == "198.51.100.20"
    assert attempt(direct, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429
