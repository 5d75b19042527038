"""The circuit breaker of each sender: CIRCUIT_FAILURES consecutive provider failures open it, and nothing is
sent through that sender for CIRCUIT_OPEN_SECONDS (its campaigns' messages fail over to their backup sender
meanwhile, or wait). Kept in the sender's SenderPace row, shared by every worker."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import SenderPace
from ..providers.base import causes

logger = logging.getLogger("messaging")


def circuit_open_until(sender_id: int) -> datetime | None:
    """When the sender's open circuit closes again; None when it is closed."""
    until = SenderPace.objects.filter(sender_id=sender_id).values_list("open_until", flat=True).first()
    return until if until and until > timezone.now() else None


def circuit_record(sender_id: int, *, ok: bool, reason: str = "") -> None:
    """Count consecutive provider-side failures; open the circuit at CIRCUIT_FAILURES (``reason``: the last
    failure, kept as why it opened)."""
    if ok:
        SenderPace.objects.filter(sender_id=sender_id, consecutive_failures__gt=0).update(consecutive_failures=0)
        return
    with transaction.atomic():
        SenderPace.objects.get_or_create(sender_id=sender_id)
        SenderPace.objects.filter(sender_id=sender_id).update(consecutive_failures=F("consecutive_failures") + 1)
        _open(SenderPace.objects.filter(sender_id=sender_id, consecutive_failures__gte=settings.CIRCUIT_FAILURES),
              f"{settings.CIRCUIT_FAILURES} provider failures in a row; the last: {reason or 'no answer'}",
              causes.UNREACHABLE)


def _open(paces, reason: str, cause: str) -> None:
    paces.update(open_until=timezone.now() + timedelta(seconds=settings.CIRCUIT_OPEN_SECONDS), consecutive_failures=0,
                 open_reason=reason[:300], open_cause=cause)


def circuit_open_cause(sender_id: int) -> str:
    """The cause of the failures that last opened the sender's circuit ("" when it never opened)."""
    return SenderPace.objects.filter(sender_id=sender_id).values_list("open_cause", flat=True).first() or ""


def circuit_open_now(sender_id: int, *, reason: str = "") -> None:
    """Open the sender's circuit at once: the provider refused our account or configuration, so every message
    through this sender would fail the same way."""
    with transaction.atomic():
        SenderPace.objects.get_or_create(sender_id=sender_id)
        _open(SenderPace.objects.filter(sender_id=sender_id), reason or "account or configuration error", causes.ACCOUNT)
    logger.warning("circuit of sender %s opened at once: %s", sender_id, reason or "account or configuration error")
