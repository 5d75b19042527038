"""What messaging needs from the app that owns the audience, declared in one place.

Messaging keeps phone numbers, never contacts. Three things about contacts still matter to it, and the app
that owns them registers a function for each when it starts (``campaigns.apps``):

- ``contact_fields(contact_ids) -> {contact_id: {name: value}}``: the template variables of each contact, read
  when a campaign message is personalized at send time (messaging adds ``phone`` itself: the message's number);
- ``contact_timezones(contact_ids) -> {contact_id: zone name}``: the zone each contact is known to be in, read
  at send time for messages whose campaign has a sending window (contacts without one may be left out);
- ``consent_changed(phones, opted_out)``: a number's consent changed in the ledger; the owner mirrors it on its
  contacts, in the same transaction.

With nothing registered, messages get no contact fields, windows are read in the zone of each number (or the
campaign's), and consent is kept in the ledger alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

ContactFields = Callable[[Iterable[int]], dict[int, dict]]
ConsentChanged = Callable[[list[str], bool], None]
ContactTimezones = Callable[[Iterable[int]], dict[int, str]]

_contact_fields: ContactFields | None = None
_consent_changed: ConsentChanged | None = None
_contact_timezones: ContactTimezones | None = None


def register(
    *, contact_fields: ContactFields | None = None, consent_changed: ConsentChanged | None = None,
    contact_timezones: ContactTimezones | None = None,
) -> None:
    global _contact_fields, _consent_changed, _contact_timezones
    if contact_fields is not None:
        _contact_fields = contact_fields
    if consent_changed is not None:
        _consent_changed = consent_changed
    if contact_timezones is not None:
        _contact_timezones = contact_timezones


def contact_fields(contact_ids: Iterable[int]) -> dict[int, dict]:
    """Template variables by contact id (contacts that no longer exist are absent)."""
    ids = {cid for cid in contact_ids if cid}
    if not ids or _contact_fields is None:
        return {}
    return _contact_fields(ids)


def contact_timezones(contact_ids: Iterable[int]) -> dict[int, str]:
    """The zone of each contact that has one, by contact id (others are absent)."""
    ids = {cid for cid in contact_ids if cid}
    if not ids or _contact_timezones is None:
        return {}
    return _contact_timezones(ids)


def consent_changed(phones: list[str], opted_out: bool) -> None:
    if phones and _consent_changed is not None:
        _consent_changed(phones, opted_out)
