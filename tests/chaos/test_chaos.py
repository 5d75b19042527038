"""Nothing sent twice, nothing lost, every status true, while workers, the broker and the database die.

A campaign split over two senders runs against the emulator injecting server errors, rate limits, ambiguous
answers (accepted, then the connection cut) and duplicated or reordered callbacks, while the test kills worker
processes with SIGKILL and restarts the broker and PostgreSQL. At the end the books are checked against the
emulator's ledger: every recipient accepted exactly once, every message final with the status the provider
gave it, the counters equal to COUNT(*), no task left in the broker, no unhandled error in any log."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from messaging.models import FINAL_STATUSES
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.chaos, pytest.mark.timeout(900)]

FINAL = FINAL_STATUSES
FAULTS = {"error_5xx": 0.10, "rate_429": 0.05, "ambiguous": 0.02, "duplicate_callbacks": 0.10,
          "reorder_callbacks": 0.10}


def _progress(sandbox) -> int:
    return sandbox.ledger()["distinct"]


def _run_chaos(name: str, stack, sandbox, recipients: int, events: list, providers: str) -> dict:
    """Launch, play ``events`` (share of recipients accepted -> action) as the campaign goes, wait for every
    message to be final, then check the books. Returns the figures."""
    # 30 messages a second per sender: what this two-core machine serves with every process on it, status
    # callbacks included (two or three per message), with room for the faults' retries.
    made = stack.scenario("setup", "--recipients", str(recipients), "--emulator", sandbox.url, "--mps", "30",
                          "--providers", providers)
    campaign = str(made["campaign"])
    stack.start_worker("a")
    stack.start_worker("b")
    stack.start_beat()
    started = time.monotonic()
    stack.scenario("launch", "--campaign", campaign)
    done_events = []
    for share, action in events:
        wait_until(lambda share=share: _progress(sandbox) >= share * recipients, timeout=300, interval=0.1,
                   message=f"{share:.0%} of the recipients to be accepted")
        at = _progress(sandbox)
        assert at < recipients, "the campaign finished before the fault; the test proves nothing"
        detail = action()
        done_events.append(f"{action.__name__} at {at} accepted: {detail}")

    def finished():
        report = stack.scenario("report", "--campaign", campaign)
        pending = sum(1 for m in report["messages"] if m["status"] not in FINAL)
        return report if not pending and report["status"] == "completed" else None

    try:
        report = wait_until(finished, timeout=600, interval=2, message="every message final, the campaign completed")
    except AssertionError:
        print("\n".join(done_events))
        print(stack.logs())
        last = stack.scenario("report", "--campaign", campaign)
        print("statuses:", Counter((m["provider"], m["status"]) for m in last["messages"]), last["status"])
        raise
    to_final = time.monotonic() - started

    # No task left behind: with beat stopped, the workers empty the queue.
    stack.beat.stop()
    figures = _check_books(stack, sandbox, report, recipients)
    figures.update(events=done_events, seconds_to_final=round(to_final, 1))
    print("chaos figures:", figures)
    _keep(name, figures)
    return figures


def _check_books(stack, sandbox, report, recipients: int) -> dict:
    ledger = sandbox.ledger(detail=True)
    records = ledger.pop("messages")
    by_to = Counter(r["to"].lstrip("+") for r in records)
    messages = report["messages"]
    assert len(messages) == recipients
    # Every recipient accepted by the provider exactly once.
    assert ledger["duplicates"] == 0, ledger
    twice = {to: n for to, n in by_to.items() if n > 1}
    assert not twice, f"numbers sent to more than once: {list(twice.items())[:10]}"
    missing = [m for m in messages if m["to"].lstrip("+") not in by_to]
    assert not missing, f"{len(missing)} recipients never reached the provider: {missing[:5]}"
    assert len(records) == recipients, ledger
    # Every message final, with the provider's id and the outcome the provider gave it.
    by_id = {r["message_id"]: r for r in records}
    wrong = [(m, by_id.get(m["provider_message_id"], {}).get("outcome")) for m in messages
             if by_id.get(m["provider_message_id"], {}).get("outcome") != m["status"]]
    assert not wrong, f"{len(wrong)} statuses disagree with the provider's: {wrong[:5]}"
    # The dashboard's counters are true, and each outcome was counted once in its figures.
    assert report["counters"] == report["exact"], report["counters"]
    for outcome in ("delivered", "undelivered", "failed"):
        assert report["tallies"].get(outcome, 0) == report["exact"].get(outcome, 0), (outcome, report["tallies"])
    assert report["tallies"].get("sent", 0) == recipients, report["tallies"]
    # Nothing left in the broker, nothing unhandled in any log.
    left = wait_until(lambda: stack.broker_empty(), timeout=180, interval=0.5, message="the broker to be empty")
    unhandled = stack.unhandled()
    assert not unhandled, "\n".join(unhandled[:40])
    return {
        "recipients": recipients,
        "accepted": ledger["accepted"],
        "duplicates": ledger["duplicates"],
        "lost": len(missing),
        "injected": {k: ledger.get(k, 0) for k in ("rejected_5xx", "rejected_429", "ambiguous",
                                                   "callbacks_duplicated", "callbacks_reordered")},
        "callbacks": {k: v for k, v in ledger.items() if k.startswith("callbacks_")},
        "statuses": dict(Counter(m["status"] for m in messages)),
        "attempts_over_1": sum(1 for m in messages if m["attempts"] > 1),
        "reconciled": report["reconciled"],
        "callback_events": report["callback_events"],
        **stack.task_results(),
        "broker": left,
    }


def _keep(name: str, figures: dict) -> None:
    """Append the run's figures to var/test-artifacts/chaos-figures.jsonl (``.ci/run`` prints the file)."""
    folder = ROOT / "var" / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "chaos-figures.jsonl", "a") as out:
        out.write(json.dumps({"test": name, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}) + "\n")


def _faults(stack, broker, postgres) -> tuple:
    """The faults a test plays, each returning what it did: SIGKILL a pool process, restart the broker, SIGKILL a
    worker's main process and start a new one (as a supervisor would), restart PostgreSQL, SIGKILL beat and start
    a new one."""

    def kill_pool_child():
        return f"pid {stack.kill_pool_child('a')}"

    def restart_broker():
        return f"away {broker.restart():.1f} s"

    def kill_main_process():
        pid = stack.kill_main("b")
        stack.start_worker("b")
        return f"pid {pid}, replaced"

    def restart_postgres():
        return f"away {postgres.restart():.1f} s"

    def kill_beat():
        pid = stack.beat.pid
        stack.beat.kill()
        stack.start_beat()
        return f"pid {pid}, replaced"

    return kill_pool_child, restart_broker, kill_main_process, restart_postgres, kill_beat


def test_campaign_survives_killed_workers_and_restarted_redis_and_postgres(make_stack, own_redis, own_postgres, sandbox):
    """10,000 recipients over two Bandwidth senders: its requests carry up to 50 messages each, so one ambiguous
    answer leaves fifty messages to reconcile at once. (A provider taking one message per request, refusing 5%
    of them with 429 and a wait of a second each time, goes at about ten messages a second: the RabbitMQ test
    sends through one, Plivo.)"""
    recipients = int(os.environ.get("CHAOS_RECIPIENTS", "10000"))
    sandbox.config(latency_ms=10, delivered=0.9, undelivered=0.05, failed=0.05, seed=14, **FAULTS)
    stack = make_stack(own_redis.url)

    kill_pool_child, restart_redis, kill_main_process, restart_postgres, kill_beat = _faults(
        stack, own_redis, own_postgres)

    events = [(0.10, kill_pool_child), (0.25, restart_redis), (0.40, kill_main_process),
              (0.55, restart_postgres), (0.70, kill_pool_child), (0.80, kill_beat)]
    _run_chaos("redis", stack, sandbox, recipients, events, providers="bandwidth,bandwidth")


def test_campaign_on_rabbitmq_survives_killed_workers_and_restarted_broker_and_postgres(
    make_stack, machine_rabbitmq, own_postgres, sandbox
):
    """The same with RabbitMQ as the broker, smaller, split over a Plivo sender (one message per request, looked
    up by listing the provider's messages when its answer was lost) and a Bandwidth one."""
    recipients = int(os.environ.get("CHAOS_RABBITMQ_RECIPIENTS", "2000"))
    sandbox.config(latency_ms=10, delivered=0.9, undelivered=0.05, failed=0.05, seed=15, **FAULTS)
    stack = make_stack(machine_rabbitmq.url)

    kill_pool_child, restart_rabbitmq, kill_main_process, restart_postgres, _ = _faults(
        stack, machine_rabbitmq, own_postgres)

    events = [(0.10, kill_pool_child), (0.25, restart_rabbitmq), (0.45, kill_main_process),
              (0.60, restart_postgres), (0.75, kill_pool_child)]
    _run_chaos("rabbitmq", stack, sandbox, recipients, events, providers="plivo,bandwidth")


def test_callbacks_while_postgres_is_down_are_refused_503_and_applied_once_it_is_back(
    make_stack, own_redis, own_postgres, sandbox
):
    """Status callbacks that arrive while the database is down are answered 503 (the provider retries), none is
    answered 200 unapplied, and each is applied once the database is back: every status true, none counted
    twice."""
    recipients = 200
    sandbox.config(latency_ms=5, callback_delay_ms=1000, delivered=0.8, undelivered=0.1, failed=0.1,
                   duplicate_callbacks=0.1, reorder_callbacks=0.1, seed=16)
    # No lookup of messages without a receipt within the test (6 hours, as in production): every final status
    # comes from a callback.
    stack = make_stack(own_redis.url, FINAL_RECONCILE_AFTER_SECONDS="21600")
    made = stack.scenario("setup", "--recipients", str(recipients), "--emulator", sandbox.url, "--mps", "20")
    campaign = str(made["campaign"])
    stack.start_worker("a")
    stack.start_beat()
    stack.scenario("launch", "--campaign", campaign)
    # Every message accepted: their reports are still to come, a second apart.
    wait_until(lambda: _progress(sandbox) >= recipients, timeout=120, interval=0.05, message="every send accepted")
    delivered_before = sandbox.ledger().get("callbacks_delivered", 0)
    own_postgres.crash()
    refused = wait_until(lambda: sandbox.ledger().get("callbacks_answered_503", 0) >= 20, timeout=60,
                         interval=0.05, message="callbacks to be refused while the database is down")
    own_postgres.start()

    def finished():
        report = stack.scenario("report", "--campaign", campaign)
        pending = sum(1 for m in report["messages"] if m["status"] not in FINAL)
        return report if not pending and report["status"] == "completed" else None

    try:
        report = wait_until(finished, timeout=180, interval=1, message="every message final")
    except AssertionError:
        print(stack.logs())
        raise
    stack.beat.stop()
    ledger = sandbox.ledger()
    assert ledger.get("callbacks_answered_503", 0) >= 20 and refused
    assert ledger.get("callbacks_answered_500", 0) == 0, ledger  # the database away is a 503, never a crash
    assert ledger.get("callbacks_given_up", 0) == 0, ledger
    assert ledger["callbacks_delivered"] > delivered_before
    figures = _check_books(stack, sandbox, report, recipients)
    print("callbacks under a database restart:", figures)
    _keep("callbacks", figures)
