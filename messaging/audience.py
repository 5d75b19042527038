"""What messaging needs from the app that owns the audience, declared in one place.

Messaging keeps phone numbers, never contacts. Three things about contacts still matter to it, and the app
that owns them registers a function for each when it starts (``campaigns.apps``):

- ``contact_fields(contact_ids) -> {contact_id: {name: value}}``: the template variables of each contact, read
  when a campaign message is personalized at send time (messaging adds ``phone`` itself: the message's number);
- ``contact_timezones(contact_ids) -> {contact_id: zone name}``: the zone each contact is known to be in, read
  at send time for messages whose campaign has a sending window (contacts without one may be left out);
- ``consent_changed(phones, opted_out)``: a number's consent changed in the ledger; the owner mirrors it on its
  contacts, in the same transaction;
- ``number_flagged(phones, cause, detail)``: a provider reported these numbers cannot take messages (the cause
  ``invalid_number`` or ``not_sms_capable``); the owner flags their contacts so the next launch skips them;
- ``campaign_paused(campaign_id, reason)``: messaging found a reason to stop a campaign (carriers filtering it);
  the owner pauses the campaign (and its dispatch, through ``services.dispatch_pause``) and shows the reason.

With nothing registered, messages get no contact fields, windows are read in the zone of each number (or the
campaign's), consent is kept in the ledger alone, flags are dropped, and a campaign to pause has only its
dispatch paused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

ContactFields = Callable[[Iterable[int]], dict[int, dict]]
ConsentChanged = Callable[[list[str], bool], None]
ContactTimezones = Callable[[Iterable[int]], dict[int, str]]
NumberFlagged = Callable[[list[str], str, str], None]
CampaignPaused = Callable[[int, str], None]

_contact_fields: ContactFields | None = None
_consent_changed: ConsentChanged | None = None
_contact_timezones: ContactTimezones | None = None
_number_flagged: NumberFlagged | None = None
_campaign_paused: CampaignPaused | None = None


def register(
    *, contact_fields: ContactFields | None = None, consent_changed: ConsentChanged | None = None,
    contact_timezones: ContactTimezones | None = None, number_flagged: NumberFlagged | None = None,
    campaign_paused: CampaignPaused | None = None,
) -> None:
    global _contact_fields, _consent_changed, _contact_timezones, _number_flagged, _campaign_paused
    if contact_fields is not None:
        _contact_fields = contact_fields
    if consent_changed is not None:
        _consent_changed = consent_changed
    if contact_timezones is not None:
        _contact_timezones = contact_timezones
    if number_flagged is not None:
        _number_flagged = number_flagged
    if campaign_paused is not None:
        _campaign_paused = campaign_paused


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


def number_flagged(phones: list[str], cause: str, detail: str) -> None:
    if phones and _number_flagged is not None:
        _number_flagged(phones, cause, detail)


def campaign_paused(campaign_id: int, reason: str) -> None:
    if _campaign_paused is not None:
        _campaign_paused(campaign_id, reason)
        return
    from .services import dispatch_pause

    dispatch_pause(campaign_id=campaign_id)
