"""Reconciliation: settling messages whose outcome we do not know, by asking the provider or by staff."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import STATUS_RANK, Dispatch, Message, MessageEvent
from ..providers import provider_for
from ..providers.base import ConfigurationError, LookupInconclusiveError, ProviderError
from .events import events_apply
from .history import event_record
from .outbound import outbound_for
from .status import message_move

logger = logging.getLogger("messaging")
S = Message.Status
# How far a provider's timestamps may be from ours (both kept by NTP: well under a second in practice).
CLOCK_MARGIN = timedelta(seconds=15)


def message_reconcile(*, message_id: int) -> str:
    """Ask the provider about a message whose outcome we don't know and record the truth.

    - ``unconfirmed`` (ambiguous send) or ``sending`` long after its claim (worker died): found -> its
      status is recorded; surely unknown to the provider -> ``errored`` so it is sent again; the provider
      cannot be asked, or its answer does not settle it -> ``unconfirmed``, flagged for staff, who may resend.
    - ``sent`` with no final status after FINAL_RECONCILE_AFTER_SECONDS: its current status is looked up.

    Every change is conditional on the row still being exactly as observed here (status, claim time and
    attempt count): if the message was claimed again meanwhile, this answer is about an older attempt and
    changes nothing.
    """
    message = Message.objects.select_related("sender").filter(pk=message_id).first()
    if message is None or message.status not in (S.UNCONFIRMED, S.SENDING, S.SENT):
        return "skipped"
    lease_over = timezone.now() - timedelta(seconds=settings.RECONCILE_AFTER_SECONDS)
    if message.status == S.SENDING and (message.claimed_at is None or message.claimed_at > lease_over):
        return "skipped"  # its sender may still be working on it
    observed = {"claimed_at": message.claimed_at, "attempts": message.attempts}
    Message.objects.filter(pk=message.pk).update(checked_at=timezone.now())
    try:
        provider = provider_for(message.sender)
    except ConfigurationError as exc:  # e.g. its secrets cannot be decrypted: asked again after the fix
        logger.warning("message %s cannot be reconciled now: %s", message.pk, exc)
        return "retry"
    if message.status == S.SENT:
        if not (message.provider_message_id and provider.supports_lookup):
            return "unanswerable"
        try:
            event = provider.lookup(message.provider_message_id)
        except ProviderError as exc:
            logger.warning("lookup of message %s failed: %s", message.pk, exc)
            return "retry"
        if event is not None:
            events_apply(sender=message.sender, events=[event],
                         source=MessageEvent.Source.LOOKUP, message_hint=message.pk)
        return "checked"

    def move(to_status: str, fields: dict, reported: bool = False) -> bool:
        return message_move(message.pk, to_status, from_statuses=(message.status,), fields=fields, where=observed,
                            reported=reported)

    # The attempt in doubt started after its claim and ended no later than its lease and its call could last;
    # every earlier attempt was found not received before this one was allowed (a transient refusal, or a lookup
    # that proved the provider never got it). The provider is asked about that window only, widened by
    # CLOCK_MARGIN for the difference between its clock and ours: a narrow window is one a provider listing its
    # messages by time (Plivo) can read to the end while a campaign is sending, so the lookup settles it.
    claimed = max(message.created_at, message.claimed_at) if message.claimed_at else None
    since = (claimed or message.created_at) - CLOCK_MARGIN
    call_ceiling = settings.PROVIDER_CONNECT_TIMEOUT + settings.PROVIDER_TIMEOUT + settings.RECONCILE_AFTER_SECONDS
    until = (claimed or timezone.now()) + timedelta(seconds=call_ceiling) + CLOCK_MARGIN
    try:
        if message.provider_message_id and provider.supports_lookup:
            event = provider.lookup(message.provider_message_id)
        else:
            event = provider.find(outbound_for(message), since, until=until)
    except (NotImplementedError, LookupInconclusiveError) as exc:
        why = (
            "the provider cannot be asked" if isinstance(exc, NotImplementedError)
            else f"the provider's answer does not settle it ({exc})"
        )
        with transaction.atomic():
            if message.status == S.SENDING:
                move(S.UNCONFIRMED, {})
            Message.objects.filter(pk=message.pk, status=S.UNCONFIRMED).update(
                error_message=f"Outcome unknown and {why}: check with the provider, then confirm or resend."[:1000]
            )
        return "unanswerable"
    except ProviderError as exc:
        logger.warning("reconcile of message %s failed: %s", message.pk, exc)
        return "retry"
    if event is None:
        with transaction.atomic():
            moved = move(S.ERRORED, {"next_attempt_at": timezone.now(), "dispatched_at": None,
                                     "error_message": "The provider never received it; sending again."})
        return "resend" if moved else "skipped"
    with transaction.atomic():
        status = event.status if STATUS_RANK.get(event.status, 0) >= STATUS_RANK[S.SENT] else S.SENT
        if status == S.RECEIVED:
            status = S.SENT
        fields = {"sent_at": message.sent_at or timezone.now(), "provider_status": event.raw_status[:40],
                  "error_message": ""}
        if event.provider_message_id and not message.provider_message_id:
            fields["provider_message_id"] = event.provider_message_id
        if not move(status, fields, reported=True):
            return "skipped"
        event_record(message, status, source=MessageEvent.Source.LOOKUP, raw=event.raw)
    return "found"


def message_confirm_sent(*, message_id: int) -> bool:
    """Staff checked with the provider that an unconfirmed message went out: record it as sent."""
    with transaction.atomic():
        return message_move(message_id, S.SENT, from_statuses=(S.UNCONFIRMED,),
                     fields={"sent_at": timezone.now(), "error_message": "Confirmed as sent by staff."})


def message_resend(*, message_id: int) -> bool:
    """Staff decided an unconfirmed message was not received: allow it to be sent again. A message of a
    campaign whose dispatch was canceled is not resent."""
    campaign_id = Message.objects.filter(pk=message_id).values_list("campaign_id", flat=True).first()
    if campaign_id and Dispatch.objects.filter(campaign_id=campaign_id, state=Dispatch.State.CANCELED).exists():
        return False
    with transaction.atomic():
        return message_move(
            message_id,
            S.ERRORED,
            from_statuses=(S.UNCONFIRMED,),
            fields={"next_attempt_at": timezone.now(), "dispatched_at": None, "error_message": "Resent by staff."},
        )
