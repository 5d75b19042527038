"""Replies: each inbound message stored once (per provider id) under the address that wrote it, whatever that
address is (a number phonenumbers does not know, a short code, an alphanumeric sender: nothing is dropped),
linked to the message of ours it answers; and the sender's keywords applied.

A reply that is, as a whole, one of its sender's keywords (case, surrounding spaces and punctuation aside):

- opt-out (STOP ...): the number opts out in the consent ledger, with the reply as its cause;
- opt-in (START ...): a number that had opted out opts back in;
- help (HELP ...): answered with the sender's help text.

A consent change is confirmed once, by one message through the same sender; a keyword that changes nothing (a
second STOP) is stored and not answered. Nothing is sent from here for a sender whose provider answers these
keywords itself (``provider_answers_keywords``): the change is still recorded."""

from __future__ import annotations

import logging
import re

from django.db import transaction

from ..models import ConsentEvent, Message, Sender
from ..phones import is_phone_address, phone_as_received
from ..providers import provider_class
from ..providers.base import StatusEvent
from .consent import consent_change
from .tallies import campaign_tally

logger = logging.getLogger("messaging")
S = Message.Status
K = Message.Keyword
# Punctuation and spaces around a keyword do not count ("Stop.", " STOP!! ").
_AROUND = re.compile(r"^[\W_]+|[\W_]+$")


def keyword_words(text: str) -> set[str]:
    """The words of a sender's keyword setting ("STOP, END"), compared case-insensitively."""
    return {word.strip().casefold() for word in re.split(r"[,\n;]", text or "") if word.strip()}


def keyword_of(sender: Sender, body: str) -> str:
    """The keyword a whole reply is for this sender (``Message.Keyword``), or "". Opt-out wins over the others
    when a word is in two lists."""
    word = _AROUND.sub("", (body or "").strip()).casefold()
    if not word:
        return ""
    for keyword, words in ((K.OPT_OUT, sender.opt_out_keywords), (K.OPT_IN, sender.opt_in_keywords),
                           (K.HELP, sender.help_keywords)):
        if word in keyword_words(words):
            return keyword
    return ""


def provider_answers_keywords(sender: Sender) -> bool:
    """Whether the sender's provider answers keywords itself: the sender's setting, or always for a provider
    that blocks a number after its STOP (``Provider.answers_keywords``)."""
    try:
        documented = provider_class(sender.provider).answers_keywords
    except LookupError:
        documented = False
    return sender.provider_answers_keywords or documented


def _answered_message(sender: Sender, address: str) -> dict:
    """The most recent message of ours from this sender to this address (what the reply answers): its id and
    its contact, and the campaign of the most recent campaign message among them (a reply after our answer to
    HELP still belongs to the campaign), as the reply's fields."""
    row = None
    if address:
        row = (Message.objects.filter(sender=sender, to=address, direction=Message.Direction.OUTBOUND)
               .order_by("-id").values_list("pk", "campaign_id", "contact_id").first())
    answered, campaign_id, contact_id = row or (None, None, None)
    if row is not None and campaign_id is None:  # after our answer or a test send: still the campaign's reply
        campaign_id = (Message.objects.filter(sender=sender, to=address, direction=Message.Direction.OUTBOUND,
                                              campaign__isnull=False)
                       .order_by("-id").values_list("campaign_id", flat=True).first())
    return {"in_reply_to_id": answered, "reply_campaign_id": campaign_id, "contact_id": contact_id}


def inbound_record(*, sender: Sender, event: StatusEvent) -> Message:
    """Store a reply (once per provider id) and apply its keyword. Returns the stored reply."""
    address = phone_as_received(event.recipient)  # the adapters give who wrote as ``recipient``
    fields = {
        "to": address, "body": event.body, "status": S.RECEIVED, "provider_status": event.raw_status[:40],
        "media_urls": list(event.media_urls), "keyword": keyword_of(sender, event.body), "sent_at": event.occurred_at,
        **_answered_message(sender, address),
    }
    with transaction.atomic():
        if event.provider_message_id:
            message, created = Message.objects.get_or_create(
                sender=sender, direction=Message.Direction.INBOUND, provider_message_id=event.provider_message_id,
                defaults=fields,
            )
        else:
            message = Message.objects.create(sender=sender, direction=Message.Direction.INBOUND, **fields)
            created = True
        if created and message.reply_campaign_id:
            _reply_tally(message)
        if created and message.keyword and address:
            _keyword_apply(sender, message)
    return message


def _reply_tally(reply: Message) -> None:
    """Count a reply for the campaign it answers: the reply, its number's first reply to that campaign, and a
    help request."""
    campaign_id = reply.reply_campaign_id
    campaign_tally(campaign_id=campaign_id, sender_id=reply.sender_id, event="reply")
    earlier = Message.objects.filter(to=reply.to, direction=Message.Direction.INBOUND, reply_campaign_id=campaign_id,
                                     id__lt=reply.pk)
    if not earlier.exists():
        campaign_tally(campaign_id=campaign_id, sender_id=reply.sender_id, event="replier")
    if reply.keyword == K.HELP:
        campaign_tally(campaign_id=campaign_id, sender_id=reply.sender_id, event="help")


def _keyword_apply(sender: Sender, reply: Message) -> None:
    """The consent change and the answer a keyword reply asks for (in the reply's transaction)."""
    if reply.keyword == K.HELP:
        _answer(sender, reply, sender.help_text_reply)
        return
    opt_out = reply.keyword == K.OPT_OUT
    changed = consent_change(phone=reply.to, opt_out=opt_out, method=ConsentEvent.Method.KEYWORD,
                             detail=f"replied {reply.body.strip()[:20]!r} to {sender.name}", message=reply)
    if changed:  # already so: nothing changes, nothing is sent
        _answer(sender, reply, sender.opt_out_text if opt_out else sender.opt_in_text)


def _answer(sender: Sender, reply: Message, text: str) -> None:
    """Send a keyword's answer through the sender the reply came to, unless its provider answers keywords
    itself, the text is empty, or the address cannot be messaged (an alphanumeric sender)."""
    text = (text or "").strip()
    if provider_answers_keywords(sender) or not text or not is_phone_address(reply.to) or not sender.is_active:
        return
    from .queueing import message_create

    try:
        message_create(sender=sender, to=reply.to, body=text, contact_id=reply.contact_id,
                       kind=Message.Kind.KEYWORD, in_reply_to=reply)
    except ValueError as exc:  # the provider cannot take this text: the change stands, the answer is not sent
        logger.warning("keyword answer to reply %s not sent: %s", reply.pk, exc)
