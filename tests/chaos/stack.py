"""A production-shaped stack of its own for the chaos tests: a PostgreSQL cluster and a Redis server started on
free ports (so they can be killed and restarted without touching the rest of the suite), gunicorn serving the
status callbacks, Celery workers and beat, all pointing at them. The provider emulator is the suite's."""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.support import PYTHON, ROOT, Process, free_port, wait_until


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are (Debian keeps them off PATH), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: [int(x) for x in Path(p).parent.parent.name.split(".") if x.isdigit()])
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class OwnPostgres:
    """A throwaway PostgreSQL cluster on a free port (trust auth, user postgres). As root, its programs run as the
    ``postgres`` user (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.restarts = 0
        self._as = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bindir / program), *args], capture_output=True, text=True,
                              timeout=120)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        # Commits are durable as in production (synchronous_commit stays on: a crash loses no committed
        # transaction). Only the flush to disk is skipped (fsync, full_page_writes), which matters when the
        # machine fails, not when the database process does.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                   "-c fsync=off -c full_page_writes=off -c shared_buffers=128MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would (no checkpoint, every session cut): the next start recovers."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self) -> float:
        """Crash, then start again: returns how long the database was away, in seconds."""
        down = time.monotonic()
        self.crash()
        self.start()
        self.restarts += 1
        return time.monotonic() - down

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnRedis:
    """A Redis server on a free port, keeping nothing on disk (as the machine's): a restart loses every queued
    task and every pace, which the product must survive."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.restarts = 0
        self.process: Process | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = Process(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(self.tmp)], log=self.tmp / "redis.log")
        wait_until(lambda: listening(self.port), timeout=30, message="redis to listen")

    def restart(self) -> float:
        down = time.monotonic()
        self.process.kill()
        wait_until(lambda: not listening(self.port), timeout=10, message="redis to go away")
        self.start()
        self.restarts += 1
        return time.monotonic() - down

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class MachineRabbitMQ:
    """The machine's RabbitMQ (127.0.0.1:5672, guest/guest), restarted with ``rabbitmqctl stop_app`` and
    ``start_app``: every connection is cut, durable queues and persistent tasks survive, as in a broker restart."""

    url = "amqp://guest:guest@127.0.0.1:5672//"

    def __init__(self):
        self.restarts = 0

    @staticmethod
    def _ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)

    def restart(self) -> float:
        down = time.monotonic()
        self._ctl("stop_app")
        self._ctl("start_app")
        wait_until(lambda: listening(5672), timeout=60, message="RabbitMQ to listen again")
        self.restarts += 1
        return time.monotonic() - down

    def delete_queue(self, name: str) -> None:
        from kombu import Connection

        with Connection(self.url) as conn:
            channel = conn.default_channel
            channel.queue_delete(queue=name)
            channel.exchange_delete(exchange=name)


# Lines a process writes when something went wrong that nothing handled: a task that raised, a crash, a 500, an
# error logged by the product itself. Tracebacks count too. Two reports are the faults the test injects, not
# errors unhandled: Celery's report of a pool process the test killed (WorkerLostError; its task is given again),
# and a worker that could not acknowledge a finished task because the test restarted the broker under it
# ("Couldn't ack": RabbitMQ gives the task again, and it finds its work done).
UNHANDLED = ("raised unexpected", "CRITICAL", "Unrecoverable error", "Internal Server Error",
             " ERROR messaging.", " ERROR campaigns.", " ERROR config.")
INJECTED = ("WorkerLostError", "Couldn't ack")


def unhandled_lines(text: str) -> list[str]:
    lines = text.splitlines()
    found = []
    for at, line in enumerate(lines):
        if any(mark in line for mark in UNHANDLED):
            if not any(mark in line for mark in INJECTED):
                found.append(line)
        elif line.startswith("Traceback (most recent call last)"):
            around = "\n".join(lines[max(0, at - 3): at + 15])
            if not any(mark in around for mark in INJECTED):
                found.append(" | ".join(lines[at: at + 15]))
    return found


class Stack:
    """The product's processes, on the given database and broker, each logging to its own file."""

    def __init__(self, *, tmp: Path, database_url: str, broker_url: str, emulator_url: str, extra: dict | None = None):
        self.tmp = tmp
        self.web_port = free_port()
        self.env = {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "CELERY_QUEUE": "celery.chaos",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "HTTPS": "false",
            "LOG_LEVEL": "INFO",
            "TICK_SECONDS": "1",
            "SWEEP_SECONDS": "1",
            "DISPATCH_STALE_SECONDS": "4",
            "RECONCILE_AFTER_SECONDS": "8",
            "PROVIDER_TIMEOUT": "2",
            "PROVIDER_CONNECT_TIMEOUT": "1",
            "SEND_MAX_ATTEMPTS": "15",  # so that the injected faults never make a message give up
            # A message whose every report the provider gave up posting is looked up after this long (6 hours
            # in production): the product's own remedy, so that such a run ends within the test.
            "FINAL_RECONCILE_AFTER_SECONDS": "60",
            # The emulator draws failure codes at random, some of them carrier filtering: a campaign would pause
            # itself as filtered (tests/messaging/test_causes.py proves that), which is not what is tested here.
            "CARRIER_FILTERING_RATE": "1.0",
            # Tasks a killed worker held are given again by Redis after 45 s (an hour in production), looked for
            # every 5 s: they run, find nothing to do, and leave the broker empty within the test.
            "BROKER_VISIBILITY_TIMEOUT": "45",
            "BROKER_RESTORE_SECONDS": "5",
            "VAR_DIR": str(tmp / "var"),
            **(extra or {}),
        }
        self.emulator_url = emulator_url
        self.workers: dict[str, Process] = {}
        self.retired: list[Process] = []  # workers replaced after a kill
        self.web: Process | None = None
        self.beat: Process | None = None
        self._logs: list[Path] = []

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def scenario(self, *args: str, timeout: float = 300) -> dict:
        done = subprocess.run([PYTHON, "-m", "tests.chaos.scenario", *args], cwd=ROOT,
                              env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"scenario {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def _process(self, name: str, args: list[str]) -> Process:
        log = self.tmp / f"{name}.log"
        self._logs.append(log)
        return Process(args, env=self.env, log=log)

    def start_web(self, workers: int = 2) -> None:
        self.web = self._process("web", [PYTHON, "-m", "gunicorn", "config.wsgi", "-w", str(workers), "-b",
                                         f"127.0.0.1:{self.web_port}", "--log-level", "warning"])
        wait_until(lambda: listening(self.web_port), timeout=60, message="gunicorn to listen")

    def start_worker(self, name: str, concurrency: int = 2) -> Process:
        args = [PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "INFO", "-n", f"{name}@%h",
                "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
        if name in self.workers:
            self.retired.append(self.workers[name])
        self.workers[name] = self._process(f"worker-{name}-{len(self._logs)}", args)
        return self.workers[name]

    def start_beat(self) -> Process:
        self.beat = self._process(f"beat-{len(self._logs)}", [
            PYTHON, "-m", "celery", "-A", "config", "beat", "-l", "INFO", "-s", str(self.tmp / "beat-schedule")])
        return self.beat

    @staticmethod
    def children(process: Process) -> list[int]:
        """The pids of a process's children (a Celery worker's pool)."""
        try:
            return [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
        except OSError:
            return []

    def kill_pool_child(self, name: str) -> int:
        """SIGKILL one pool process of a worker, mid-task: its main process replaces it."""
        pids = wait_until(lambda: self.children(self.workers[name]), timeout=30, message="a pool process")
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def kill_main(self, name: str) -> int:
        """SIGKILL a worker's main process alone (its pool is orphaned and ends by itself), as an OOM kill."""
        process = self.workers[name]
        pid = process.pid
        os.kill(pid, signal.SIGKILL)
        process.proc.wait(10)
        return pid

    def broker_empty(self) -> str | None:
        """``"empty"`` when the broker holds no task of this stack, queued or delivered and not yet acknowledged;
        else None."""
        queue, url = self.env["CELERY_QUEUE"], self.env["CELERY_BROKER_URL"]
        if url.startswith("redis://"):
            import redis

            client = redis.Redis.from_url(url)
            try:
                queued = sum(client.llen(key) for key in client.scan_iter(match=f"{queue}*") if
                             client.type(key) == b"list")
                unacked = client.hlen("unacked")
            finally:
                client.close()
        else:
            from kombu import Connection

            with Connection(url) as conn:
                _, queued, _ = conn.default_channel.queue_declare(queue=queue, passive=True)
            unacked = 0  # RabbitMQ gives delivered tasks back when their worker goes: none can hide
        return "empty" if queued == 0 and unacked == 0 else None

    def unhandled(self) -> list[str]:
        lines = []
        for log in self._logs:
            if log.exists():
                lines += [f"{log.name}: {line}" for line in unhandled_lines(log.read_text(errors="replace"))]
        return lines

    def task_results(self) -> dict:
        """What the workers' logs say the send and lookup tasks did: messages whose send had no clear answer
        (``unconfirmed``), and each lookup's result (``found``, ``resend``, ``checked`` ...)."""
        unconfirmed, lookups = 0, Counter()
        for log in self._logs:
            if not log.exists() or "worker-" not in log.name:
                continue
            for line in log.read_text(errors="replace").splitlines():
                if "messaging.tasks.send_batch[" in line and " succeeded " in line:
                    found = re.search(r"'unconfirmed': (\d+)", line)
                    unconfirmed += int(found.group(1)) if found else 0
                elif "messaging.tasks.reconcile[" in line and " succeeded " in line:
                    found = re.search(r"'result': '(\w+)'", line)
                    if found:
                        lookups[found.group(1)] += 1
        return {"sends_unconfirmed": unconfirmed, "lookups": dict(lookups)}

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-tail:]}" for log in self._logs
                         if log.exists())

    def stop(self) -> None:
        processes = [p for p in (*self.retired, *self.workers.values(), self.beat, self.web) if p is not None]
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # a killed main process may have left its pool behind
            except ProcessLookupError:
                pass
        for process in processes:
            process.stop(timeout=10)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
