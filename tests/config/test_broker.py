"""The embedded broker: a consumer polling the folder while producers write never reads half a message."""

from __future__ import annotations

import multiprocessing
import queue as stdlib_queue

from kombu import Connection

TRANSPORT = "config.broker:Transport"


def _options(folder) -> dict:
    return {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(folder / "control"),
            "polling_interval": 0.001}


def _produce(folder, count: int, transport: str) -> None:
    with Connection(transport=transport, transport_options=_options(folder)) as conn:
        q = conn.SimpleQueue("race")
        for i in range(count):
            q.put({"n": i, "padding": "x" * 20_000})
        q.close()


def test_a_consumer_never_sees_a_message_being_written(tmp_path):
    """(Kombu's own filesystem transport fails this: it creates the file before writing into it.)"""
    transport = TRANSPORT
    count = 600
    producers = [multiprocessing.get_context("spawn").Process(target=_produce, args=(tmp_path, count, transport))
                 for _ in range(2)]
    for p in producers:
        p.start()
    received = 0
    with Connection(transport=transport, transport_options=_options(tmp_path)) as conn:
        q = conn.SimpleQueue("race")
        while received < 2 * count:
            try:
                message = q.get(timeout=20)
            except stdlib_queue.Empty:
                break
            assert len(message.payload["padding"]) == 20_000
            received += 1
            message.ack()
        q.close()
    for p in producers:
        p.join(30)
    assert received == 2 * count
