"""Thin Celery entry points for messaging. Each takes ids, calls one service, returns counts."""

from celery import shared_task

from . import services


@shared_task(name="messaging.tasks.send_batch", acks_late=True, reject_on_worker_lost=True)
def send_batch(message_ids: list[int]) -> dict:
    return services.messages_send(message_ids=message_ids)


@shared_task(name="messaging.tasks.reconcile", acks_late=True)
def reconcile(message_id: int) -> dict:
    return {"result": services.message_reconcile(message_id=message_id)}


@shared_task(name="messaging.tasks.sweep")
def sweep() -> dict:
    return services.messages_sweep()
