"""Reads for the confirmation page shown before a campaign is launched, scheduled or resent: who gets it,
who is skipped, how many segments in which encoding, what it costs, how long it takes, who waits for their
sending window, and the exact message a sample recipient gets.

Every figure comes from set-based queries. Segments are exact: the template is rendered once per distinct
combination of the values it uses (not once per recipient), and the phone number, when used, is stood in for
by digits of the same length (digits are single GSM-7 septets, so the count is the same).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

import phonenumbers
from django.db.models import Count, F, Min, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Length, Mod, Substr
from django.utils import timezone

from messaging import selectors as messaging_selectors
from messaging.encoding import SegmentInfo, segment_info
from messaging.personalize import (
    STANDARD_VARIABLES,
    message_context,
    render,
    template_variables,
    variables_with_fallback,
)
from messaging.windows import Window, next_opening, recipient_timezone, window_open

from . import selectors, services
from .models import Campaign, Contact, ListMembership, Price

COLUMNS = {"first_name": "first_name", "last_name": "last_name", "email": "email"}
SAMPLES = 3


@dataclass
class EncodingLine:
    encoding: str
    recipients: int = 0
    segments: int = 0


@dataclass
class CostLine:
    sender: str
    provider: str
    country: str
    recipients: int
    units: int  # segments, or MMS messages
    unit: str  # "segment" or "MMS"
    price: Decimal | None
    currency: str = "USD"
    is_example: bool = False

    @property
    def amount(self) -> Decimal | None:
        return None if self.price is None else (self.price * self.units).quantize(Decimal("0.0001"))


@dataclass
class Sample:
    label: str
    phone: str
    body: str
    info: SegmentInfo
    missing: list[str]
    error: str = ""


@dataclass
class SenderShare:
    name: str
    provider: str
    recipients: int
    mps: float

    @property
    def seconds(self) -> float:
        return self.recipients / self.mps if self.mps > 0 else 0.0


@dataclass
class Preflight:
    action: str
    recipients: int = 0
    opted_out: int = 0
    flagged: int = 0  # numbers a provider reported invalid or unable to take SMS: skipped until cleared
    landline: int = 0
    duplicates: int = 0
    lists: list[tuple[str, int]] = field(default_factory=list)
    has_media: bool = False
    encodings: dict[str, EncodingLine] = field(default_factory=dict)
    segments: int = 0
    longest: SegmentInfo | None = None
    render_failures: dict[str, int] = field(default_factory=dict)
    empty_fields: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    costs: list[CostLine] = field(default_factory=list)
    shares: list[SenderShare] = field(default_factory=list)
    window: str = ""
    outside_window: int = 0
    first_opening: datetime | None = None
    scheduled_at: datetime | None = None
    fingerprint: str = ""

    @property
    def cost_total(self) -> Decimal | None:
        amounts = [line.amount for line in self.costs if line.recipients]
        return sum(amounts, Decimal("0.00")) if amounts and None not in amounts else None

    @property
    def currency(self) -> str:
        return self.costs[0].currency if self.costs else "USD"

    @property
    def cost_has_examples(self) -> bool:
        return any(line.is_example for line in self.costs if line.recipients)

    @property
    def prices_missing(self) -> list[CostLine]:
        return [line for line in self.costs if line.recipients and line.price is None]

    @property
    def duration_seconds(self) -> float:
        return max((share.seconds for share in self.shares), default=0.0)


# ---- the audience ----------------------------------------------------------------------------------


def _members(campaign: Campaign):
    return Contact.objects.filter(
        pk__in=ListMembership.objects.filter(contact_list__in=campaign.lists.all()).values("contact_id"))


def _sendable(campaign: Campaign):
    """The contacts a launch queues: on the lists, not opted out on the contact nor in the consent ledger, and
    not flagged as a number that cannot take messages (what ``selectors.campaign_audience`` gives and
    ``messaging.services.messages_queue`` keeps)."""
    return (_members(campaign).filter(opted_out=False, number_problem="")
            .exclude(phone__in=messaging_selectors.opted_out_phones()))


def audience_count(*, campaign: Campaign) -> int:
    """How many recipients a launch now would queue (one query)."""
    return _sendable(campaign).count()


def campaign_fingerprint(*, campaign: Campaign, recipients: int) -> str:
    """What the confirmation showed, in a short string: a launch whose audience or content changed since is
    shown again instead of going out."""
    senders = ",".join(str(s.pk) for s in _senders(campaign))
    lists = ",".join(str(pk) for pk in campaign.lists.order_by("pk").values_list("pk", flat=True))
    text = "\x1f".join([campaign.body or "", "\n".join(campaign.media_urls or []), senders, lists,
                        str(campaign.window_start), str(campaign.window_end), campaign.timezone])
    return f"{recipients}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _senders(campaign: Campaign) -> list:
    return services.campaign_senders(campaign=campaign)


def window_text(window: Window | None) -> str:
    return f"{window} in each recipient's local time" if window is not None else ""


def _empty(name: str) -> Q:
    """Contacts for whom the variable ``name`` is empty (a blank standard field, or a custom field that is
    missing or blank)."""
    if name in COLUMNS:
        return Q(**{COLUMNS[name]: ""})
    return ~Q(custom_fields__has_key=name) | Q(**{f"custom_fields__{name}": ""})


def _tally(out: Preflight, info: SegmentInfo, n: int) -> None:
    """Count ``n`` recipients whose message is ``info``: segments by encoding, and the longest message."""
    line = out.encodings.setdefault(info.encoding, EncodingLine(info.encoding))
    line.recipients += n
    line.segments += info.segments * n
    out.segments += info.segments * n
    if out.longest is None or (info.segments, info.units) > (out.longest.segments, out.longest.units):
        out.longest = info


def _price_table() -> dict[tuple[str, str], Price]:
    return {(p.provider, p.country): p for p in Price.objects.all()}


def _cost_line(sender, country: str, *, has_media: bool, prices: dict) -> CostLine:
    """An empty cost line for a sender's recipients in ``country``, at the price for that country, else the
    provider's price for any other country, else none."""
    price = prices.get((sender.provider, country)) or prices.get((sender.provider, ""))
    unit_price = None
    if price is not None:
        unit_price = (price.mms_per_message or price.per_segment) if has_media else price.per_segment
    return CostLine(sender=sender.name, provider=sender.get_provider_display(), country=country or "unknown",
                    recipients=0, units=0, unit="MMS" if has_media else "segment", price=unit_price,
                    currency=price.currency if price else "USD", is_example=bool(price and price.is_example))


@lru_cache(maxsize=4096)
def _region(phone: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


# ---- launch and schedule ---------------------------------------------------------------------------


def campaign_preflight(*, campaign: Campaign, action: str = "launch", now: datetime | None = None) -> Preflight:
    """The figures of a launch (or a schedule) of this campaign as it stands now."""
    now = now or timezone.now()
    senders = _senders(campaign)
    out = Preflight(action=action, has_media=bool(campaign.media_urls), scheduled_at=campaign.scheduled_at)
    consenting_q = Q(opted_out=False) & ~Q(phone__in=messaging_selectors.opted_out_phones())
    sendable_q = consenting_q & Q(number_problem="")
    figures = _members(campaign).aggregate(
        members=Count("id"),
        consenting=Count("id", filter=consenting_q),
        sendable=Count("id", filter=sendable_q),
        landline=Count("id", filter=sendable_q & Q(is_fixed_line=True)),
    )
    out.recipients, out.landline = figures["sendable"], figures["landline"]
    out.opted_out = figures["members"] - figures["consenting"]
    out.flagged = figures["consenting"] - figures["sendable"]
    memberships = ListMembership.objects.filter(contact_list__in=campaign.lists.all())
    out.lists = [(row["contact_list__name"], row["n"]) for row in
                 memberships.values("contact_list__name").annotate(n=Count("id")).order_by("contact_list__name")]
    out.duplicates = sum(n for _name, n in out.lists) - figures["members"]
    sendable = _sendable(campaign)
    variables = template_variables(campaign.body or "")
    _segments(out, campaign, sendable, variables)
    out.samples = _samples(campaign.body or "", sendable, variables)
    window = services.campaign_window(campaign=campaign)
    out.window = window_text(window)
    by_place = _places(sendable, len(senders))
    _costs_and_shares(out, senders, by_place, per_recipient=_mean_units(out))
    if window is not None:
        _outside(out, window, by_place, now if action == "launch" else (campaign.scheduled_at or now))
    out.fingerprint = campaign_fingerprint(campaign=campaign, recipients=out.recipients)
    return out


def _segments(out: Preflight, campaign: Campaign, sendable, variables: list[str]) -> None:
    """Segments by encoding, exact: one render per distinct combination of the used values."""
    body = campaign.body or ""
    names = [name for name in variables if name != "phone"]
    exprs = {}
    for i, name in enumerate(names):
        exprs[f"v{i}"] = F(COLUMNS[name]) if name in COLUMNS else KeyTransform(name, "custom_fields")
    if "phone" in variables:
        exprs["phone_len"] = Length("phone")
    if not exprs:
        rows = [({}, out.recipients)]
    else:
        groups = sendable.order_by().values(**exprs).annotate(n=Count("id"))
        rows = [(row, row["n"]) for row in groups.iterator(chunk_size=5000)]
    empty = dict.fromkeys(names, 0)
    for row, n in rows:
        context = {}
        for i, name in enumerate(names):
            value = row.get(f"v{i}")
            value = "" if value is None else value
            if value == "" or value == []:
                empty[name] += n
            context[name] = value
        phone = "+" + "5" * max(0, (row.get("phone_len") or 12) - 1)
        try:
            text = render(body, message_context(context, phone=phone))
        except ValueError as exc:
            out.render_failures[str(exc)] = out.render_failures.get(str(exc), 0) + n
            continue
        _tally(out, segment_info(text), n)
    covered = variables_with_fallback(body)
    out.empty_fields = {name: n for name, n in empty.items() if n and name not in covered}


def _mean_units(out: Preflight) -> float:
    """What one recipient costs in billed units: one MMS with media, else the mean number of segments."""
    if out.has_media:
        return 1.0
    rendered = sum(line.recipients for line in out.encodings.values())
    return out.segments / rendered if rendered else 0.0


def _samples(body: str, sendable, variables: list[str]) -> list[Sample]:
    """The exact message of a few real recipients: the first ones, and one lacking a used field when any does."""
    picks = list(sendable.order_by("id")[:SAMPLES])
    names = [name for name in variables if name != "phone"]
    if names:
        lacking = Q()
        for name in names:
            lacking |= _empty(name)
        missing = sendable.filter(lacking).exclude(pk__in=[c.pk for c in picks]).order_by("id").first()
        if missing is not None:
            picks = picks[:SAMPLES - 1] + [missing]
    return [contact_sample(body, contact, variables) for contact in picks]


def contact_sample(body: str, contact: Contact, variables: list[str]) -> Sample:
    fields = selectors.contact_template_context(contact)
    missing = [name for name in variables if name != "phone" and fields.get(name) in (None, "")]
    phone = str(contact.phone)
    try:
        text = render(body, message_context(fields, phone=phone))
    except ValueError as exc:
        return Sample(str(contact), phone, "", segment_info(""), missing, error=str(exc))
    return Sample(str(contact), phone, text, segment_info(text), missing)


def _places(sendable, n_senders: int) -> list[dict]:
    """Recipients grouped by where they are (the first digits of the number, and the contact's timezone) and
    by the sender they go through (``messages_queue`` splits by contact id modulo the number of senders),
    each group with one real number of it."""
    return list(
        sendable.order_by()
        .values(prefix=Substr("phone", 1, 8), tz=F("timezone"), share=Mod("id", max(n_senders, 1)))
        .annotate(n=Count("id"), example=Min("phone"))
        .iterator(chunk_size=5000)
    )


def _costs_and_shares(out: Preflight, senders: list, places: list[dict], *, per_recipient: float) -> None:
    by_sender_country: dict[tuple[int, str], int] = {}
    for row in places:
        key = (int(row["share"]), _region(str(row["example"])))
        by_sender_country[key] = by_sender_country.get(key, 0) + row["n"]
    shares = {i: 0 for i in range(len(senders))}
    for (share, _country), n in by_sender_country.items():
        shares[share] = shares.get(share, 0) + n
    for i, sender in enumerate(senders):
        mps = messaging_selectors.sender_pace(sender=sender)
        out.shares.append(SenderShare(sender.name, sender.get_provider_display(), shares.get(i, 0), mps))
    prices = _price_table()
    lines: dict[tuple[int, str], CostLine] = {}
    for (share, country), n in sorted(by_sender_country.items()):
        line = lines.get((share, country))
        if line is None:
            line = lines[(share, country)] = _cost_line(senders[share], country, has_media=out.has_media,
                                                        prices=prices)
        line.recipients += n
    for line in lines.values():
        line.units = round(line.recipients * per_recipient)
    out.costs = list(lines.values())


def _outside(out: Preflight, window: Window, places: list[dict], at: datetime) -> None:
    for row in places:
        zone = recipient_timezone(str(row["example"]), row["tz"] or "", window.timezone)
        if not window_open(window, zone, at):
            out.outside_window += row["n"]
            opening = next_opening(window, zone, at)
            if out.first_opening is None or opening < out.first_opening:
                out.first_opening = opening


# ---- resend to failed ------------------------------------------------------------------------------


def campaign_resend_preflight(*, campaign: Campaign, now: datetime | None = None) -> Preflight:
    """The figures of a resend to failed: the recipients ``messaging.services.messages_requeue_failed`` would
    queue again, with the bodies they were sent (a resend sends the same text)."""
    now = now or timezone.now()
    out = Preflight(action="resend_failed", has_media=bool(campaign.media_urls))
    rows = messaging_selectors.campaign_resendable(campaign_id=campaign.pk)
    senders = {s.pk: s for s in _senders(campaign)}
    senders.update({s.pk: s for s in messaging_selectors.senders_by_id({row.sender_id for row in rows})})
    per_sender: dict[int, int] = {}
    prices = _price_table()
    lines: dict[tuple[int, str], CostLine] = {}
    window = services.campaign_window(campaign=campaign)
    out.window = window_text(window)
    for row in rows:
        info = segment_info(row.body)
        _tally(out, info, 1)
        per_sender[row.sender_id] = per_sender.get(row.sender_id, 0) + 1
        country = _region(row.to)
        cost = lines.get((row.sender_id, country))
        if cost is None:
            cost = lines[(row.sender_id, country)] = _cost_line(senders[row.sender_id], country,
                                                                has_media=out.has_media, prices=prices)
        cost.recipients += 1
        cost.units += 1 if out.has_media else info.segments
    if window is not None:  # the same rule as the send path: the contact's zone, else the number's
        zones = selectors.contact_timezones({row.contact_id for row in rows if row.contact_id})
        _outside(out, window, [{"example": row.to, "tz": zones.get(row.contact_id, ""), "n": 1} for row in rows],
                 now)
    out.recipients = len(rows)
    out.costs = list(lines.values())
    for sender_id, n in per_sender.items():
        sender = senders[sender_id]
        out.shares.append(SenderShare(sender.name, sender.get_provider_display(), n,
                                      messaging_selectors.sender_pace(sender=sender)))
    if rows:
        first = rows[0]
        out.samples = [Sample(first.to, first.to, first.body, segment_info(first.body), [])]
    out.fingerprint = f"{out.recipients}:resend"
    return out


def known_variables() -> set[str]:
    """Every variable a template may use: the standard fields and the custom fields contacts have."""
    from .imports.selectors import custom_field_keys

    return set(STANDARD_VARIABLES) | set(custom_field_keys())


# ---- while composing ---------------------------------------------------------------------------------


def compose_preview(*, body: str, list_ids: list[int]) -> dict:
    """What the compose page shows as staff type: the message rendered for a few real recipients of the
    chosen lists (one lacking a used field when any does), how many recipients have each used field empty,
    and the longest message found (the recipients with the longest value of each used field)."""
    from messaging.personalize import template_errors

    error = template_errors(body, known_variables())
    out: dict = {"error": error, "variables": [], "samples": [], "empty": {}, "longest": None, "recipients": 0}
    if error:
        return out
    variables = template_variables(body)
    out["variables"] = variables
    sendable = (Contact.objects.filter(pk__in=ListMembership.objects.filter(contact_list_id__in=list_ids)
                                       .values("contact_id"))
                .filter(opted_out=False).exclude(phone__in=messaging_selectors.opted_out_phones()))
    names = [name for name in variables if name != "phone"]
    figures = sendable.aggregate(recipients=Count("id"),
                                 **{f"empty_{name}": Count("id", filter=_empty(name)) for name in names})
    out["recipients"] = figures["recipients"]
    covered = variables_with_fallback(body)
    out["empty"] = {name: figures[f"empty_{name}"] for name in names
                    if figures[f"empty_{name}"] and name not in covered}
    samples = _samples(body, sendable, variables)
    out["samples"] = [_sample_json(s) for s in samples]
    candidates = list(samples)
    for name in names:
        length = Length(COLUMNS[name]) if name in COLUMNS else Length(KeyTextTransform(name, "custom_fields"))
        contact = sendable.annotate(_len=length).order_by(F("_len").desc(nulls_last=True), "id").first()
        if contact is not None:
            candidates.append(contact_sample(body, contact, variables))
    rendered = [s for s in candidates if not s.error]
    if rendered:
        longest = max(rendered, key=lambda s: (s.info.segments, s.info.units))
        out["longest"] = _sample_json(longest)
    return out


def _sample_json(sample: Sample) -> dict:
    return {"label": sample.label, "phone": sample.phone, "body": sample.body, "error": sample.error,
            "missing": sample.missing, "encoding": sample.info.encoding, "units": sample.info.units,
            "segments": sample.info.segments}
