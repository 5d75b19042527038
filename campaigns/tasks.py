"""Thin Celery entry points for campaigns."""

from celery import shared_task

from . import services


@shared_task(name="campaigns.tasks.dispatch")
def dispatch(campaign_id: int) -> dict:
    return services.campaign_dispatch(campaign_id=campaign_id)


@shared_task(name="campaigns.tasks.tick")
def tick() -> dict:
    return services.campaigns_dispatch_all()


@shared_task(name="campaigns.tasks.import_contacts")
def import_contacts(job_id: int) -> dict:
    from .imports.services import import_job_run

    return import_job_run(job_id=job_id)


@shared_task(name="campaigns.tasks.import_sweep")
def import_sweep() -> dict:
    from .imports.services import import_jobs_sweep

    return import_jobs_sweep()

