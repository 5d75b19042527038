"""Writes for campaigns: checks, launch, scheduling, dispatch, controls, test sends, contacts and lists.

Messages belong to messaging: a launch opens the campaign's dispatch and queues its recipients through
messaging services, and pause, resume and cancel go through them too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import selectors as messaging_selectors
from messaging import services as messaging
from messaging.personalize import message_context, render, template_errors
from messaging.phones import phone_e164
from messaging.windows import Window

from . import selectors
from .models import Campaign, Contact, ContactList, ListMembership, Tag

logger = logging.getLogger("campaigns")
C = Campaign.Status
SAMPLE_CONTACT = Contact(first_name="Alexandra", last_name="Montgomery-Smith", custom_fields={})
SAMPLE_PHONE = "+12125550123"


class CampaignError(Exception):
    """A campaign action that is not allowed now, with the reason in plain words."""


class Problem(str):
    """A reason a campaign cannot be sent, in plain words, with the form field it is about."""

    field: str = ""

    def __new__(cls, text: str, field: str = ""):
        problem = super().__new__(cls, text)
        problem.field = field
        return problem


@dataclass(frozen=True)
class LaunchResult:
    recipients: int
    suppressed: int


def campaign_senders(*, campaign: Campaign) -> list:
    """The senders a campaign's recipients are split across: its sender first, then its more senders."""
    senders = [campaign.sender]
    if campaign.pk:
        senders += [s for s in campaign.more_senders.order_by("id") if s.pk != campaign.sender_id]
    return senders


def campaign_window(*, campaign: Campaign) -> Window | None:
    """The campaign's sending window, in each recipient's local time (None: any hour). Recipients whose zone
    is unknown use the campaign's timezone, else the server's."""
    start, end = campaign.window_start, campaign.window_end
    if start is None or end is None or start == end:
        return None
    return Window(start=start, end=end, timezone=campaign.timezone or settings.TIME_ZONE)


def media_check_record(*, urls: list[str], senders: list, problems: list[str], warnings: list[str]) -> dict:
    """What a campaign keeps of a check of its media URLs with their servers (``Campaign.media_check``)."""
    return {"urls": sorted(map(str, urls)), "senders": sorted({s.pk for s in senders}), "problems": list(problems),
            "warnings": list(warnings)}


def campaign_media_check(*, campaign: Campaign, senders: list) -> tuple[list[str], list[str]]:
    """Ask each media URL's server its size and type for these senders' providers (network calls: never
    inside a transaction) and keep the result on a saved campaign, where pages read it. Returns (problems,
    warnings)."""
    urls = list(campaign.media_urls or [])
    problems, warnings = messaging_selectors.senders_media_problems(senders=senders, urls=urls)
    if campaign.pk:
        campaign.media_check = media_check_record(urls=urls, senders=senders, problems=problems, warnings=warnings)
        campaign.media_checked_at = timezone.now()
        Campaign.objects.filter(pk=campaign.pk).update(media_check=campaign.media_check,
                                                       media_checked_at=campaign.media_checked_at)
    return problems, warnings


def campaign_media_last_check(*, campaign: Campaign, senders: list) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the last check of the campaign's media URLs with their servers, without asking
    them again: a page view never makes a network call. When the URLs or the senders changed since (or were
    never checked), a warning says they are checked at launch."""
    urls = list(campaign.media_urls or [])
    if not urls:
        return [], []
    last = campaign.media_check or {}
    if last.get("urls") != sorted(map(str, urls)) or last.get("senders") != sorted({s.pk for s in senders}):
        return [], ["The media URLs have not been checked with their servers since they were last changed; their "
                    "size and type are checked at launch."]
    return list(last.get("problems") or []), list(last.get("warnings") or [])


def campaign_checks(*, campaign: Campaign, senders: list | None = None, check_media: bool = False
                    ) -> tuple[list[Problem], list[str]]:
    """(problems, warnings): problems block sending; warnings (a media URL whose size could not be checked)
    are shown to staff and do not. Every sender the campaign splits its recipients across is checked (give
    ``senders`` for a campaign not saved yet). With ``check_media``, each media URL's size and type are asked
    of its server (network calls: never inside a transaction) and the result kept on the campaign (launch);
    without, the result of the last such check is used (pages)."""
    problems: list[Problem] = []
    warnings: list[str] = []
    if not campaign.sender_id:
        return [Problem("Choose a sender.", "sender")], warnings
    senders = senders if senders is not None else campaign_senders(campaign=campaign)
    fields = ["sender"] + ["more_senders"] * (len(senders) - 1)
    usable = []
    for sender, field in zip(senders, fields, strict=True):
        unusable = messaging_selectors.sender_problem(sender=sender)
        if unusable:  # e.g. its secrets cannot be decrypted: say so, check the rest
            problems.append(Problem(unusable, field))
            continue
        if not sender.is_active:
            problems.append(Problem(f"The sender {sender.name} is not active.", field))
        usable.append(sender)
    media = list(campaign.media_urls or [])
    if not campaign.body and not media:
        problems.append(Problem("The message has neither text nor media.", "body"))
    error = template_errors(campaign.body or "")
    if error:
        problems.append(Problem(f"The message template has an error: {error}", "body"))
    else:
        context = message_context(selectors.contact_template_context(SAMPLE_CONTACT), phone=SAMPLE_PHONE)
        try:
            sample = render(campaign.body or "", context)
        except ValueError as exc:
            problems.append(Problem(f"The message template fails for a sample contact: {exc}", "body"))
            sample = ""
        for sender in usable:
            prefix = f"{sender.name}: " if len(senders) > 1 else ""
            for text in messaging_selectors.sender_content_problems(sender=sender, body=sample, media_urls=media):
                if prefix + text not in problems:
                    problems.append(Problem(prefix + text, "media_urls" if "media" in text else "body"))
    if media:
        check = campaign_media_check if check_media else campaign_media_last_check
        found, warned = check(campaign=campaign, senders=senders)  # a sender that cannot be used is skipped
        problems.extend(Problem(text, "media_urls") for text in found)
        warnings.extend(warned)
    if campaign.pk and not campaign.lists.exists():
        problems.append(Problem("Choose at least one audience list.", "lists"))
    return problems, warnings


def campaign_problems(*, campaign: Campaign, check_media: bool = False) -> list[Problem]:
    """Why this campaign cannot be sent, in plain words (empty when it can)."""
    problems, _warnings = campaign_checks(campaign=campaign, check_media=check_media)
    return problems


def campaign_launch(*, campaign: Campaign, user=None, check_media: bool = True) -> LaunchResult:
    """Start sending a draft or scheduled campaign now. Safe to call twice: only one call launches.

    Media sizes are checked with their servers first (``check_media``), so call it outside a transaction
    or say the check was done (the result of the last one is then used)."""
    problems = campaign_problems(campaign=campaign, check_media=check_media)
    if problems:
        raise CampaignError(" ".join(problems))
    now = timezone.now()
    with transaction.atomic():
        claimed = Campaign.objects.filter(pk=campaign.pk, status__in=(C.DRAFT, C.SCHEDULED)).update(
            status=C.SENDING, launched_at=now, updated_at=now
        )
        if not claimed:
            raise CampaignError(f"This campaign is {Campaign.objects.get(pk=campaign.pk).status}; it cannot be launched.")
        sender_ids = [s.pk for s in campaign_senders(campaign=campaign)]
        messaging.dispatch_open(campaign_id=campaign.pk, name=campaign.name, template=campaign.body,
                                media_urls=campaign.media_urls, sender_ids=sender_ids,
                                backup_sender_id=campaign.backup_sender_id, window=campaign_window(campaign=campaign))
        queued = messaging.messages_queue(campaign_id=campaign.pk, recipients=selectors.campaign_audience(
            campaign=campaign), sender_ids=sender_ids, media_urls=campaign.media_urls)
        suppressed = selectors.campaign_opted_out_count(campaign=campaign) + queued.suppressed
        Campaign.objects.filter(pk=campaign.pk).update(recipient_count=queued.queued, suppressed_count=suppressed)
        campaign.status, campaign.launched_at = C.SENDING, now
        campaign.recipient_count, campaign.suppressed_count = queued.queued, suppressed
        messaging.audit_record(user=user, obj=campaign, action="Launched",
                               detail=f"{queued.queued} recipients, {suppressed} opted out and skipped")
        transaction.on_commit(lambda: _enqueue_dispatch(campaign.pk))
    logger.info("campaign %s launched: %s recipients, %s suppressed", campaign.pk, queued.queued, suppressed)
    return LaunchResult(recipients=queued.queued, suppressed=suppressed)


def _enqueue_dispatch(campaign_id: int) -> None:
    from .tasks import dispatch

    dispatch.delay(campaign_id)


def campaign_schedule(*, campaign: Campaign, at: datetime, user=None) -> None:
    if at is None or timezone.is_naive(at):
        raise CampaignError("Give the time with its timezone.")
    problems = campaign_problems(campaign=campaign)
    if problems:
        raise CampaignError(" ".join(problems))
    changed = Campaign.objects.filter(pk=campaign.pk, status__in=(C.DRAFT, C.SCHEDULED)).update(
        status=C.SCHEDULED, scheduled_at=at, updated_at=timezone.now()
    )
    if not changed:
        raise CampaignError("Only a draft or scheduled campaign can be scheduled.")
    campaign.status, campaign.scheduled_at = C.SCHEDULED, at
    messaging.audit_record(user=user, obj=campaign, action="Scheduled", detail=f"for {at.isoformat(timespec='minutes')}")


def campaign_unschedule(*, campaign: Campaign) -> None:
    """A scheduled campaign goes back to draft (its time is kept for reference only if still set)."""
    Campaign.objects.filter(pk=campaign.pk, status=C.SCHEDULED).update(status=C.DRAFT, updated_at=timezone.now())
    if campaign.status == C.SCHEDULED:
        campaign.status = C.DRAFT


def campaigns_launch_due() -> int:
    """Launch every scheduled campaign whose time has come. Several beats or workers may run this at once:
    each due campaign is claimed with SELECT ... FOR UPDATE SKIP LOCKED, and launching is itself a claim.
    Media sizes are asked of their servers before the claim, outside the transaction."""
    launched = 0
    refused: set[int] = set()
    while True:
        due = (
            Campaign.objects.filter(status=C.SCHEDULED, scheduled_at__lte=timezone.now())
            .exclude(pk__in=refused).select_related("sender").order_by("scheduled_at").first()
        )
        if due is None:
            return launched
        media_problems = campaign_problems(campaign=due, check_media=True) if due.media_urls else []
        with transaction.atomic():
            campaign = (
                Campaign.objects.select_for_update(skip_locked=True)
                .filter(pk=due.pk, status=C.SCHEDULED, scheduled_at__lte=timezone.now())
                .first()
            )
            if campaign is None:
                refused.add(due.pk)  # another beat has it, or it changed meanwhile
                continue
            try:
                if media_problems:
                    raise CampaignError(" ".join(media_problems))
                campaign_launch(campaign=campaign, check_media=False)
                launched += 1
            except CampaignError as exc:
                logger.warning("scheduled campaign %s could not launch: %s", campaign.pk, exc)
                refused.add(campaign.pk)
                Campaign.objects.filter(pk=campaign.pk, status=C.SCHEDULED).update(
                    status=C.DRAFT, updated_at=timezone.now()
                )


def campaign_dispatch(*, campaign_id: int) -> dict:
    """Keep a sending campaign's messages flowing (see ``messaging.services.dispatch_enqueue``), and complete
    it once nothing is left to send or to wait for."""
    if not Campaign.objects.filter(pk=campaign_id, status=C.SENDING).exists():
        return {"enqueued": 0}
    enqueued = messaging.dispatch_enqueue(campaign_id=campaign_id)
    if not enqueued:
        campaign_complete_if_done(campaign_id=campaign_id)
    return {"enqueued": enqueued}


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """Complete a sending campaign once messaging says it is settled (``messaging.selectors.campaign_settled``:
    ``sent`` is not final, the delivery receipt is still to come)."""
    if not messaging_selectors.campaign_settled(campaign_id=campaign_id):
        return False
    now = timezone.now()
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=C.SENDING).update(
            status=C.COMPLETED, completed_at=now, updated_at=now
        )
    )


def campaigns_dispatch_all() -> dict:
    launched = campaigns_launch_due()
    enqueued = 0
    for campaign_id in Campaign.objects.filter(status=C.SENDING).values_list("id", flat=True):
        enqueued += campaign_dispatch(campaign_id=campaign_id)["enqueued"]
    return {"launched": launched, "enqueued": enqueued, "canceled": messaging.dispatches_cancel_stragglers()}


# ---- controls ----------------------------------------------------------------------------------


def campaign_pause(*, campaign: Campaign, user=None) -> None:
    """No new sends start; sends already under way finish."""
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status=C.SENDING).update(
            status=C.PAUSED, updated_at=timezone.now())
        if not changed:
            raise CampaignError("Only a sending campaign can be paused.")
        messaging.dispatch_pause(campaign_id=campaign.pk)
        messaging.audit_record(user=user, obj=campaign, action="Paused")
    campaign.status = C.PAUSED


def campaign_resume(*, campaign: Campaign, user=None) -> None:
    """Continue with the messages still waiting; messages already sent are never sent again."""
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status=C.PAUSED).update(
            status=C.SENDING, updated_at=timezone.now()
        )
        if not changed:
            raise CampaignError("Only a paused campaign can be resumed.")
        Campaign.objects.filter(pk=campaign.pk).update(paused_reason="")
        messaging.dispatch_resume(campaign_id=campaign.pk)
        messaging.audit_record(user=user, obj=campaign, action="Resumed")
        transaction.on_commit(lambda: _enqueue_dispatch(campaign.pk))
    campaign.status = C.SENDING
    campaign.paused_reason = ""


def campaign_pause_for(campaign_id: int, reason: str) -> bool:
    """Pause a sending campaign on the product's own finding (registered with messaging: carriers filtering
    it), with the reason shown on its page until it is resumed. Runs in messaging's transaction."""
    changed = Campaign.objects.filter(pk=campaign_id, status=C.SENDING).update(
        status=C.PAUSED, paused_reason=reason[:300], updated_at=timezone.now())
    if changed:
        messaging.dispatch_pause(campaign_id=campaign_id)
        logger.warning("campaign %s paused: %s", campaign_id, reason)
    return bool(changed)


def contacts_number_flag(phones: list[str], cause: str, detail: str) -> int:
    """A provider reported these numbers cannot take messages: flag their contacts (registered with messaging),
    unless already flagged. Returns how many were flagged."""
    now = timezone.now()
    phones = [p for p in phones if p.startswith("+")]
    return Contact.objects.filter(phone__in=phones, number_problem="").update(
        number_problem=cause, number_problem_detail=detail[:200], number_problem_at=now, updated_at=now)


def contacts_number_clear(*, contacts, user=None) -> int:
    """Staff clear the flag of these contacts: the next launch includes them again."""
    ids = [c.pk for c in contacts if c.number_problem]
    if not ids:
        return 0
    with transaction.atomic():
        changed = Contact.objects.filter(pk__in=ids).exclude(number_problem="").update(
            number_problem="", number_problem_detail="", number_problem_at=None, updated_at=timezone.now())
        messaging.audit_record_many(user=user, objects=Contact.objects.filter(pk__in=ids),
                                    action="Cleared the number flag")
    return changed


def campaign_cancel(*, campaign: Campaign, user=None) -> int:
    """Stop the campaign for good: every message not yet sent becomes ``canceled``."""
    with transaction.atomic():
        changed = Campaign.objects.filter(
            pk=campaign.pk, status__in=(C.DRAFT, C.SCHEDULED, C.SENDING, C.PAUSED)
        ).update(status=C.CANCELED, updated_at=timezone.now())
        if not changed:
            raise CampaignError("This campaign has already finished.")
        canceled = messaging.dispatch_cancel(campaign_id=campaign.pk)
        messaging.audit_record(user=user, obj=campaign, action="Canceled", detail=f"{canceled} waiting messages canceled")
    campaign.status = C.CANCELED
    return canceled


def campaign_resend_failed(*, campaign: Campaign, user=None) -> int:
    """New messages, in a new round, for the recipients whose latest message failed or was undelivered.
    Nobody who got (or may have got) a message receives another."""
    if campaign.status not in (C.COMPLETED, C.SENDING, C.PAUSED):
        raise CampaignError("Resend works on a campaign that has been launched.")
    with transaction.atomic():
        created = messaging.messages_requeue_failed(campaign_id=campaign.pk)
        if not created:
            return 0
        messaging.audit_record(user=user, obj=campaign, action="Resent to failed", detail=f"{created} new messages")
        now = timezone.now()
        Campaign.objects.filter(pk=campaign.pk, status=C.COMPLETED).update(
            status=C.SENDING, completed_at=None, updated_at=now
        )
        transaction.on_commit(lambda: _enqueue_dispatch(campaign.pk))
    campaign.refresh_from_db()
    return created


def campaign_test_send(*, campaign: Campaign, phone: str, user=None):
    """Send the campaign's message once to one number, outside the campaign's counts."""
    try:
        e164 = phone_e164(phone)
    except ValueError as exc:
        raise CampaignError(str(exc)) from None
    contact = Contact.objects.filter(phone=e164).first() or Contact(
        phone=e164, first_name=getattr(user, "first_name", "") or "", last_name=getattr(user, "last_name", "") or ""
    )
    try:
        body = render(campaign.body or "", message_context(selectors.contact_template_context(contact), phone=e164))
        with transaction.atomic():
            message = messaging.message_create(sender=campaign.sender, to=e164, body=body,
                                               media_urls=list(campaign.media_urls or []), contact_id=contact.pk)
            messaging.audit_record(user=user, obj=campaign, action="Test message sent", detail=f"to {e164}")
        return message
    except ValueError as exc:
        raise CampaignError(str(exc)) from None


# ---- contacts and lists (the small set the skeleton needs; imports live in campaigns.imports) ----


def contact_list_add(*, contact_list: ContactList, contact_ids: list[int]) -> int:
    existing = set(
        ListMembership.objects.filter(contact_list=contact_list, contact_id__in=contact_ids).values_list(
            "contact_id", flat=True
        )
    )
    new = [ListMembership(contact_list=contact_list, contact_id=cid) for cid in contact_ids if cid not in existing]
    ListMembership.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    return len(new)


def contact_list_remove(*, contact_list: ContactList, contact_ids: list[int]) -> int:
    deleted, _ = ListMembership.objects.filter(contact_list=contact_list, contact_id__in=contact_ids).delete()
    return deleted


def contact_tag_add(*, tag: Tag, contact_ids: list[int]) -> int:
    through = Contact.tags.through
    existing = set(through.objects.filter(tag=tag, contact_id__in=contact_ids).values_list("contact_id", flat=True))
    new = [through(tag_id=tag.pk, contact_id=cid) for cid in contact_ids if cid not in existing]
    through.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    return len(new)


def contact_tag_remove(*, tag: Tag, contact_ids: list[int]) -> int:
    deleted, _ = Contact.tags.through.objects.filter(tag=tag, contact_id__in=contact_ids).delete()
    return deleted


def contacts_consent_set(*, contact_ids: list[int], opted_out: bool, user, detail: str = "") -> int:
    """Staff opt-out (or opt-in) of contacts: one consent-ledger entry each, by the staff member. Only
    contacts whose state changes get an entry. Returns how many changed."""
    from messaging.models import ConsentEvent

    action = ConsentEvent.Action.OPT_OUT if opted_out else ConsentEvent.Action.OPT_IN
    changed = 0
    phones = Contact.objects.filter(pk__in=contact_ids).exclude(opted_out=opted_out).values_list("phone", flat=True)
    for phone in phones:
        messaging.consent_record(phone=str(phone), action=action, method=ConsentEvent.Method.STAFF,
                                 detail=detail or "set by staff in the contacts admin", user=user)
        changed += 1
    return changed


def contacts_consent_mirror(phones: list[str], opted_out: bool) -> None:
    """The consent ledger changed these numbers: their contacts show it (registered with messaging; runs in the
    ledger's transaction)."""
    now = timezone.now()
    phones = [p for p in phones if p.startswith("+")]  # short codes and sender IDs are no contact's number
    for start in range(0, len(phones), 500):
        Contact.objects.filter(phone__in=phones[start:start + 500]).exclude(opted_out=opted_out).update(
            opted_out=opted_out, updated_at=now
        )
