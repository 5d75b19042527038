"""`make run`: the web server, a Celery worker, Celery beat and the provider emulator in one foreground
command. Ctrl-C stops them all."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run web server, Celery worker, Celery beat and the provider emulator together (development)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8025)

    def handle(self, *args, port: int, sandbox_port: int, **options):
        python = sys.executable
        env = dict(os.environ)
        # Status callbacks must reach this web server: unless told otherwise, it is the one started here.
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
        # Outbound calls go to public addresses only; here the emulator and this web server (uploaded media are
        # asked their size at PUBLIC_BASE_URL) are local: only their two ports are let through.
        env.setdefault("OUTBOUND_ALLOWED_HOSTS", f"127.0.0.1:{sandbox_port},127.0.0.1:{port}")
        beat_schedule = str(settings.VAR_DIR / "celerybeat-schedule")
        commands = {
            "emulator": [python, "manage.py", "provider_sandbox", "--port", str(sandbox_port)],
            "worker": [python, "-m", "celery", "-A", "config", "worker", "-l", "INFO", "--concurrency", "2"],
            "beat": [python, "-m", "celery", "-A", "config", "beat", "-l", "INFO", "-s", beat_schedule],
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        }
        if sandbox_port != 8025:
            subprocess.run([python, "manage.py", "demo_setup", "--emulator-port", str(sandbox_port)], check=True, env=env)
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, cmd in commands.items():
            processes[name] = subprocess.Popen(cmd, start_new_session=True, env=env)
        self.stdout.write(self.style.SUCCESS(
            f"\nRunning. Admin: http://127.0.0.1:{port}/admin/  user: admin  password: admin (development only)\n"
            f"Provider emulator: http://127.0.0.1:{sandbox_port}/sandbox/ledger  Press Ctrl-C to stop.\n"
        ))
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping the rest.")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()  # each main process stops its own children (Celery's pool)
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            self.stdout.write("Stopped.")
