"""Thin Celery entry points for campaigns. While the database is away, a dispatch or an import is tried again
once it is back; the periodic tasks wait for their next run (``config.celery``)."""

from celery import shared_task

from config.celery import DatabaseRetryTask, periodic

from . import services


@shared_task(name="campaigns.tasks.dispatch", base=DatabaseRetryTask)
def dispatch(campaign_id: int) -> dict:
    return services.campaign_dispatch(campaign_id=campaign_id)


@shared_task(name="campaigns.tasks.tick")
@periodic
def tick() -> dict:
    return services.campaigns_dispatch_all()


@shared_task(name="campaigns.tasks.import_contacts", base=DatabaseRetryTask)
def import_contacts(job_id: int) -> dict:
    from .imports.services import import_job_run

    return import_job_run(job_id=job_id)


@shared_task(name="campaigns.tasks.import_sweep")
@periodic
def import_sweep() -> dict:
    from .imports.services import import_jobs_sweep

    return import_jobs_sweep()
