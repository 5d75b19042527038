"""The messaging admin: senders, messages and their events, the consent ledger."""

from . import consent, messages, senders  # noqa: F401  (each registers its model admins)
