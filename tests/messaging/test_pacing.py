"""Pacing: a sender's slots are handed out 1/mps apart, whoever asks, on whichever store the settings pick."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.db import connection

from messaging import pacing
from messaging.models import SenderPace


def _reserve_from_threads(sender_id: int, mps: float, threads: int, each: int) -> list[float]:
    slots: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run():
        try:
            pacing.next_free(sender_id)  # this thread's connections are open before the race starts
            start.wait()
            for _ in range(each):
                slot = pacing.reserve(sender_id, mps)
                with lock:
                    slots.append(slot)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    return sorted(slots)


@pytest.mark.django_db(transaction=True)
def test_slots_are_spaced_by_the_senders_rate_across_threads(make_sender, settings):
    sender = make_sender("plivo", mps=10.0)
    before = time.time()
    slots = _reserve_from_threads(sender.pk, sender.mps, threads=4, each=5)

    assert len(slots) == 20
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 0.1 - 1e-3, gaps
    # 19 intervals: never less (the pace holds); hardly more (the threads asked back to back).
    assert 1.9 - 1e-3 <= slots[-1] - slots[0] < 2.4, [round(b - a, 3) for a, b in itertools.pairwise(slots)]
    assert before - 0.01 <= slots[0] <= time.time()
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        assert SenderPace.objects.get(sender=sender).next_free == pytest.approx(slots[-1] + 0.1, abs=1e-6)


@pytest.mark.django_db(transaction=True)
def test_senders_are_paced_independently(make_sender):
    a = make_sender("plivo", mps=1.0)
    b = make_sender("plivo", mps=1.0)
    first_a = pacing.reserve(a.pk, a.mps)
    first_b = pacing.reserve(b.pk, b.mps)
    assert abs(first_a - first_b) < 0.5  # b does not wait behind a
    assert pacing.reserve(a.pk, a.mps) == pytest.approx(first_a + 1.0, abs=1e-3)


@pytest.mark.django_db(transaction=True)
def test_push_back_delays_every_next_slot_and_never_pulls_it_closer(make_sender):
    sender = make_sender("plivo", mps=100.0)
    pacing.push_back(sender.pk, 2.0)
    slot = pacing.reserve(sender.pk, sender.mps)
    assert slot >= time.time() + 1.5
    pacing.push_back(sender.pk, 0.5)  # a shorter hint later does not undo the longer one
    assert pacing.reserve(sender.pk, sender.mps) == pytest.approx(slot + 0.01, abs=1e-3)


@pytest.mark.django_db(transaction=True)
def test_wait_for_slot_holds_a_sender_to_its_rate(make_sender):
    sender = make_sender("plivo", mps=20.0)
    started = time.monotonic()
    for _ in range(11):
        pacing.wait_for_slot(sender.pk, sender.mps)
    # Eleven sends at 20/s span ten intervals: never sooner than 0.5 s (the limit holds), and the waits add
    # nothing of their own beyond the schedule (a loose bound: this is not a timing test).
    assert 0.5 - 0.02 <= time.monotonic() - started < 2.0


@pytest.mark.django_db(transaction=True)
def test_a_429_halves_the_pace_in_use_and_clean_batches_give_it_back(make_sender):
    sender = make_sender("plivo", mps=40.0)
    assert pacing.effective_mps(sender.pk, sender.mps) == 40.0
    assert pacing.slow_down(sender.pk) == 0.5
    assert pacing.slow_down(sender.pk) == 0.25
    assert pacing.effective_mps(sender.pk, sender.mps) == 10.0
    assert pacing.speed_up(sender.pk) == pytest.approx(0.25 + pacing.RECOVERY_STEP)
    for _ in range(30):
        pacing.speed_up(sender.pk)
    assert pacing.rate_factor(sender.pk) == 1.0  # never above the configured pace
    for _ in range(20):
        pacing.slow_down(sender.pk)
    assert pacing.rate_factor(sender.pk) == pacing.MIN_FACTOR  # never stopped altogether


@pytest.mark.django_db(transaction=True)
def test_concurrent_slow_downs_all_count(make_sender):
    sender = make_sender("plivo", mps=64.0)

    def slow():
        try:
            pacing.slow_down(sender.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert pacing.rate_factor(sender.pk) == 1 / 16
