"""`make run`: the web server, a Celery worker, Celery beat and the provider emulator in one foreground
command, with the demo data pointed at the emulator in use.

A child that dies is started again after a pause: 1 s, doubled each time it dies again soon after starting,
at most 30 s, and back to 1 s once it has stayed up 30 s. What it left in its process group (Celery's pool)
is killed first. Ctrl-C or SIGTERM stops them all: each main process is asked to stop (Celery's stops its
pool), anything still running after 15 s is killed, and so is whatever is left in each process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

FIRST_DELAY = 1.0  # seconds before a child that died is started again
MAX_DELAY = 30.0
STAYED_UP = 30.0  # a child up this long counts as healthy: its next pause is FIRST_DELAY again
STOP_TIMEOUT = 15.0
POLL = 0.2


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    delay: float = FIRST_DELAY  # the pause before the next start, should it die soon
    deaths: int = 0  # deaths in a row, each within STAYED_UP of its start


def _ended(process: subprocess.Popen) -> bool:
    """Whether the process has ended. Where the system allows, it is left unreaped: its id, and so its
    process group's, stays reserved, and killing the group cannot reach a stranger that took the id."""
    if process.returncode is not None:
        return True
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return process.poll() is not None
    return process.poll() is not None


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL what is left in the process group the child leads, then reap the child."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is empty
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _how(returncode: int | None) -> str:
    if returncode is None:
        return "ended"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Command(BaseCommand):
    help = ("Run web server, Celery worker, Celery beat and the provider emulator together (development); "
            "a child that dies is restarted, Ctrl-C stops them all.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port")
        parser.add_argument("--sandbox-port", type=int, default=8025, help="provider emulator port")

    def handle(self, *args, port: int, sandbox_port: int, **options):
        python = sys.executable
        env = dict(os.environ)
        # Status callbacks must reach this web server: unless told otherwise, it is the one started here.
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
        # Outbound calls go to public addresses only; here the emulator and this web server (uploaded media are
        # asked their size at PUBLIC_BASE_URL) are local: only their two ports are let through.
        env.setdefault("OUTBOUND_ALLOWED_HOSTS", f"127.0.0.1:{sandbox_port},127.0.0.1:{port}")
        beat_schedule = str(settings.VAR_DIR / "celerybeat-schedule")
        children = [
            Child("emulator", [python, "manage.py", "provider_sandbox", "--port", str(sandbox_port)]),
            Child("worker", [python, "-m", "celery", "-A", "config", "worker", "-l", "INFO", "--concurrency", "2"]),
            Child("beat", [python, "-m", "celery", "-A", "config", "beat", "-l", "INFO", "-s", beat_schedule]),
            Child("web", [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]),
        ]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

        # The superuser the banner names, and the demo sender pointed at this emulator (wherever it last was).
        setup = subprocess.run([python, "manage.py", "demo_setup", "--emulator-port", str(sandbox_port)], env=env)
        if stopping:
            self._say("Stopped.")
            return
        if setup.returncode != 0:
            raise CommandError(f"demo_setup exited with code {setup.returncode}; nothing was started.")

        for child in children:
            self._start(child, env)
        self._say(
            f"\nRunning. Admin: http://127.0.0.1:{port}/admin/  user: admin  password: admin (development only)\n"
            f"Provider emulator: http://127.0.0.1:{sandbox_port}/sandbox/ledger  "
            f"A process that dies is restarted. Press Ctrl-C to stop.\n",
            self.style.SUCCESS,
        )
        try:
            while not stopping:
                now = time.monotonic()
                for child in children:
                    if child.process is None:
                        if now >= child.restart_at:
                            self._start(child, env)
                    elif _ended(child.process):
                        self._died(child, now)
                time.sleep(POLL)
        finally:
            self._stop_all(children)
            self._say("Stopped.")

    def _say(self, text: str, style=None) -> None:
        self.stdout.write(text, style_func=style)
        self.stdout.flush()  # the lines are read as they come (a terminal, or a log file)

    def _start(self, child: Child, env: dict) -> None:
        child.process = subprocess.Popen(child.command, start_new_session=True, env=env)
        child.started_at = time.monotonic()
        self._say(f"run_all: started {child.name} (pid {child.process.pid})")

    def _died(self, child: Child, now: float) -> None:
        process = child.process
        _kill_group(process)  # what it left behind (Celery's pool) goes with it
        uptime = now - child.started_at
        if uptime >= STAYED_UP:
            child.delay, child.deaths = FIRST_DELAY, 0
        child.deaths += 1
        delay = child.delay
        child.delay = min(delay * 2, MAX_DELAY)
        child.process, child.restart_at = None, now + delay
        note = ""
        if delay >= MAX_DELAY:
            note = (f" ({child.deaths} deaths in a row, each within {STAYED_UP:g} s of starting: retrying every "
                    f"{MAX_DELAY:g} s until it stays up)")
        self._say(f"run_all: {child.name} (pid {process.pid}) {_how(process.returncode)} after {uptime:.1f} s up; "
                  f"restarting in {delay:g} s{note}", self.style.WARNING)

    def _stop_all(self, children: list[Child]) -> None:
        running = [child for child in children if child.process is not None]
        for child in running:
            if not _ended(child.process):
                child.process.terminate()  # each main process stops its own children (Celery's pool)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and not all(_ended(child.process) for child in running):
            time.sleep(0.1)
        for child in running:
            if not _ended(child.process):
                self._say(f"run_all: {child.name} (pid {child.process.pid}) did not stop within "
                          f"{STOP_TIMEOUT:g} s: killed", self.style.WARNING)
            _kill_group(child.process)
            child.process = None
