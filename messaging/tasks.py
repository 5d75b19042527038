"""Thin Celery entry points for messaging. Each takes ids, calls one service, returns counts. While the
database is away, sends and lookups are tried again once it is back; the periodic sweep waits for its next run
(``config.celery``)."""

from celery import shared_task

from config.celery import DatabaseRetryTask, periodic

from . import services


@shared_task(name="messaging.tasks.send_batch", base=DatabaseRetryTask, acks_late=True, reject_on_worker_lost=True)
def send_batch(message_ids: list[int]) -> dict:
    return services.messages_send(message_ids=message_ids)


@shared_task(name="messaging.tasks.reconcile", base=DatabaseRetryTask, acks_late=True)
def reconcile(message_id: int) -> dict:
    return {"result": services.message_reconcile(message_id=message_id)}


@shared_task(name="messaging.tasks.sweep")
@periodic
def sweep() -> dict:
    return services.messages_sweep()
