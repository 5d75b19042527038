"""What a failure's cause (``messaging.providers.base.causes``) sets off, once a message has failed for good:

- ``opted_out``: the number opts out in the consent ledger (the report is the cause);
- ``invalid_number``, ``not_sms_capable``: the number is flagged on its contact (``audience.number_flagged``),
  which skips it at the next launch until staff clear the flag;
- ``carrier_filtered``: when more than CARRIER_FILTERING_RATE of the campaign's last CARRIER_FILTERING_WINDOW
  outcomes (at least CARRIER_FILTERING_MIN of them) were filtered, the campaign is paused with the reason
  (``audience.campaign_paused``);
- ``account``, in the provider's answer to a send (our credentials, our number, our account refused): the
  sender's circuit opens at once (nothing more is sent through it for CIRCUIT_OPEN_SECONDS; its campaigns fail
  over to their backup sender or wait) instead of after CIRCUIT_FAILURES failures. A delivery report about one
  message it had accepted does not: the next calls show whether the account itself is refused.

Each runs in the transaction that recorded the failure."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from .. import audience
from ..models import ConsentEvent, Dispatch, Message
from ..providers.base import causes
from ..providers.codes import error_cause
from .circuit import circuit_open_now
from .consent import consent_change

logger = logging.getLogger("messaging")
S = Message.Status
OUTCOMES = (S.DELIVERED, S.UNDELIVERED, S.FAILED)
FLAGGED = (causes.INVALID_NUMBER, causes.NOT_SMS_CAPABLE)


def cause_of(provider: str, code: str, *, http_status: int | None = None) -> str:
    """The cause of an error a provider reported (its code, and the HTTP status of a refused call)."""
    if not code and not http_status:
        return ""
    return error_cause(provider, code or "", http_status=http_status) or ""


def failure_act(*, message_id: int, cause: str, provider: str, code: str = "", sender_id: int | None = None,
                refused: bool = False) -> None:
    """Act on a message that failed for good with ``cause``. ``refused``: the provider refused our call (its
    answer to the send), as opposed to reporting later about one message it had accepted."""
    if not cause:
        return
    row = Message.objects.filter(pk=message_id).values("to", "campaign_id", "sender_id").first()
    if row is None:
        return
    phone, campaign_id = row["to"], row["campaign_id"]
    reported = f"{provider} code {code}" if code else provider
    if cause == causes.OPTED_OUT and phone:
        consent_change(phone=phone, opt_out=True, method=ConsentEvent.Method.PROVIDER,
                       detail=f"{reported}: the recipient opted out", message=Message(pk=message_id, campaign_id=campaign_id,
                                                                           sender_id=row["sender_id"]))
    elif cause in FLAGGED and phone:
        audience.number_flagged([phone], cause, f"{causes.cause_info(cause).label} ({reported})")
    elif cause == causes.CARRIER_FILTERED and campaign_id:
        reason = filtering_spike(campaign_id)
        if reason:
            audience.campaign_paused(campaign_id, reason)
    elif cause == causes.ACCOUNT and refused:
        circuit_open_now(sender_id or row["sender_id"], reason=f"{causes.cause_info(cause).label} ({reported})")


def filtering_spike(campaign_id: int) -> str:
    """Why the campaign should pause for carrier filtering, or "" when it should not (see the module
    docstring). Outcomes before the campaign was last resumed do not count."""
    window = settings.CARRIER_FILTERING_WINDOW
    sending = Dispatch.objects.filter(campaign_id=campaign_id, state=Dispatch.State.SENDING)
    row = sending.values_list("filtering_since").first()
    if row is None:
        return ""  # paused or canceled already
    since = row[0]
    outcomes = Message.objects.filter(campaign_id=campaign_id, status__in=OUTCOMES)
    if since is not None:
        outcomes = outcomes.filter(updated_at__gte=since)
    recent = list(outcomes.order_by("-id").values_list("error_cause", flat=True)[:window])
    filtered = sum(1 for cause in recent if cause == causes.CARRIER_FILTERED)
    if filtered < settings.CARRIER_FILTERING_MIN or filtered <= settings.CARRIER_FILTERING_RATE * len(recent):
        return ""
    share = 100 * filtered / len(recent)
    return (f"Paused automatically at {timezone.now():%Y-%m-%d %H:%M} UTC: {filtered} of the last {len(recent)} "
            f"outcomes ({share:.0f}%) were filtered by carriers as spam, over the "
            f"{100 * settings.CARRIER_FILTERING_RATE:.0f}% limit. Check the message text, its links and the "
            f"sender's registration with the carrier, then resume.")
