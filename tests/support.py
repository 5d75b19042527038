"""Helpers the test suite shares: free ports, waiting, subprocesses, database URLs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def http_json(url: str, data: dict | None = None, method: str | None = None, timeout: float = 10.0):
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database the tests are using (the test database)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class Process:
    """A child process in its own process group, stopped (or killed) with all its children."""

    started: list[int] = []  # the pid of every process started (the suite checks none left a broker folder)

    def __init__(self, args: list[str], env: dict | None = None, log: Path | None = None):
        self.args = args
        self.log_path = log
        self._log = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        Process.started.append(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once: no cleanup, no acks."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to end by itself; returns its exit code."""
        try:
            return self.proc.wait(timeout)
        finally:
            if self._log is not subprocess.DEVNULL:
                self._log.close()

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path and self.log_path.exists() else ""


PYTHON = sys.executable


def delete_queue(app, name: str) -> None:
    """Remove a task queue, its messages and its binding from the broker (Redis keeps a binding per queue,
    RabbitMQ a durable queue and exchange): a test run's queue is named after its database and would outlive it."""
    from kombu import Exchange, Queue

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=2)
        channel = conn.default_channel
        exchange = Exchange(name, type="direct", channel=channel)
        queue = Queue(name, exchange, routing_key=name, channel=channel)
        queue.declare()
        queue.delete()
        exchange.delete()


MB = 1024 * 1024


class MediaHandler(BaseHTTPRequestHandler):
    """A media host answering HEAD with the sizes below (``/moved.png`` redirects to ``/big.png``;
    ``/unsized.png`` gives no Content-Length; anything else is 404). Every path asked is recorded."""

    sizes = {"/small.png": 1000, "/two.png": 2 * MB, "/big.png": 6 * MB}
    requests: list[str] = []

    def do_HEAD(self):  # noqa: N802 - the http.server hook
        MediaHandler.requests.append(self.path)
        path = self.path.split("?")[0]
        if path == "/moved.png":
            self.send_response(302)
            self.send_header("Location", "/big.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in self.sizes:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(self.sizes[path]))
            self.end_headers()
        elif path == "/unsized.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass

