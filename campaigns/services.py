"""Writes for campaigns: launch (fan-out), scheduling, dispatch, controls."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from messaging import pacing
from messaging.models import PENDING_STATUSES, Message, Sender, Suppression
from messaging.personalize import contact_context, render, template_errors
from messaging.providers import provider_for
from messaging.providers.base import ConfigurationError
from messaging.selectors import campaign_counts
from messaging.services import counters_add, messages_move

from .models import Campaign, Contact, ContactList, ListMembership, Tag

logger = logging.getLogger("campaigns")
S = Message.Status
C = Campaign.Status

DISPATCH_HORIZON_SECONDS = 30  # keep about this much sending enqueued per campaign


class CampaignError(Exception):
    """A campaign action that is not allowed now, with the reason in plain words."""


@dataclass(frozen=True)
class LaunchResult:
    recipients: int
    suppressed: int


def campaign_problems(*, campaign: Campaign, check_media: bool = False) -> list[str]:
    """Why this campaign cannot be sent, in plain words (empty when it can). With ``check_media``, each media
    URL's size is also asked of its server (network calls: never inside a transaction)."""
    problems, _warnings = campaign_checks(campaign=campaign, check_media=check_media)
    return problems


def campaign_checks(*, campaign: Campaign, check_media: bool = False) -> tuple[list[str], list[str]]:
    """(problems, warnings): problems block sending; warnings (a media URL whose size could not be checked)
    are shown to staff and do not. Every sender the campaign splits its recipients across is checked."""
    problems: list[str] = []
    warnings: list[str] = []
    if not campaign.sender_id:
        problems.append("Choose a sender.")
        return problems, warnings
    senders = campaign_senders(campaign=campaign)
    for sender in senders:
        if not sender.is_active:
            problems.append(f"The sender {sender.name} is not active.")
    if not campaign.body and not campaign.media_urls:
        problems.append("The message has neither text nor media.")
    error = template_errors(campaign.body or "")
    if error:
        problems.append(f"The message template has an error: {error}")
    sample = Contact(first_name="Alexandra", last_name="Montgomery-Smith", custom_fields={})
    rendered = "" if error else render(campaign.body or "", contact_context(sample))
    media_checked: set[str] = set()
    for sender in senders:
        try:
            provider = provider_for(sender)
        except ConfigurationError as exc:  # e.g. its secrets cannot be decrypted: say so, check the rest
            problems.append(str(exc))
            continue
        prefix = f"{sender.name}: " if len(senders) > 1 else ""
        if not error:
            problems.extend(prefix + p for p in provider.check_limits(rendered, campaign.media_urls or []))
        if check_media and campaign.media_urls and provider.code not in media_checked:
            media_checked.add(provider.code)  # one HEAD per URL and provider: the limits are the provider's
            media_problems, media_warnings = provider.check_media(list(campaign.media_urls))
            problems.extend(prefix + p for p in media_problems)
            warnings.extend(w for w in media_warnings if w not in warnings)
    if campaign.pk and not campaign.lists.exists():
        problems.append("Choose at least one audience list.")
    return problems, warnings


def campaign_senders(*, campaign: Campaign) -> list[Sender]:
    """The senders a campaign's recipients are split across: its sender first, then its more senders."""
    senders = [campaign.sender]
    if campaign.pk:
        senders += [s for s in campaign.more_senders.order_by("id") if s.pk != campaign.sender_id]
    return senders


def _fan_out(*, campaign: Campaign, round_: int = 0) -> int:
    """One queued message per phone number across the campaign's lists, in one INSERT ... SELECT.

    Opted-out contacts and suppressed numbers are skipped. Bodies are rendered at send time.
    """
    message_table = Message._meta.db_table
    contact_table = Contact._meta.db_table
    membership_table = ListMembership._meta.db_table
    lists_table = Campaign.lists.through._meta.db_table
    suppression_table = Suppression._meta.db_table
    now = timezone.now()
    # Split across the campaign's senders by contact id: one sender per recipient, evenly, in the same
    # statement. (Integers come from our own rows, never from input.)
    sender_ids = [int(s.pk) for s in campaign_senders(campaign=campaign)]
    if len(sender_ids) == 1:
        sender_expr = str(sender_ids[0])
    else:
        cases = " ".join(f"WHEN {i} THEN {pk}" for i, pk in enumerate(sender_ids))
        sender_expr = f"CASE MIN(c.id) %% {len(sender_ids)} {cases} END"  # %% is a literal % beside parameters
    sql = f"""
        INSERT INTO {message_table} (sender_id, campaign_id, contact_id, round, "to", body, media_urls,
            direction, status, provider_message_id, provider_status, error_code, error_message, attempts,
            created_at, updated_at)
        SELECT {sender_expr}, %s, MIN(c.id), %s, c.phone, '', %s, 'outbound', 'queued', '', '', '', '', 0, %s, %s
        FROM {contact_table} c
        JOIN {membership_table} m ON m.contact_id = c.id
        WHERE m.contact_list_id IN (SELECT contactlist_id FROM {lists_table} WHERE campaign_id = %s)
          AND c.opted_out = FALSE
          AND NOT EXISTS (SELECT 1 FROM {suppression_table} s WHERE s.phone = c.phone AND s.opted_out = TRUE)
        GROUP BY c.phone
        ON CONFLICT DO NOTHING
    """
    with connection.cursor() as cursor:
        stamp = connection.ops.adapt_datetimefield_value(now)  # stored exactly as the ORM stores it
        cursor.execute(sql, [campaign.pk, round_, "[]", stamp, stamp, campaign.pk])
        return max(cursor.rowcount, 0)


def _suppressed(*, campaign: Campaign) -> int:
    contact_table = Contact._meta.db_table
    membership_table = ListMembership._meta.db_table
    lists_table = Campaign.lists.through._meta.db_table
    suppression_table = Suppression._meta.db_table
    sql = f"""
        SELECT COUNT(DISTINCT c.phone) FROM {contact_table} c
        JOIN {membership_table} m ON m.contact_id = c.id
        WHERE m.contact_list_id IN (SELECT contactlist_id FROM {lists_table} WHERE campaign_id = %s)
          AND (c.opted_out = TRUE
               OR EXISTS (SELECT 1 FROM {suppression_table} s WHERE s.phone = c.phone AND s.opted_out = TRUE))
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk])
        return cursor.fetchone()[0]


def campaign_launch(*, campaign: Campaign, user=None, check_media: bool = True) -> LaunchResult:
    """Start sending a draft or scheduled campaign now. Safe to call twice: only one call launches.

    Media sizes are checked with their servers first (``check_media``), so call it outside a transaction
    or say the check was done."""
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
        recipients = _fan_out(campaign=campaign)
        suppressed = _suppressed(campaign=campaign)
        counters_add(campaign_id=campaign.pk, deltas={S.QUEUED: recipients})
        Campaign.objects.filter(pk=campaign.pk).update(recipient_count=recipients, suppressed_count=suppressed)
        campaign.status, campaign.launched_at = C.SENDING, now
        campaign.recipient_count, campaign.suppressed_count = recipients, suppressed
        transaction.on_commit(lambda: _enqueue_dispatch(campaign.pk))
    logger.info("campaign %s launched: %s recipients, %s suppressed", campaign.pk, recipients, suppressed)
    return LaunchResult(recipients=recipients, suppressed=suppressed)


def _enqueue_dispatch(campaign_id: int) -> None:
    from .tasks import dispatch

    dispatch.delay(campaign_id)


def campaign_schedule(*, campaign: Campaign, at: datetime) -> None:
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


def _batch_size(sender: Sender, mps: float | None = None) -> int:
    """About half a send lease of sending per task (so every message's call starts well inside its lease),
    at least one message, at most SEND_BATCH_SIZE."""
    from messaging.services import send_lease_seconds

    mps = sender.mps if mps is None else mps
    return max(1, min(settings.SEND_BATCH_SIZE, int(mps * max(send_lease_seconds(), 1.0) / 2)))


def campaign_dispatch(*, campaign_id: int) -> dict:
    """Enqueue send tasks for about DISPATCH_HORIZON_SECONDS of this campaign's sending, per sender (each at
    its own pace), including messages whose task was lost (enqueued long ago, never claimed) and retries that
    are due. Completes the campaign when no message is pending."""
    campaign = Campaign.objects.select_related("sender", "backup_sender").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != C.SENDING:
        return {"enqueued": 0}
    senders = campaign_senders(campaign=campaign)
    if campaign.backup_sender_id and all(s.pk != campaign.backup_sender_id for s in senders):
        senders.append(campaign.backup_sender)  # messages moved there by a failover
    waiting = Message.objects.filter(campaign_id=campaign_id, status__in=(S.QUEUED, S.ERRORED))
    enqueued = sum(_dispatch_for_sender(campaign_id=campaign_id, sender=sender) for sender in senders)
    if not enqueued and not waiting.exists():
        campaign_complete_if_done(campaign_id=campaign_id)
    return {"enqueued": enqueued}


def _dispatch_for_sender(*, campaign_id: int, sender: Sender) -> int:
    from messaging.services import send_lease_seconds
    from messaging.tasks import send_batch

    now = timezone.now()
    stale = now - timedelta(seconds=settings.DISPATCH_STALE_SECONDS)
    # Keep at most one send lease of work enqueued: every enqueued message can start inside its lease.
    horizon = min(DISPATCH_HORIZON_SECONDS, max(send_lease_seconds(), 1.0))
    mps = pacing.effective_mps(sender.pk, sender.mps)  # slower while the provider pushes back
    size = _batch_size(sender, mps)
    window = max(size, int(mps * horizon))
    mine = Message.objects.filter(campaign_id=campaign_id, sender_id=sender.pk)
    waiting = mine.filter(status__in=(S.QUEUED, S.ERRORED))
    # In flight: enqueued and not yet picked up, or claimed and being sent right now.
    in_flight = waiting.filter(dispatched_at__gte=stale)[:window].count()
    if in_flight < window:
        in_flight += mine.filter(status=S.SENDING)[: window - in_flight].count()
    need = window - in_flight
    if need <= 0:
        return 0
    due = waiting.filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    ids = list(due.order_by("id").values_list("id", flat=True)[:need])
    if ids:
        Message.objects.filter(pk__in=ids).update(dispatched_at=now)
        for start in range(0, len(ids), size):
            send_batch.delay(ids[start : start + size])
    return len(ids)


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """Complete a sending campaign once every message is final.

    ``sent`` is not final: the delivery receipt is still to come. A ``sent`` message counts as settled only
    once FINAL_RECONCILE_AFTER_SECONDS have passed and the provider has been asked about it (some carriers
    never return receipts); it can still move forward after the campaign has completed."""
    counts = campaign_counts(campaign_id=campaign_id)
    if any(counts.get(status, 0) for status in PENDING_STATUSES):
        return False
    messages = Message.objects.filter(campaign_id=campaign_id)
    if messages.filter(status__in=PENDING_STATUSES).exists():
        return False  # counters and rows disagree: trust the rows
    receipt_due = timezone.now() - timedelta(seconds=settings.FINAL_RECONCILE_AFTER_SECONDS)
    if messages.filter(status=S.SENT).filter(Q(sent_at__gte=receipt_due) | Q(checked_at__isnull=True)).exists():
        return False  # delivery receipts are still expected
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
    return {"launched": launched, "enqueued": enqueued, "canceled": campaigns_cancel_stragglers()}


def campaigns_cancel_stragglers() -> int:
    """Cancel messages of recently canceled campaigns that came back to the queue after the cancel: a
    send under way at that moment that was given back unsent, retried after a transient error, or found
    unsent by the reconciler. None of them may go out."""
    since = timezone.now() - timedelta(days=1)
    canceled = 0
    for campaign_id in Campaign.objects.filter(status=C.CANCELED, updated_at__gte=since).values_list("id", flat=True):
        canceled += messages_move(
            Message.objects.filter(campaign_id=campaign_id), S.CANCELED, from_statuses=(S.QUEUED, S.ERRORED)
        )
    return canceled


# ---- controls ----------------------------------------------------------------------------------


def campaign_pause(*, campaign: Campaign) -> None:
    """No new sends start; sends already under way finish."""
    changed = Campaign.objects.filter(pk=campaign.pk, status=C.SENDING).update(status=C.PAUSED, updated_at=timezone.now())
    if not changed:
        raise CampaignError("Only a sending campaign can be paused.")
    campaign.status = C.PAUSED


def campaign_resume(*, campaign: Campaign) -> None:
    """Continue with the messages still waiting; messages already sent are never sent again."""
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status=C.PAUSED).update(
            status=C.SENDING, updated_at=timezone.now()
        )
        if not changed:
            raise CampaignError("Only a paused campaign can be resumed.")
        # Tasks enqueued before the pause found nothing to claim; let dispatch enqueue the rest at once.
        Message.objects.filter(campaign_id=campaign.pk, status__in=(S.QUEUED, S.ERRORED)).update(dispatched_at=None)
        transaction.on_commit(lambda: _enqueue_dispatch(campaign.pk))
    campaign.status = C.SENDING


def campaign_cancel(*, campaign: Campaign) -> int:
    """Stop the campaign for good: every message not yet sent becomes ``canceled``."""
    with transaction.atomic():
        changed = Campaign.objects.filter(
            pk=campaign.pk, status__in=(C.DRAFT, C.SCHEDULED, C.SENDING, C.PAUSED)
        ).update(status=C.CANCELED, updated_at=timezone.now())
        if not changed:
            raise CampaignError("This campaign has already finished.")
        canceled = messages_move(
            Message.objects.filter(campaign_id=campaign.pk), S.CANCELED, from_statuses=(S.QUEUED, S.ERRORED)
        )
    campaign.status = C.CANCELED
    return canceled


def campaign_resend_failed(*, campaign: Campaign) -> int:
    """New messages, in a new round, for the recipients whose latest message failed or was undelivered.
    Nobody who got (or may have got) a message receives another."""
    if campaign.status not in (C.COMPLETED, C.SENDING, C.PAUSED):
        raise CampaignError("Resend works on a campaign that has been launched.")
    with transaction.atomic():
        last_round = Message.objects.filter(campaign_id=campaign.pk).order_by("-round").values_list("round", flat=True).first() or 0
        new_round = last_round + 1
        message_table = Message._meta.db_table
        suppression_table = Suppression._meta.db_table
        now = timezone.now()
        sql = f"""
            INSERT INTO {message_table} (sender_id, campaign_id, contact_id, round, "to", body, media_urls,
                direction, status, provider_message_id, provider_status, error_code, error_message, attempts,
                created_at, updated_at)
            SELECT MIN(f.sender_id), %s, MIN(f.contact_id), %s, f."to", '', %s, 'outbound', 'queued', '', '', '', '', 0, %s, %s
            FROM {message_table} f
            WHERE f.campaign_id = %s AND f.status IN ('failed', 'undelivered')
              AND NOT EXISTS (SELECT 1 FROM {message_table} o WHERE o.campaign_id = f.campaign_id
                              AND o."to" = f."to" AND o.status NOT IN ('failed', 'undelivered', 'canceled'))
              AND NOT EXISTS (SELECT 1 FROM {suppression_table} s WHERE s.phone = f."to" AND s.opted_out = TRUE)
            GROUP BY f."to"
            ON CONFLICT DO NOTHING
        """
        with connection.cursor() as cursor:
            stamp = connection.ops.adapt_datetimefield_value(now)
            cursor.execute(sql, [campaign.pk, new_round, "[]", stamp, stamp, campaign.pk])
            created = max(cursor.rowcount, 0)
        if not created:
            return 0
        counters_add(campaign_id=campaign.pk, deltas={S.QUEUED: created})
        Campaign.objects.filter(pk=campaign.pk, status=C.COMPLETED).update(
            status=C.SENDING, completed_at=None, updated_at=now
        )
        transaction.on_commit(lambda: _enqueue_dispatch(campaign.pk))
    campaign.refresh_from_db()
    return created


def campaign_test_send(*, campaign: Campaign, phone: str, user=None) -> Message:
    """Send the campaign's message once to one number, outside the campaign's counts."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise CampaignError(f"{phone!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise CampaignError(f"{phone!r} is not a valid phone number.")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    contact = Contact.objects.filter(phone=e164).first() or Contact(
        phone=e164, first_name=getattr(user, "first_name", "") or "", last_name=getattr(user, "last_name", "") or ""
    )
    body = render(campaign.body or "", contact_context(contact))
    try:
        problems = provider_for(campaign.sender).check_limits(body, campaign.media_urls or [])
    except ConfigurationError as exc:
        raise CampaignError(str(exc)) from None
    if problems:
        raise CampaignError(" ".join(problems))
    from messaging.services import message_create

    return message_create(sender=campaign.sender, to=e164, body=body, media_urls=list(campaign.media_urls or []),
                          contact=contact if contact.pk else None)


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
    from messaging.services import consent_record

    action = ConsentEvent.Action.OPT_OUT if opted_out else ConsentEvent.Action.OPT_IN
    changed = 0
    phones = Contact.objects.filter(pk__in=contact_ids).exclude(opted_out=opted_out).values_list("phone", flat=True)
    for phone in phones:
        consent_record(phone=str(phone), action=action, method=ConsentEvent.Method.STAFF,
                       detail=detail or "set by staff in the contacts admin", user=user)
        changed += 1
    return changed
