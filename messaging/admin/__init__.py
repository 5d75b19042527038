"""The messaging admin: senders, messages and their events, the consent ledger, the audit log."""

from . import audit, consent, messages, senders  # noqa: F401  (each registers its model admins)
