"""The product as it starts from its environment, each time in a process of its own (``manage.py``): with DEBUG off
it refuses the development SECRET_KEY and a missing CREDENTIALS_KEY, saying how to make one; with real keys its
production settings pass ``check --deploy``, redirect plain http and send the security headers; `make run`'s
development settings start without any; and the processes a test run starts read what the tests encrypt."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest
from cryptography.fernet import Fernet

from tests.support import PYTHON, ROOT, database_url

DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"
# Settings a test run or a developer's shell may carry, none of which the product finds on a fresh machine.
NOT_GIVEN = ("PYTEST_VERSION", "SECRET_KEY", "CREDENTIALS_KEY", "DEBUG", "HTTPS", "BROKER_FOLDER", "CELERY_QUEUE",
             "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
             "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS",
             "DATABASE_URL", "CELERY_BROKER_URL", "VAR_DIR")


def manage(tmp_path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in NOT_GIVEN}
    env.update(VAR_DIR=str(tmp_path / "var"), **variables)
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def production(**more: str) -> dict:
    return {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "sms.example.com", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto", **more}


@pytest.mark.parametrize("secret_key", [None, DEVELOPMENT_SECRET_KEY, " "])
def test_debug_off_refuses_the_development_secret_key_and_says_how_to_make_one(tmp_path, secret_key):
    variables = {"DEBUG": "false", "CREDENTIALS_KEY": Fernet.generate_key().decode()}
    if secret_key is not None:
        variables["SECRET_KEY"] = secret_key
    done = manage(tmp_path, "check", **variables)
    assert done.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set, and DEBUG is off" in done.stderr
    assert "from django.core.management.utils import get_random_secret_key" in done.stderr
    assert variables["CREDENTIALS_KEY"] not in done.stdout + done.stderr


def test_debug_off_refuses_to_start_without_a_credentials_key_and_says_how_to_make_one(tmp_path):
    secret_key = secrets.token_urlsafe(50)
    done = manage(tmp_path, "check", DEBUG="false", SECRET_KEY=secret_key)
    assert done.returncode != 0
    assert "ImproperlyConfigured: CREDENTIALS_KEY is not set, and DEBUG is off" in done.stderr
    assert "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" in done.stderr
    assert secret_key not in done.stdout + done.stderr


def test_a_proxy_header_given_with_its_value_is_refused(tmp_path):
    done = manage(tmp_path, "check", **production(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https"))
    assert done.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER is the name of a header only (e.g. X-Forwarded-Proto)" in done.stderr


def test_production_settings_pass_the_deployment_checks_without_a_warning(tmp_path):
    variables = production()
    done = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **variables)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr
    assert variables["SECRET_KEY"] not in done.stdout + done.stderr


def test_debug_on_as_make_run_starts_without_keys_and_the_deployment_checks_say_what_is_missing(tmp_path):
    done = manage(tmp_path, "check", DEBUG="true")
    assert done.returncode == 0, done.stderr
    deploy = manage(tmp_path, "check", "--deploy", DEBUG="true")
    for warning in ("security.W018", "security.W009", "security.W004", "security.W008", "security.W012",
                    "security.W016"):  # DEBUG, the secret key, HSTS, the redirect, both cookies
        assert warning in deploy.stdout + deploy.stderr


RESPONSES = """
import json
from django.test import Client
client = Client()
plain = client.get("/admin/login/", HTTP_HOST="sms.example.com")
proxied = client.get("/admin/login/", HTTP_HOST="sms.example.com", HTTP_X_FORWARDED_PROTO="https")
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
name = default_storage.save("campaign-media/" + "a" * 22 + "/note.txt", ContentFile(b"Hello from the campaign"))
media = client.get("/" + name.replace("campaign-media", "media/campaign-media"), HTTP_HOST="sms.example.com",
                   secure=True)
cookie = proxied.cookies["csrftoken"]
print(json.dumps({
    "plain": [plain.status_code, plain.headers.get("Location")],
    "proxied": [proxied.status_code, dict(proxied.headers)],
    "cookie": {"secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"])},
    "media": [media.status_code, dict(media.headers)],
}))
"""


def test_production_redirects_plain_http_and_sends_the_security_headers(tmp_path):
    done = manage(tmp_path, "shell", "-c", RESPONSES, **production())
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://sms.example.com/admin/login/"]
    status, headers = seen["proxied"]
    assert status == 200  # HTTPS as the proxy says (SECURE_PROXY_SSL_HEADER): no redirect
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy == {
        "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
        "font-src": "'self'", "connect-src": "'self'", "object-src": "'none'", "base-uri": "'self'",
        "form-action": "'self'", "frame-ancestors": "'none'",
    }
    assert seen["cookie"] == {"secure": True, "httponly": True}
    # Public campaign media keeps a policy of its own: nothing runs, nothing loads, not even as a page.
    status, headers = seen["media"]
    assert status == 200 and headers["Content-Type"] == "text/plain"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


@pytest.mark.django_db(transaction=True)
def test_a_process_the_test_run_starts_reads_the_credentials_the_tests_encrypt(tmp_path):
    """The tests' own keys reach the processes they start (workers, the emulator, manage.py commands), which
    start with DEBUG off like production and decrypt what the tests wrote."""
    from django.db import connection

    from messaging.models import Sender

    Sender.objects.create(name="Line", provider="plivo", address="+14155550100",
                          credentials={"auth_id": "an-id", "auth_token": "a-token"})
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict), "VAR_DIR": str(tmp_path)}
    env.pop("DEBUG", None)
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c",
         "from messaging.models import Sender; print(sorted(Sender.objects.get().credentials.items()))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "[('auth_id', 'an-id'), ('auth_token', 'a-token')]" in done.stdout
