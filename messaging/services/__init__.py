"""Writes for messaging, one module per concern; what other modules use is exported here.

Every status change goes through ``status.message_move`` / ``messages_move``: a conditional UPDATE that only
lets the status move forward, with the campaign counters adjusted in the same transaction.

- ``queueing``: new messages (a campaign's recipients in one statement, a resend round, a single message)
- ``dispatch``: the send path's view of a campaign (open, pause, resume, cancel) and enqueuing due sends
- ``claiming``, ``batch``, ``outbound``, ``outcomes``, ``circuit``: the send path
- ``events``, ``parts``, ``inbound``, ``consent``: what providers and recipients tell us (keywords included)
- ``replies``: staff answering replies, and marking them read
- ``callbacks``: what a callback proves (nonces accepted once) and whether its events fit our columns
- ``senders``: creating senders, with a random callback password where the provider signs nothing
- ``reconcile``, ``sweep``: settling unknown outcomes, periodic repairs
- ``status``, ``counters``, ``history``: the single writers of status, counters and events
- ``audit``: who did what, for the audit log and each object's History
"""

from .audit import audit_record, audit_record_many, audit_record_on_model
from .batch import message_send, messages_send, sender_messages_send
from .callbacks import callback_nonce_claim, callback_nonces_prune, event_problem
from .claiming import message_claim, message_release, messages_claim, send_lease_seconds
from .consent import consent_change, consent_import, consent_record, consent_undo
from .counters import counters_add
from .dispatch import (
    DISPATCH_HORIZON_SECONDS,
    dispatch_cancel,
    dispatch_enqueue,
    dispatch_open,
    dispatch_pause,
    dispatch_resume,
    dispatches_cancel_stragglers,
    messages_enqueue_due,
)
from .events import events_apply, events_apply_pending
from .history import event_record
from .inbound import inbound_record
from .outbound import callback_url, outbound_for
from .outcomes import send_failed, send_recorded
from .queueing import QueueResult, message_create, messages_queue, messages_requeue_failed
from .reconcile import message_confirm_sent, message_reconcile, message_resend
from .replies import AnswerRefused, conversation_mark_read, replies_mark, reply_answer
from .senders import callback_password_needed, callback_password_new, sender_create, sender_ensure
from .status import message_move, messages_move
from .sweep import messages_sweep

__all__ = [
    "AnswerRefused",
    "conversation_mark_read",
    "replies_mark",
    "reply_answer",
    "DISPATCH_HORIZON_SECONDS",
    "QueueResult",
    "audit_record",
    "audit_record_many",
    "audit_record_on_model",
    "callback_nonce_claim",
    "callback_nonces_prune",
    "callback_password_needed",
    "callback_password_new",
    "callback_url",
    "consent_change",
    "consent_import",
    "consent_record",
    "consent_undo",
    "counters_add",
    "dispatch_cancel",
    "dispatch_enqueue",
    "dispatch_open",
    "dispatch_pause",
    "dispatch_resume",
    "dispatches_cancel_stragglers",
    "event_problem",
    "event_record",
    "events_apply",
    "events_apply_pending",
    "inbound_record",
    "message_claim",
    "message_confirm_sent",
    "message_create",
    "message_move",
    "message_reconcile",
    "message_release",
    "message_resend",
    "message_send",
    "messages_claim",
    "messages_enqueue_due",
    "messages_move",
    "messages_queue",
    "messages_requeue_failed",
    "messages_send",
    "messages_sweep",
    "outbound_for",
    "send_failed",
    "send_lease_seconds",
    "send_recorded",
    "sender_create",
    "sender_ensure",
    "sender_messages_send",
]
