"""Fixtures shared by the whole suite: the provider emulator, real Celery workers, senders."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.support import PYTHON, Process, database_url, delete_queue, free_port, http_json, wait_until

# Outbound calls connect to public addresses only, except to the hosts OUTBOUND_ALLOWED_HOSTS lists: the emulator,
# the media hosts and the live servers of the tests all listen on 127.0.0.1 (any port), in this process and in
# the workers it starts (they inherit the environment). Settings are loaded before this file: set both.
os.environ["OUTBOUND_ALLOWED_HOSTS"] = "127.0.0.1"


def _allow_local_outbound() -> None:
    from django.conf import settings

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


_allow_local_outbound()


@pytest.fixture(scope="session", autouse=True)
def _own_broker_folder():
    """Every process this test run starts shares its filesystem broker folder (BROKER_FOLDER), so none makes a
    folder of its own. At the end of the run the folder, the run's queue (named after its test database) and
    SQLite's side files are removed, and no process the run started has left a broker folder behind."""
    from django.conf import settings

    from config.celery import app

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    folder = None
    if settings.CELERY_BROKER_URL.startswith("filesystem://") and "data_folder_in" in options:
        folder = Path(options["data_folder_in"]).parent
    previous = os.environ.get("BROKER_FOLDER")
    if folder is not None:
        os.environ["BROKER_FOLDER"] = str(folder)
    yield
    if previous is None:
        os.environ.pop("BROKER_FOLDER", None)
    else:
        os.environ["BROKER_FOLDER"] = previous
    if folder is not None:
        if folder.name.startswith("test-broker-"):
            shutil.rmtree(folder, ignore_errors=True)
    else:
        delete_queue(app, app.conf.task_default_queue)
    test_db = settings.DATABASES["default"].get("TEST", {}).get("NAME") or ""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and not os.path.exists(test_db):
        for suffix in ("-wal", "-shm"):  # SQLite's side files outlive the test database Django removed
            if os.path.exists(test_db + suffix):
                os.remove(test_db + suffix)
    left = [name for name in (f"test-broker-{pid}" for pid in Process.started) if (settings.VAR_DIR / name).exists()]
    assert not left, f"processes started by the tests left broker folders behind in {settings.VAR_DIR}: {left}"


@pytest.fixture(scope="session", autouse=True)
def _no_lingering_sessions(django_db_setup, django_db_blocker):
    """At the end of the run, close what this process's send threads and other processes (workers, the live
    server's threads) may still hold open on the test database, so that it can be dropped (and SQLite leaves no
    -wal or -shm file behind)."""
    yield
    from django.db import connection

    from messaging.services.batch import send_pool_shutdown

    send_pool_shutdown()
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


class SandboxClient:
    """The emulator as a test sees it: its URL and its control endpoints."""

    def __init__(self, url: str):
        self.url = url

    def config(self, **options) -> dict:
        return http_json(f"{self.url}/sandbox/config", options)

    def reset(self) -> None:
        http_json(f"{self.url}/sandbox/reset", {})

    def ledger(self, detail: bool = False) -> dict:
        return http_json(f"{self.url}/sandbox/ledger" + ("?detail=1" if detail else ""))

    def inbound(self, **data) -> dict:
        return http_json(f"{self.url}/sandbox/inbound", data)

    def force_status(self, provider: str, message_id: str, **data) -> dict:
        return http_json(f"{self.url}/sandbox/messages/{provider}/{message_id}/status", data)


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    """The emulator, started once as its own process (``manage.py provider_sandbox``)."""
    port = free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    process = Process(
        [PYTHON, "manage.py", "provider_sandbox", "--port", str(port), "--latency-ms", "5",
         "--callback-delay-ms", "30"],
        log=log,
    )
    client = SandboxClient(f"http://127.0.0.1:{port}")

    def up():
        try:
            return client.ledger() is not None
        except OSError:
            return False

    try:
        wait_until(up, timeout=30, message="the provider emulator to start")
    except AssertionError:
        process.stop()
        raise AssertionError("emulator did not start:\n" + process.output()) from None
    yield client
    process.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The emulator, emptied and with its start-up options, for one test."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def engine(settings):
    """Services called directly by the test, Celery not eager (enqueued tasks run nowhere), status-callback
    URLs pointing at a closed port: the emulator's callbacks reach nobody, only what a test posts arrives."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{free_port()}"
    return settings


_numbers = itertools.count(1000)


@pytest.fixture
def make_sender(db, sandbox_server):
    """Create a Sender of any provider pointing at the emulator, with test credentials, as the app creates
    senders (``sender_create``: a random callback password where the provider signs nothing)."""
    from messaging.providers import PROVIDERS
    from messaging.services import sender_create

    def make(provider: str = "plivo", **overrides):
        cls = PROVIDERS[provider]
        defaults = {
            "name": f"{cls.name} test sender",
            "provider": provider,
            "address": f"+1415555{next(_numbers):04d}",
            "credentials": {key: f"test-{key}-value" for key in cls.credential_keys},
            "api_base_url": sandbox_server.url,
            "mps": 500.0,
        }
        defaults.update(overrides)
        return sender_create(**defaults)

    return make


@pytest.fixture
def make_audience(db):
    """Create a contact list with ``n`` contacts (numbers +1 212 555 xxxx)."""
    from campaigns.models import Contact, ContactList, ListMembership

    counter = itertools.count(1)

    def make(n: int = 10, name: str | None = None, start: int = 0, prefix: str = "+1212555"):
        contact_list = ContactList.objects.create(name=name or f"List {next(counter)} {os.urandom(3).hex()}")
        contacts = Contact.objects.bulk_create(
            [Contact(phone=f"{prefix}{start + i:04d}", first_name=f"Person{start + i}") for i in range(n)],
            batch_size=1000,
        )
        if not contacts or contacts[0].pk is None:
            contacts = list(Contact.objects.filter(phone__in=[f"{prefix}{start + i:04d}" for i in range(n)]))
        ListMembership.objects.bulk_create(
            [ListMembership(contact=c, contact_list=contact_list) for c in contacts], batch_size=1000
        )
        return contact_list

    return make


@pytest.fixture
def make_campaign(db):
    from campaigns.models import Campaign

    def make(sender, lists, body="Hi {{ first_name }}, this is a test.", **fields):
        campaign = Campaign.objects.create(name=fields.pop("name", "Test campaign"), sender=sender, body=body, **fields)
        campaign.lists.set(lists)
        return campaign

    return make


class WorkerPool:
    """Real Celery worker processes against the configured broker and the test database."""

    def __init__(self, env: dict, tmp: Path):
        self.env = env
        self.tmp = tmp
        self.processes: list[Process] = []
        self._n = itertools.count(1)

    def start(self, concurrency: int = 2, beat: bool = False, extra_env: dict | None = None) -> Process:
        n = next(self._n)
        args = [PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "INFO", "-n", f"w{n}@%h",
                "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
        if beat:
            args += ["-B", "-s", str(self.tmp / f"beat-{n}")]
        process = Process(args, env={**self.env, **(extra_env or {})}, log=self.tmp / f"worker-{n}.log")
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """SIGTERM every worker at once (a warm shutdown), then SIGKILL whatever is still up after a grace
        period: the test has made its assertions, only the processes are left to clean up."""
        for process in self.processes:
            if process.alive():
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.processes:
            process.stop(timeout=max(0.1, deadline - time.monotonic()))
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.processes)


@pytest.fixture
def workers(transactional_db, live_server, sandbox, settings, tmp_path):
    """Start real workers with ``workers.start()``; all are stopped after the test.

    The workers use the test database, the configured broker (filesystem by default, Redis or RabbitMQ
    when CELERY_BROKER_URL says so) and send status-callback URLs pointing at this test's live server."""
    from django.db import connection

    from config.celery import app, queue_for

    # Workers given the test database consume the queue named after it: the one this process enqueues to.
    assert app.conf.task_default_queue in (queue_for(connection.settings_dict["NAME"]), os.environ.get("CELERY_QUEUE"))
    settings.PUBLIC_BASE_URL = live_server.url
    app.control.purge()
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "PUBLIC_BASE_URL": live_server.url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TICK_SECONDS": "1",
        "SWEEP_SECONDS": "2",
        "RECONCILE_AFTER_SECONDS": "8",
        "PROVIDER_TIMEOUT": "2",
        "PROVIDER_CONNECT_TIMEOUT": "1",
        "LOG_LEVEL": "INFO",
    }
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        env["BROKER_FOLDER"] = str(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
    pool = WorkerPool(env, tmp_path)
    yield pool
    pool.stop_all()
    app.control.purge()


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture
def browser():
    """Debian's headless Chromium driven by Playwright's sync API (skipped if missing unless REQUIRE_BROWSER)."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(executable):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (REQUIRE_BROWSER is set) but /usr/bin/chromium is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; our ORM calls in the test are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
        # While Playwright's loop runs, Django keeps this thread's connections in a context variable, apart
        # from the ones pytest-django closes: close them here, or PostgreSQL refuses to drop the test database.
        from django.db import connections

        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def media_server():
    """A local media host (see ``tests.support.MediaHandler``); yields its base URL."""
    import threading
    from http.server import ThreadingHTTPServer

    from tests.support import MediaHandler

    MediaHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), MediaHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()



@pytest.fixture
def example_prices(db):
    """The example price table the migration ships (a flush by an earlier transactional test empties it)."""
    import importlib

    from django.apps import apps

    importlib.import_module("campaigns.migrations.0006_compose_windows_prices").add_example_prices(apps, None)


@pytest.fixture
def roles(db):
    """The three staff groups the migration creates (a flush by an earlier transactional test empties them),
    and ``roles.user(name)``: a staff member in that group (or in none, for ``None``)."""
    from django.contrib.auth.models import Group, User

    from campaigns.roles import roles_sync

    roles_sync()

    class Roles:
        @staticmethod
        def user(role: str | None) -> User:
            username = f"staff-{(role or 'none').lower().replace(' ', '-')}-{os.urandom(3).hex()}"
            user = User.objects.create_user(username, password="pw", is_staff=True)
            if role:
                user.groups.add(Group.objects.get(name=role))
            return User.objects.get(pk=user.pk)  # permissions are cached per instance

    return Roles()
