"""Writes for messaging: sending, status changes, callbacks, consent, reconciliation.

Every status change goes through ``status.message_move``: a conditional UPDATE that only lets the status move
forward, with the campaign counters adjusted in the same transaction.
"""

from .consent import consent_import, consent_record, consent_undo
from .events import events_apply, events_apply_pending, inbound_record
from .reconcile import message_confirm_sent, message_reconcile, message_resend
from .sending import (
    _claim,
    _outbound,
    callback_url,
    message_create,
    message_send,
    messages_send,
    send_failed,
    send_lease_seconds,
    send_recorded,
)
from .status import counters_add, event_record, message_move, messages_move

__all__ = [
    "_claim",
    "_outbound",
    "callback_url",
    "consent_import",
    "consent_record",
    "consent_undo",
    "counters_add",
    "event_record",
    "events_apply",
    "events_apply_pending",
    "inbound_record",
    "message_confirm_sent",
    "message_create",
    "message_move",
    "message_reconcile",
    "message_resend",
    "message_send",
    "messages_move",
    "messages_send",
    "send_failed",
    "send_lease_seconds",
    "send_recorded",
]
