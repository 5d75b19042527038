"""`make run` as a new user meets it: demo data, then one foreground command serving the admin, a worker,
beat and the emulator on the embedded default (SQLite and the filesystem broker, in a folder of its own).
Staff log in as admin/admin, launch the demo campaign, and every recipient reaches a final status; Ctrl-C
stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
import requests

from tests.support import PYTHON, ROOT, free_port, wait_until

pytestmark = pytest.mark.worker


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def test_make_run_serves_the_admin_and_the_demo_campaign_reaches_its_recipients(tmp_path):
    web, emulator = free_port(), free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "BROKER_FOLDER": str(tmp_path / "broker"),
        "LOG_LEVEL": "WARNING",
    }
    for name in ("PUBLIC_BASE_URL", "SECRET_KEY", "CREDENTIALS_KEY", "HTTPS", "OUTBOUND_ALLOWED_HOSTS"):
        env.pop(name, None)  # no keys, no settings of the test run's: the product as it comes
    env.pop("PYTEST_VERSION", None)  # the product as `make run` starts it, not as the tests configure it
    # `make run` is development: DEBUG on, plain http, the development keys (see the Makefile's run target).
    assert "run: export DEBUG ?= true" in (ROOT / "Makefile").read_text()
    env["DEBUG"] = "true"
    _manage(env, "migrate", "--noinput")
    _manage(env, "demo_setup", "--emulator-port", str(emulator))
    again = _manage(env, "demo_setup", "--emulator-port", str(emulator))
    assert "draft campaign 'Demo campaign'" in again  # run twice: still one draft

    log = open(tmp_path / "run_all.log", "wb")
    process = subprocess.Popen(
        [PYTHON, "manage.py", "run_all", "--port", str(web), "--sandbox-port", str(emulator)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{web}"
    try:
        def serving():
            try:
                return requests.get(f"{base}/admin/login/", timeout=2).status_code == 200 and requests.get(
                    f"http://127.0.0.1:{emulator}/sandbox/ledger", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(serving, timeout=60, interval=0.5, message="the web server and the emulator")
        session = requests.Session()
        token = _csrf(session, f"{base}/admin/login/")
        logged_in = session.post(f"{base}/admin/login/?next=/admin/", timeout=10, data={
            "csrfmiddlewaretoken": token, "username": "admin", "password": "admin", "next": "/admin/"})
        assert logged_in.status_code == 200 and "Log out" in logged_in.text

        listing = session.get(f"{base}/admin/campaigns/campaign/", timeout=10).text
        campaign_id = re.search(r'href="/admin/campaigns/campaign/(\d+)/change/[^"]*">Demo campaign<', listing).group(1)
        page = f"{base}/admin/campaigns/campaign/{campaign_id}/confirm/launch/"
        confirmation = session.get(page, timeout=30).text
        assert 'data-figure="recipients">300<' in confirmation
        fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', confirmation).group(1)
        token = _csrf(session, page)
        launched = session.post(page, timeout=30, headers={"Referer": page},
                                data={"csrfmiddlewaretoken": token, "fingerprint": fingerprint})
        assert "Launched to 300 recipients" in launched.text

        def finished():
            stats = session.get(f"{base}/admin/campaigns/campaign/{campaign_id}/stats/", timeout=10).json()
            return stats if stats["status"] == "completed" else None

        stats = wait_until(finished, timeout=120, interval=1, message="the demo campaign to complete")
        counts = stats["counts"]
        assert counts["delivered"] + counts["undelivered"] + counts["failed"] == 300
        assert counts["delivered"] > 200
        ledger = requests.get(f"http://127.0.0.1:{emulator}/sandbox/ledger", timeout=5).json()
        assert (ledger["accepted"], ledger["duplicates"]) == (300, 0)

        # A new draft is ready for the next `make run`.
        assert "draft campaign 'Demo campaign 2'" in _manage(env, "demo_setup", "--emulator-port", str(emulator))
    finally:
        started = time.monotonic()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("run_all did not stop on Ctrl-C:\n" + (tmp_path / "run_all.log").read_text()[-3000:])
        log.close()
    assert process.returncode == 0, (tmp_path / "run_all.log").read_text()[-3000:]
    assert time.monotonic() - started < 40
    assert "Stopped." in (tmp_path / "run_all.log").read_text()
