"""Replies: each inbound message stored once (per provider id) under the number that wrote it, and the
STOP / START keywords applied to the consent ledger."""

from __future__ import annotations

import logging

from ..models import ConsentEvent, Message, Sender
from ..phones import phone_as_received, phone_e164
from ..providers.base import StatusEvent
from .consent import consent_record

logger = logging.getLogger("messaging")
S = Message.Status
OPT_OUT_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "opt-out", "revoke"}
OPT_IN_WORDS = {"start", "unstop", "subscribe", "yes"}


def inbound_record(*, sender: Sender, event: StatusEvent) -> Message:
    """Store a reply (once per provider id) under the number that wrote it, and apply STOP/START keywords."""
    raw = event.raw if isinstance(event.raw, dict) else {}
    counterpart = raw.get("From") or raw.get("from") or raw.get("number") or ""
    phone = phone_as_received(counterpart) if counterpart else ""
    fields = {"to": phone, "body": event.body, "status": S.RECEIVED, "provider_status": event.raw_status[:40]}
    if event.provider_message_id:
        message, created = Message.objects.get_or_create(
            sender=sender, direction=Message.Direction.INBOUND, provider_message_id=event.provider_message_id,
            defaults=fields,
        )
    else:
        message, created = Message.objects.create(sender=sender, direction=Message.Direction.INBOUND, **fields), True
    word = event.body.strip().lower()
    if created and phone and word in OPT_OUT_WORDS | OPT_IN_WORDS:
        action = ConsentEvent.Action.OPT_OUT if word in OPT_OUT_WORDS else ConsentEvent.Action.OPT_IN
        try:
            phone_e164(phone)
        except ValueError:
            # Not a valid phone number, so not one we send to: there is nothing to opt out or in.
            logger.warning("reply %s comes from a number that is not valid: no consent change", message.pk)
            return message
        consent_record(phone=phone, action=action, method=ConsentEvent.Method.KEYWORD,
                       detail=f"replied {event.body.strip()[:20]!r} to {sender.name}")
    return message
