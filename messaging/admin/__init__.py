"""The messaging admin: senders, messages and their events, the inbox, the consent ledger, the audit log."""

from . import audit, consent, inbox, messages, senders  # noqa: F401  (each registers its model admins)
