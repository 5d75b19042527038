"""The emulator's own promises: its `seed` option makes every random choice repeatable, error codes included."""

from __future__ import annotations

import json
import urllib.request

import pytest

from messaging.providers import provider_for
from tests.messaging.providers.contract import outbound_message
from tests.support import free_port, wait_until

pytestmark = pytest.mark.django_db


def _cloudvno_codes(sandbox, sender, adapter, ids):
    """CloudVNO documents no lookup: the emulator's message list shows the codes."""
    request = urllib.request.Request(f"{sandbox.url}/v1/messages?limit=100",
                                     headers={"Authorization": f"Bearer {sender.credentials['api_key']}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        rows = {row["sid"]: row.get("error_code") for row in json.loads(response.read())["messages"]}
    return [rows.get(pid) for pid in ids]


def _looked_up_codes(sandbox, sender, adapter, ids):
    return [adapter.lookup(pid).error_code for pid in ids]


# provider -> (the outcome whose error code the emulator picks at random, how to read the codes back)
CASES = {
    "cloudvno": ("failed", _cloudvno_codes),
    "plivo": ("failed", _looked_up_codes),
    "fonedynamics": ("undelivered", _looked_up_codes),
    "bandwidth": ("undelivered", _looked_up_codes),
}


def _codes(sandbox, sender, provider: str, seed: int) -> list[str]:
    outcome, read = CASES[provider]
    sandbox.reset()
    # Callbacks duplicated and reordered at random, delivered in the background while later sends arrive: their
    # draws must not change the answers the seed gives.
    sandbox.config(seed=seed, callback_delay_ms=1, duplicate_callbacks=0.5, reorder_callbacks=0.5,
                   callback_retries=0, **{"delivered": 0.0, "undelivered": 0.0, "failed": 0.0, outcome: 1.0})
    adapter = provider_for(sender)
    closed = f"http://127.0.0.1:{free_port()}/status/"  # callbacks fail at once, between the sends
    ids = [adapter.send(outbound_message(message_id=n, to=f"+1212555{n:04d}", url=closed)).provider_message_id
           for n in range(12)]

    def codes():
        found = read(sandbox, sender, adapter, ids)
        return found if all(found) else None

    return wait_until(codes, timeout=10, message="every message's final status")


@pytest.mark.parametrize("provider", sorted(CASES))
def test_the_seed_makes_error_codes_repeatable(make_sender, sandbox, provider):
    sender = make_sender(provider)
    first = _codes(sandbox, sender, provider, seed=1234)
    again = _codes(sandbox, sender, provider, seed=1234)
    assert first == again
    assert len(set(first)) > 1  # still a random choice among the documented codes
