"""The consent ledger: append-only history by phone number, with the current state kept in Suppression."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import audience
from ..models import ConsentEvent, Suppression
from ..phones import phone_e164
from .audit import audit_record


def _consent_state_set(*, phones: list[str], opted_out: bool) -> None:
    """The one place a number's current consent state is written: Suppression, and whoever keeps contacts is
    told (``messaging.audience``), in the same transaction."""
    now = timezone.now()
    Suppression.objects.bulk_create(
        [Suppression(phone=p, opted_out=opted_out, updated_at=now) for p in phones],
        update_conflicts=True,
        unique_fields=["phone"],
        update_fields=["opted_out", "updated_at"],
        batch_size=500,
    )
    audience.consent_changed(phones, opted_out)


def consent_record(
    *, phone: str, action: str, method: str, detail: str = "", user=None, undoes: ConsentEvent | None = None,
    message=None, as_received: bool = False,
) -> ConsentEvent:
    """Append to the consent ledger and update the number's current state (Suppression and contact).
    ``phone`` is normalized to E.164 (ValueError if it is not a phone number), unless ``as_received``: an
    address that wrote to us (``phones.phone_as_received``: a short code, an unknown range) is kept as it is,
    so that its STOP is honoured too. ``message``: the reply or report that caused the change."""
    phone = phone[:20] if as_received else phone_e164(phone)
    if not phone:
        raise ValueError("No phone number given.")
    with transaction.atomic():
        entry = ConsentEvent.objects.create(
            phone=phone, action=action, method=method, detail=detail[:200], created_by=user, undoes=undoes,
            message=message,
        )
        _consent_state_set(phones=[phone], opted_out=action == ConsentEvent.Action.OPT_OUT)
    return entry


def consent_change(*, phone: str, opt_out: bool, method: str, detail: str = "", message=None,
                   user=None) -> ConsentEvent | None:
    """Opt an address that wrote to us or was reported by a provider (kept as received, see
    ``consent_record``) out or back in, only if that changes its state: the ledger entry, or None when it was
    so already. The number's state row is locked meanwhile, so two reports or replies arriving at once make one
    change. Runs in the caller's transaction."""
    with transaction.atomic():
        Suppression.objects.get_or_create(phone=phone[:20], defaults={"opted_out": False})
        state = Suppression.objects.select_for_update().filter(phone=phone[:20]).values_list("opted_out", flat=True)
        if bool(state.first()) == opt_out:
            return None
        entry = consent_record(
            phone=phone, action=ConsentEvent.Action.OPT_OUT if opt_out else ConsentEvent.Action.OPT_IN,
            method=method, detail=detail, user=user, message=message, as_received=True,
        )
        if opt_out and message is not None:  # an opt-out the campaign of this reply or report caused
            from .tallies import campaign_tally

            campaign_tally(campaign_id=message.reply_campaign_id or message.campaign_id, sender_id=message.sender_id,
                           event="opt_out")
        return entry


def consent_import(
    *, phones: list[str], action: str = ConsentEvent.Action.OPT_OUT, method: str = ConsentEvent.Method.IMPORT,
    detail: str = "", user=None
) -> dict:
    """Record many E.164 numbers at once (a suppression list). Only numbers whose state changes get a ledger
    entry; returns ``{"changed": n, "unchanged": n}``."""
    opted_out = action == ConsentEvent.Action.OPT_OUT
    phones = list(dict.fromkeys(phones))
    with transaction.atomic():
        already = set()
        for start in range(0, len(phones), 500):
            already.update(
                Suppression.objects.filter(phone__in=phones[start:start + 500], opted_out=opted_out).values_list(
                    "phone", flat=True
                )
            )
        changed = [p for p in phones if p not in already]
        ConsentEvent.objects.bulk_create(
            [ConsentEvent(phone=p, action=action, method=method, detail=detail[:200], created_by=user)
             for p in changed],
            batch_size=500,
        )
        _consent_state_set(phones=changed, opted_out=opted_out)
    return {"changed": len(changed), "unchanged": len(phones) - len(changed)}


def consent_undo(*, event: ConsentEvent, user=None) -> ConsentEvent:
    """Undo a ledger entry with an entry of its own (the history is never edited). An entry is undone at
    most once; ValueError if it already was."""
    with transaction.atomic():
        # Lock the entry so two staff members undoing it at once do not both succeed.
        event = ConsentEvent.objects.select_for_update().get(pk=event.pk)
        earlier = ConsentEvent.objects.filter(undoes=event).first()
        if earlier is not None:
            raise ValueError(f"Entry #{event.pk} was already undone by entry #{earlier.pk}.")
        opposite = (
            ConsentEvent.Action.OPT_IN if event.action == ConsentEvent.Action.OPT_OUT else ConsentEvent.Action.OPT_OUT
        )
        entry = consent_record(
            phone=event.phone,
            action=opposite,
            method=ConsentEvent.Method.STAFF,
            detail=f"undo of entry #{event.pk}",
            user=user,
            undoes=event,
        )
        audit_record(user=user, obj=event, action="Undid consent entry",
                     detail=f"{event.get_action_display()} of {event.phone}, by entry #{entry.pk}")
        return entry
