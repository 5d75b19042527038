"""`make run` as a new user meets it: demo data, then one foreground command serving the admin, a worker,
beat and the emulator on the embedded default (SQLite and the filesystem broker, in a folder of its own).
Staff log in as admin/admin, launch the demo campaign, and every recipient reaches a final status. A process
that dies is started again and the campaign still goes out; Ctrl-C (or SIGTERM) stops everything, leaving no
process behind; other ports are named wherever an address is printed."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from messaging.management.commands.run_all import Child, Command, _ended
from tests.support import PYTHON, ROOT, free_port, wait_until

pytestmark = pytest.mark.worker

STOP_BOUND = 40  # seconds Ctrl-C may take to stop everything


def _env(tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "BROKER_FOLDER": str(tmp_path / "broker"),
        "LOG_LEVEL": "WARNING",
    }
    for name in ("PUBLIC_BASE_URL", "SECRET_KEY", "CREDENTIALS_KEY", "HTTPS", "OUTBOUND_ALLOWED_HOSTS",
                 "PORT", "SANDBOX_PORT"):
        env.pop(name, None)  # no keys, no settings of the test run's: the product as it comes
    env.pop("PYTEST_VERSION", None)  # the product as `make run` starts it, not as the tests configure it
    # `make run` is development: DEBUG on, plain http, the development keys (see the Makefile's run target).
    env["DEBUG"] = "true"
    return env


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _start(command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _serving(web: int, emulator: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{web}/admin/login/", timeout=2).status_code == 200 and requests.get(
            f"http://127.0.0.1:{emulator}/sandbox/ledger", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _ledger_answers(emulator: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{emulator}/sandbox/ledger", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _started(log_path: Path) -> dict[str, list[int]]:
    """The pids run_all logged for each child, in the order it started them."""
    pids: dict[str, list[int]] = {}
    for name, pid in re.findall(r"run_all: started (\w+) \(pid (\d+)\)", log_path.read_text(errors="replace")):
        pids.setdefault(name, []).append(int(pid))
    return pids


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process; None once it is gone (a zombie counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else (fields[0], int(fields[2]))


def _alive(pid: int) -> bool:
    return _stat(pid) is not None


def _group(pgid: int) -> set[int]:
    """The live processes of a process group (a child of run_all and what it forked: Celery's pool)."""
    members = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) and stat[1] == pgid:
            members.add(int(entry))
    return members


def _pool(worker: int) -> set[int] | None:
    """The worker's pool processes once both are up (run_all starts it with --concurrency 2)."""
    pool = _group(worker) - {worker}
    return pool if len(pool) >= 2 else None


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def _launch_demo_campaign(base: str) -> tuple[requests.Session, str]:
    """Log in as admin/admin and launch the draft demo campaign through its confirmation."""
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
    return session, campaign_id


def _reaches_its_recipients(session: requests.Session, base: str, campaign_id: str, emulator: int) -> None:
    def finished():
        stats = session.get(f"{base}/admin/campaigns/campaign/{campaign_id}/stats/", timeout=10).json()
        return stats if stats["status"] == "completed" else None

    stats = wait_until(finished, timeout=120, interval=1, message="the demo campaign to complete")
    counts = stats["counts"]
    assert counts["delivered"] + counts["undelivered"] + counts["failed"] == 300
    assert counts["delivered"] > 200
    ledger = requests.get(f"http://127.0.0.1:{emulator}/sandbox/ledger", timeout=5).json()
    assert (ledger["accepted"], ledger["duplicates"]) == (300, 0)


def _ctrl_c(process: subprocess.Popen, log_path: Path, terminate: bool = False) -> float:
    """Ctrl-C to the foreground command (its process group), or SIGTERM to run_all alone (as a service manager
    stops it); how long it took to end."""
    started = time.monotonic()
    if process.poll() is None:
        if terminate:
            os.kill(process.pid, signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(STOP_BOUND)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("run_all did not stop:\n" + log_path.read_text(errors="replace")[-3000:])
    return time.monotonic() - started


def test_make_run_serves_the_admin_and_the_demo_campaign_reaches_its_recipients(tmp_path):
    web, emulator = free_port(), free_port()
    env = _env(tmp_path)
    assert "run: export DEBUG ?= true" in (ROOT / "Makefile").read_text()
    _manage(env, "migrate", "--noinput")
    _manage(env, "demo_setup", "--emulator-port", str(emulator))
    again = _manage(env, "demo_setup", "--emulator-port", str(emulator))
    assert "draft campaign 'Demo campaign'" in again  # run twice: still one draft

    log_path = tmp_path / "run_all.log"
    process = _start([PYTHON, "manage.py", "run_all", "--port", str(web), "--sandbox-port", str(emulator)],
                     env, log_path)
    base = f"http://127.0.0.1:{web}"
    try:
        wait_until(lambda: _serving(web, emulator), timeout=60, interval=0.5,
                   message="the web server and the emulator")
        session, campaign_id = _launch_demo_campaign(base)
        _reaches_its_recipients(session, base, campaign_id, emulator)
        # A new draft is ready for the next `make run`.
        assert "draft campaign 'Demo campaign 2'" in _manage(env, "demo_setup", "--emulator-port", str(emulator))
        pids = _started(log_path)
    finally:
        took = _ctrl_c(process, log_path, terminate=True)
    log = log_path.read_text(errors="replace")
    assert process.returncode == 0, log[-3000:]
    assert took < STOP_BOUND
    assert "Stopped." in log
    assert not [pid for pid_list in pids.values() for pid in pid_list if _alive(pid)]


def test_make_run_restarts_a_process_that_dies_and_ctrl_c_still_stops_all(tmp_path):
    web, emulator = free_port(), free_port()
    env = _env(tmp_path)
    _manage(env, "migrate", "--noinput")  # run_all creates the demo data itself
    log_path = tmp_path / "run_all.log"
    process = _start([PYTHON, "manage.py", "run_all", "--port", str(web), "--sandbox-port", str(emulator)],
                     env, log_path)
    base = f"http://127.0.0.1:{web}"
    seen: set[int] = set()  # every process run_all's children were, to check none outlives Ctrl-C
    groups: set[int] = set()

    def log() -> str:
        return log_path.read_text(errors="replace")

    def restarted(name: str, old: int, how: str, delay: int) -> int:
        """Wait for run_all to say the child died and to start it again; the new pid."""
        line = f"run_all: {name} (pid {old}) {how} after "
        wait_until(lambda: line in log(), timeout=10, message=f"the log line on {name} {old} dying")
        said = next(text for text in log().splitlines() if line in text)
        assert f"restarting in {delay} s" in said, said
        new = wait_until(lambda: _started(log_path)[name][-1] if _started(log_path)[name][-1] != old else None,
                         timeout=delay + 10, message=f"a new {name}")
        groups.add(new)
        return new

    try:
        wait_until(lambda: _serving(web, emulator), timeout=60, interval=0.5,
                   message="the web server and the emulator")
        first = _started(log_path)
        assert sorted(first) == ["beat", "emulator", "web", "worker"] and all(len(p) == 1 for p in first.values())
        groups.update(pids[0] for pids in first.values())
        worker = first["worker"][0]
        pool = wait_until(lambda: _pool(worker), timeout=30, message="the worker's pool of two")
        for pgid in groups:
            seen.update(_group(pgid))
        assert seen >= {worker, *pool}

        # The emulator killed is started again after 1 s; killed again soon after, it waits 2 s.
        os.kill(first["emulator"][0], signal.SIGKILL)
        second = restarted("emulator", first["emulator"][0], "was killed by SIGKILL", 1)
        wait_until(lambda: _ledger_answers(emulator), timeout=30, message="the restarted emulator")
        seen.add(second)
        os.kill(second, signal.SIGKILL)
        third = restarted("emulator", second, "was killed by SIGKILL", 2)
        wait_until(lambda: _ledger_answers(emulator), timeout=30, message="the emulator restarted again")
        seen.add(third)

        # The worker's main process killed: its pool goes with it, and a new worker starts with a pool of its own.
        os.kill(worker, signal.SIGKILL)
        new_worker = restarted("worker", worker, "was killed by SIGKILL", 1)
        wait_until(lambda: not any(_alive(pid) for pid in pool), timeout=10, message="the old pool to be gone")
        new_pool = wait_until(lambda: _pool(new_worker), timeout=30, message="the new worker's pool")
        seen.update({new_worker, *new_pool})
        assert "Stopped." not in log()  # nothing else was stopped on the way
        assert all(_alive(first[name][0]) for name in ("web", "beat"))

        # The restarted worker and emulator send the demo campaign.
        session, campaign_id = _launch_demo_campaign(base)
        _reaches_its_recipients(session, base, campaign_id, emulator)
        for pgid in groups:
            seen.update(_group(pgid))
    finally:
        took = _ctrl_c(process, log_path)
    assert process.returncode == 0, log()[-3000:]
    assert took < STOP_BOUND
    assert log().rstrip().endswith("Stopped."), log()[-3000:]
    assert not [pid for pid in seen if _alive(pid)], "left running after Ctrl-C"
    assert not [pgid for pgid in groups if _group(pgid)], "process groups left after Ctrl-C"


def test_make_run_on_other_ports_names_them_wherever_it_prints_an_address(tmp_path):
    web, emulator = free_port(), free_port()
    assert not {web, emulator} & {8000, 8025}
    env = _env(tmp_path)
    log_path = tmp_path / "make_run.log"
    # What a user types, with the interpreter running the tests (and its installation taken as done).
    process = _start(["make", "--no-print-directory", "-o", ".venv/.installed", "run", f"PY={PYTHON}",
                      f"PORT={web}", f"SANDBOX_PORT={emulator}"], env, log_path)
    try:
        wait_until(lambda: _serving(web, emulator), timeout=90, interval=0.5,
                   message="the web server and the emulator")
        wait_until(lambda: "Running." in log_path.read_text(errors="replace"), timeout=10, message="the banner")
        printed = log_path.read_text(errors="replace")
        pids = _started(log_path)
    finally:
        took = _ctrl_c(process, log_path)
    assert f"Admin: http://127.0.0.1:{web}/admin/" in printed
    assert f"Provider emulator: http://127.0.0.1:{emulator}/sandbox/ledger" in printed
    # The demo sender points at the emulator in use, and the site is named at its port.
    assert f"sender 'Demo Plivo number' on http://127.0.0.1:{emulator}," in printed
    assert f"Site: http://127.0.0.1:{web}/admin/" in printed
    assert not re.search(r"127\.0\.0\.1:(8000|8025)\b|localhost:(8000|8025)\b", printed), printed[-3000:]
    assert took < STOP_BOUND
    assert "Stopped." in log_path.read_text(errors="replace")
    assert not [pid for pid_list in pids.values() for pid in pid_list if _alive(pid)]


def test_a_process_that_keeps_dying_waits_longer_each_time_up_to_30_s_and_1_s_again_once_it_stayed_up():
    out = io.StringIO()
    supervisor = Command(stdout=out)
    child = Child("beat", [PYTHON, "-c", "raise SystemExit(3)"])
    now, pauses = 1000.0, []
    for uptime in [0.5] * 7 + [45.0, 0.5]:
        child.process = subprocess.Popen(child.command, start_new_session=True)
        wait_until(lambda: _ended(child.process), timeout=30, message="the child to exit")
        child.started_at = now - uptime
        supervisor._died(child, now)
        assert child.process is None  # reaped, to be started again at restart_at
        pauses.append(child.restart_at - now)
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 1, 2]  # never a busy loop; sooner again after 45 s up
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"run_all: beat \(pid \d+\) exited with code 3 after 0\.5 s up; restarting in 1 s", lines[0])
    assert lines[5].endswith("restarting in 30 s (6 deaths in a row, each within 30 s of starting: retrying every "
                             "30 s until it stays up)"), lines[5]
    assert "after 45.0 s up; restarting in 1 s" in lines[7]
