"""Pacing: a sender's slots are handed out 1/mps apart, whoever asks, on either store (the database's
SenderPace rows, or Redis when the broker is Redis)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
import redis
from django.db import connection

from messaging import pacing
from messaging.models import SenderPace
from messaging.pacing import DatabaseStore, RedisStore


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


@pytest.fixture(params=[DatabaseStore, RedisStore], ids=["database", "redis"])
def pace_store(request, settings):
    """The test runs once on each store. The store follows CELERY_BROKER_URL: the database one under any other
    broker; the Redis one at the configured Redis (skipped when the broker is not Redis or does not answer)."""
    if request.param is RedisStore:
        url = settings.CELERY_BROKER_URL
        if not _is_redis(url):
            pytest.skip("the Redis store is tested when the broker is Redis (CELERY_BROKER_URL=redis://...)")
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.exceptions.ConnectionError:
            pytest.skip(f"no Redis answers at {url}")
    elif _is_redis(settings.CELERY_BROKER_URL):
        settings.CELERY_BROKER_URL = "filesystem://"
    store = pacing.store()
    assert isinstance(store, request.param)
    return store


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
def test_slots_are_spaced_by_the_senders_rate_across_threads(make_sender, pace_store):
    sender = make_sender("plivo", mps=10.0)
    before = time.time()
    slots = _reserve_from_threads(sender.pk, sender.mps, threads=4, each=5)

    assert len(slots) == 20
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 0.1 - 1e-3, gaps
    # 19 intervals: never less (the pace holds); hardly more (the threads asked back to back).
    assert 1.9 - 1e-3 <= slots[-1] - slots[0] < 2.4, [round(b - a, 3) for a, b in itertools.pairwise(slots)]
    assert before - 0.01 <= slots[0] <= time.time()
    if isinstance(pace_store, DatabaseStore):
        assert SenderPace.objects.get(sender=sender).next_free == pytest.approx(slots[-1] + 0.1, abs=1e-6)


@pytest.mark.django_db(transaction=True)
def test_senders_are_paced_independently(make_sender, pace_store):
    a = make_sender("plivo", mps=1.0)
    b = make_sender("plivo", mps=1.0)
    first_a = pacing.reserve(a.pk, a.mps)
    first_b = pacing.reserve(b.pk, b.mps)
    assert abs(first_a - first_b) < 0.5  # b does not wait behind a
    assert pacing.reserve(a.pk, a.mps) == pytest.approx(first_a + 1.0, abs=1e-3)


@pytest.mark.django_db(transaction=True)
def test_push_back_delays_every_next_slot_and_never_pulls_it_closer(make_sender, pace_store):
    sender = make_sender("plivo", mps=100.0)
    pacing.push_back(sender.pk, 2.0)
    slot = pacing.reserve(sender.pk, sender.mps)
    assert slot >= time.time() + 1.5
    pacing.push_back(sender.pk, 0.5)  # a shorter hint later does not undo the longer one
    assert pacing.reserve(sender.pk, sender.mps) == pytest.approx(slot + 0.01, abs=1e-3)


@pytest.mark.django_db(transaction=True)
def test_wait_for_slot_holds_a_sender_to_its_rate(make_sender, pace_store):
    sender = make_sender("plivo", mps=20.0)
    started = time.monotonic()
    for _ in range(11):
        pacing.wait_for_slot(sender.pk, sender.mps)
    # Eleven sends at 20/s span ten intervals: never sooner than 0.5 s (the limit holds), and the waits add
    # nothing of their own beyond the schedule (a loose bound: this is not a timing test).
    assert 0.5 - 0.02 <= time.monotonic() - started < 2.0


@pytest.mark.django_db(transaction=True)
def test_a_429_halves_the_pace_in_use_and_clean_batches_give_it_back(make_sender, pace_store):
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
def test_the_pace_follows_the_share_of_calls_the_provider_takes(make_sender, pace_store):
    sender = make_sender("plivo", mps=100.0)
    # A provider refusing the odd call whatever the pace: 1 in 20 refused, then the step given back.
    assert pacing.pace_after_batch(sender.pk, calls=20, rate_limited=1) == pytest.approx(1.0)
    assert pacing.pace_after_batch(sender.pk, calls=100, rate_limited=5) == pytest.approx(1.0)
    # Sending well over the provider's limit: the pace drops by the share refused (at most half per batch).
    assert pacing.pace_after_batch(sender.pk, calls=10, rate_limited=3) == pytest.approx(0.7 + pacing.RECOVERY_STEP)
    assert pacing.pace_after_batch(sender.pk, calls=4, rate_limited=4) == pytest.approx((0.7 + pacing.RECOVERY_STEP) / 2)
    low = pacing.rate_factor(sender.pk)
    assert pacing.pace_after_batch(sender.pk, calls=10, rate_limited=0) == pytest.approx(low + pacing.RECOVERY_STEP)
    assert pacing.pace_after_batch(sender.pk, calls=0, rate_limited=0) == pytest.approx(low + pacing.RECOVERY_STEP)


@pytest.mark.django_db(transaction=True)
def test_the_pace_settles_just_above_a_real_limit(make_sender, pace_store):
    """Against a provider that takes at most 40 calls a second and refuses the rest, a sender configured at 100
    settles where the calls refused are about the step given back, instead of halving again and again."""
    sender = make_sender("plivo", mps=100.0)
    limit = 40.0
    seen = []
    for _ in range(40):
        rate = pacing.effective_mps(sender.pk, sender.mps)  # a batch of 100 calls at the pace in use
        refused = round(100 * max(0.0, 1 - limit / rate))
        pacing.pace_after_batch(sender.pk, calls=100, rate_limited=refused)
        seen.append(pacing.effective_mps(sender.pk, sender.mps))
    assert all(limit <= pace <= limit + 100 * pacing.RECOVERY_STEP + 1 for pace in seen[10:]), seen


@pytest.mark.django_db(transaction=True)
def test_concurrent_slow_downs_all_count(make_sender, pace_store):
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


@pytest.mark.django_db(transaction=True)
def test_a_bounded_reservation_grants_only_the_slots_in_time_and_consumes_no_more(make_sender, pace_store):
    sender = make_sender("plivo", mps=10.0)
    bound = time.time() + 0.45
    first, granted = pacing.reserve_within(sender.pk, sender.mps, 10, not_after=bound)
    assert 1 <= granted < 10
    assert first + (granted - 1) * 0.1 <= bound < first + granted * 0.1  # every slot granted is in time
    assert pacing.next_free(sender.pk) == pytest.approx(first + granted * 0.1, abs=1e-6)
    late, none = pacing.reserve_within(sender.pk, sender.mps, 3, not_after=time.time() - 1.0)
    assert none == 0 and late == pytest.approx(first + granted * 0.1, abs=1e-6)
    assert pacing.reserve(sender.pk, sender.mps) == pytest.approx(first + granted * 0.1, abs=1e-6)  # nothing taken


@pytest.mark.django_db(transaction=True)
def test_a_rate_factor_change_from_a_stale_reading_is_refused(make_sender, pace_store):
    sender = make_sender("plivo", mps=10.0)
    assert pace_store.factor(sender.pk) == 1.0
    assert pace_store.factor_swap(sender.pk, 1.0, 0.5)
    assert not pace_store.factor_swap(sender.pk, 1.0, 0.25)  # read before the change above: nothing written
    assert pace_store.factor(sender.pk) == 0.5
    other = make_sender("plivo", mps=10.0)  # nothing stored: at its configured pace
    assert pace_store.factors([sender.pk, other.pk]) == {sender.pk: 0.5, other.pk: 1.0}
    assert pace_store.factor_swap(sender.pk, 0.5, 1.0)
    assert pacing.rate_factor(sender.pk) == 1.0


def test_the_store_follows_the_broker_setting_and_is_made_once_per_url(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"  # making a store does not connect
    redis_store = pacing.store()
    assert isinstance(redis_store, RedisStore) and pacing.store() is redis_store
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    assert isinstance(pacing.store(), DatabaseStore)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    assert pacing.store() is redis_store
