"""The chaos suite runs on the production setup (the suite's database is PostgreSQL): each test starts its own
PostgreSQL cluster and Redis server (see ``stack``), so that killing them harms nothing else."""

from __future__ import annotations

import shutil

import pytest

from tests.chaos.stack import MachineRabbitMQ, OwnPostgres, OwnRedis, Stack, listening, postgres_bindir


def _production_setup() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def own_postgres():
    if not _production_setup():
        pytest.skip("the chaos suite runs on the production setup (DATABASE_URL=postgres://...; .ci/run does)")
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL's server programs are missing (apt-get install postgresql)")
    server = OwnPostgres(bindir)
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path):
    if not _production_setup():
        pytest.skip("the chaos suite runs on the production setup (DATABASE_URL=postgres://...; .ci/run does)")
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing (apt-get install redis-server)")
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def machine_rabbitmq():
    """The machine's RabbitMQ, with no task of the chaos stack left in it before and after."""
    if not _production_setup():
        pytest.skip("the chaos suite runs on the production setup (DATABASE_URL=postgres://...; .ci/run does)")
    if not shutil.which("rabbitmqctl") or not listening(5672):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (.ci/run installs and starts it)")
    broker = MachineRabbitMQ()
    broker.delete_queue("celery.chaos")
    yield broker
    broker.delete_queue("celery.chaos")


@pytest.fixture
def make_stack(own_postgres, sandbox, tmp_path):
    """``make_stack(broker_url, **env)``: the product migrated on the test's own PostgreSQL, its web server up;
    workers and beat are the test's to start. Everything is stopped after the test."""
    stacks = []

    def make(broker_url: str, **extra) -> Stack:
        database_url = own_postgres.create_database("chaos")
        stack = Stack(tmp=tmp_path, database_url=database_url, broker_url=broker_url, emulator_url=sandbox.url,
                      extra=extra)
        stacks.append(stack)
        stack.manage("migrate", "--noinput")
        stack.start_web()
        return stack

    yield make
    for stack in stacks:
        stack.stop()
