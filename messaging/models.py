"""Transport: who sends, what was sent, what the provider said, and who may not be sent to."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import models
from django.db.models import Q

from .fields import EncryptedJSONField, EncryptedTextField
from .providers import provider_choices
from .providers.base.causes import cause_info

DEFAULT_OPT_OUT_KEYWORDS = "STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT"
DEFAULT_OPT_IN_KEYWORDS = "START, UNSTOP, YES"
DEFAULT_HELP_KEYWORDS = "HELP, INFO"
DEFAULT_OPT_OUT_TEXT = "You are unsubscribed and will get no more messages from this number. Reply START to subscribe again."
DEFAULT_OPT_IN_TEXT = "You are subscribed again. Reply STOP to unsubscribe."
DEFAULT_HELP_TEXT = "Reply STOP to unsubscribe, START to subscribe again."


class Sender(models.Model):
    name = models.CharField("display name", max_length=100)
    provider = models.CharField(max_length=20, choices=provider_choices)
    address = models.CharField(
        "sender address",
        max_length=32,
        blank=True,
        help_text="E.164 number (+14155551234), alphanumeric ID, or blank where the provider leases one.",
    )
    credentials = EncryptedJSONField(blank=True, default=dict)
    callback_password = EncryptedTextField(
        blank=True,
        default="",
        help_text="HTTP Basic password required on callbacks (Bandwidth, Fone Dynamics); encrypted, write-only.",
    )
    api_base_url = models.URLField(
        "API base URL", blank=True, help_text="Leave blank for the provider's own API. Set for the local emulator."
    )
    options = models.JSONField(
        blank=True, default=dict, help_text="Provider options, e.g. powerpack_uuid, send_style, validity_period."
    )
    mps = models.FloatField("messages per second", default=1.0)
    # Keywords: a reply that is, as a whole, one of these words (case, surrounding spaces and punctuation aside).
    opt_out_keywords = models.CharField(
        "opt-out keywords", max_length=300, blank=True, default=DEFAULT_OPT_OUT_KEYWORDS,
        help_text="A reply that is one of these words opts its number out. Separate words with commas; left "
        "empty, the standard words.",
    )
    opt_in_keywords = models.CharField(
        "opt-in keywords", max_length=300, blank=True, default=DEFAULT_OPT_IN_KEYWORDS,
        help_text="A reply that is one of these words opts its number back in.",
    )
    help_keywords = models.CharField(
        "help keywords", max_length=300, blank=True, default=DEFAULT_HELP_KEYWORDS,
        help_text="A reply that is one of these words is answered with the help text.",
    )
    opt_out_text = models.TextField(
        "opt-out confirmation", blank=True, default=DEFAULT_OPT_OUT_TEXT,
        help_text="Sent once when a number opts out by keyword. Empty: nothing is sent.",
    )
    opt_in_text = models.TextField(
        "opt-in confirmation", blank=True, default=DEFAULT_OPT_IN_TEXT,
        help_text="Sent once when a number opts back in by keyword. Empty: nothing is sent.",
    )
    help_text_reply = models.TextField(
        "help text", blank=True, default=DEFAULT_HELP_TEXT, help_text="The answer to a help keyword. Empty: nothing is sent.",
    )
    provider_answers_keywords = models.BooleanField(
        "provider answers keywords", default=False,
        help_text="The provider answers STOP, START and HELP itself on this line: the opt-out is still recorded, "
        "but no confirmation or help text is sent from here. Always so for CloudVNO, which blocks a number after "
        "its STOP.",
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"


class Message(models.Model):
    class Direction(models.TextChoices):
        OUTBOUND = "outbound"
        INBOUND = "inbound"

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        ERRORED = "errored"  # transient error, will retry at next_attempt_at
        UNCONFIRMED = "unconfirmed"  # ambiguous outcome: the provider may have it; reconciliation decides
        SENT = "sent"
        DELIVERED = "delivered"
        UNDELIVERED = "undelivered"
        FAILED = "failed"
        CANCELED = "canceled"
        RECEIVED = "received"

    class Kind(models.TextChoices):
        MESSAGE = "message", "message"  # a campaign's, a test send
        ANSWER = "answer", "answer"  # staff answering a reply
        KEYWORD = "keyword", "keyword answer"  # an opt-out or opt-in confirmation, the help text

    class Keyword(models.TextChoices):
        OPT_OUT = "opt_out", "opt-out"
        OPT_IN = "opt_in", "opt-in"
        HELP = "help", "help"

    sender = models.ForeignKey(Sender, on_delete=models.PROTECT, related_name="messages")
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    contact = models.ForeignKey(
        "campaigns.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    round = models.PositiveSmallIntegerField(default=0, help_text="0 for the launch, 1+ for each resend to failed")
    to = models.CharField(max_length=20)  # the recipient; a reply's: the number that wrote (indexed with id)
    body = models.TextField(blank=True)
    media_urls = models.JSONField(blank=True, default=list)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    provider_message_id = models.CharField(max_length=100, blank=True, db_index=True)
    provider_status = models.CharField(max_length=40, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    error_cause = models.CharField(
        max_length=20, blank=True, help_text="what the error means, across providers (messaging.providers.base.causes)"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MESSAGE)
    in_reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="a reply: the message of ours it answers; an answer: the reply it answers",
    )
    reply_campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="a reply: the campaign of the message it answers (kept here so a campaign's replies are one lookup)",
    )
    keyword = models.CharField(max_length=8, choices=Keyword.choices, blank=True, help_text="a reply's keyword")
    read_at = models.DateTimeField(null=True, blank=True, help_text="a reply: when staff read it")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_sequence = models.IntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="when a send task was last enqueued")
    claimed_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True, help_text="last time the provider was asked about it")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "to", "round"], condition=Q(campaign__isnull=False), name="message_once_per_round"
            ),
            # A reply is stored once, even when the provider delivers it twice at the same moment.
            models.UniqueConstraint(
                fields=["sender", "provider_message_id"], condition=Q(direction="inbound") & ~Q(provider_message_id=""),
                name="reply_once",
            ),
        ]
        permissions = [
            ("resend_message", "Can resend, or mark as sent, messages whose outcome is unknown"),
            ("answer_message", "Can answer replies and mark them read"),
        ]
        indexes = [
            # By status, then in queue order: counts by status, and a campaign's recipients of one status a
            # page at a time (keyset pagination) at any size.
            models.Index(fields=["campaign", "status", "id"], name="message_campaign_status_id"),
            # Failures by cause, a page at a time: only failed messages are in it.
            models.Index(fields=["campaign", "error_cause", "id"], name="message_campaign_cause_id",
                         condition=~Q(error_cause="")),
            models.Index(fields=["campaign", "id"], name="message_campaign_id"),
            models.Index(fields=["to", "id"], name="message_to_id"),
            models.Index(fields=["status", "updated_at"], name="message_status_updated"),
            models.Index(fields=["sender", "provider_message_id"], name="message_sender_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.to} [{self.status}]"

    @property
    def cause(self):
        """What the error means, across providers (label, explanation, advice), or None without one."""
        return cause_info(self.error_cause) if self.error_cause else None


# Rank for "state only moves forward". Equal rank never replaces; a higher rank may replace a lower one.
STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.ERRORED: 0,
    Message.Status.SENDING: 1,
    Message.Status.UNCONFIRMED: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.UNDELIVERED: 3,
    Message.Status.FAILED: 3,
    Message.Status.CANCELED: 3,
    Message.Status.RECEIVED: 3,
}
FINAL_STATUSES = frozenset(s for s, r in STATUS_RANK.items() if r == 3)
# A campaign has finished sending when none of its messages is in one of these.
PENDING_STATUSES = frozenset(
    {Message.Status.QUEUED, Message.Status.ERRORED, Message.Status.SENDING, Message.Status.UNCONFIRMED}
)


class MessageEvent(models.Model):
    """Every status callback, lookup answer or status change, as received. Stored once per dedupe key."""

    class Source(models.TextChoices):
        CALLBACK = "callback"
        LOOKUP = "lookup"
        SEND = "send"
        SYSTEM = "system"

    sender = models.ForeignKey(Sender, on_delete=models.CASCADE, related_name="events")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CALLBACK)
    provider_message_id = models.CharField(max_length=100, blank=True, db_index=True)
    dedupe_key = models.CharField(max_length=64)
    status = models.CharField(max_length=12, help_text="normalized status")
    raw_status = models.CharField(max_length=60, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    sequence = models.IntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    applied = models.BooleanField(default=False, help_text="False while the message it belongs to is not known yet")
    part = models.PositiveSmallIntegerField(default=1, help_text="the part of a split message this event reports")
    parts = models.PositiveSmallIntegerField(default=1, help_text="how many parts the message was split into")
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["sender", "dedupe_key"], name="event_once")]
        indexes = [models.Index(fields=["applied", "received_at"], name="event_pending")]

    def __str__(self) -> str:
        return f"{self.provider_message_id} {self.status}"


class CallbackNonce(models.Model):
    """A nonce of a callback whose signature covers only the URL and the nonce (Plivo V2), kept so the same
    signed request cannot be played again within CALLBACK_REPLAY_WINDOW_SECONDS (the sweep forgets older ones)."""

    sender = models.ForeignKey(Sender, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=100, help_text="the signature scheme's name, then the nonce")
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "nonce"], name="callback_nonce_once")]

    def __str__(self) -> str:
        return self.nonce


class Dispatch(models.Model):
    """A campaign as the send path sees it: its name, what to send (the template rendered for each contact at
    send time, the media), from which senders, the backup sender, and whether sending is allowed right now.

    The campaign's owner sets it through the dispatch services when it launches, pauses, resumes or cancels;
    the send path reads only this row, never the campaign. A sending window (``window_start`` to
    ``window_end``, both set or neither) holds each message until it is open in its recipient's local time
    (``messaging.windows``)."""

    class State(models.TextChoices):
        SENDING = "sending"
        PAUSED = "paused"
        CANCELED = "canceled"

    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, primary_key=True, related_name="dispatch"
    )
    name = models.CharField(max_length=200, blank=True, help_text="the campaign's name, for pages that list messages")
    state = models.CharField(max_length=10, choices=State.choices, default=State.SENDING)
    template = models.TextField(blank=True)
    media_urls = models.JSONField(blank=True, default=list)
    sender_ids = models.JSONField(default=list, help_text="the senders recipients are split across, in order")
    backup_sender = models.ForeignKey(Sender, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    window_start = models.TimeField(null=True, blank=True, help_text="sending window, in each recipient's local time")
    window_end = models.TimeField(null=True, blank=True)
    window_timezone = models.CharField(
        max_length=64, blank=True, help_text="the campaign's zone, for recipients whose own zone is not known"
    )
    filtering_since = models.DateTimeField(
        null=True, blank=True, help_text="outcomes after this time count towards pausing for carrier filtering"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"dispatch of campaign {self.campaign_id} [{self.state}]"


class CampaignCounter(models.Model):
    """Per-campaign message counts by status, kept in the same transaction as each status change.

    Several shards per (campaign, status) so concurrent updates rarely wait on the same row; a read sums
    at most shards x statuses rows, whatever the number of messages.
    """

    SHARDS = 8

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="counters")
    status = models.CharField(max_length=12)
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "status", "shard"], name="counter_once")]


class CampaignMinute(models.Model):
    """A campaign's outcomes per minute, for its timeline: messages the provider accepted (``sent``), delivered,
    undelivered and failed in that minute. Kept in the transaction of each change (``services.tallies``); sharded
    like the counters, so a timeline reads at most minutes x statuses x shards rows, whatever the campaign's
    size."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    status = models.CharField(max_length=12)
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "minute", "status", "shard"],
                                               name="campaign_minute_once")]


class CampaignTally(models.Model):
    """What a campaign's messages did, per sender, counted as it happened (``services.tallies``):

    - ``sent`` (accepted by the provider), ``delivered``, ``undelivered``, ``failed``: one per message, the
      failures with their ``cause`` and provider ``code``;
    - ``failover``: a message moved to the backup sender (``sender``), with the cause and code of the failure
      that moved it;
    - ``superseded``: a failed message a resend replaced (``cause`` holds its status), so recipients are
      counted apart from messages;
    - ``reply``, ``replier`` (the first reply of a number), ``help``, ``opt_out``: what the campaign caused."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    sender = models.ForeignKey(Sender, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=12)
    cause = models.CharField(max_length=20, blank=True)
    code = models.CharField(max_length=40, blank=True)
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "sender", "event", "cause", "code", "shard"],
                                               name="campaign_tally_once")]


class SenderHour(models.Model):
    """A sender's outcomes per hour, across campaigns, test sends and answers (``sent``, ``delivered``,
    ``undelivered``, ``failed``): the overview's volume and delivery rate per provider."""

    sender = models.ForeignKey(Sender, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    status = models.CharField(max_length=12)
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "hour", "status", "shard"], name="sender_hour_once")]


class CallbackTally(models.Model):
    """The callbacks a sender received per hour: accepted, or refused and why (a bad signature, an unreadable
    body ...), with when the last one came. A misconfigured signing secret shows here within a minute."""

    sender = models.ForeignKey(Sender, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    accepted = models.BooleanField()
    reason = models.CharField(max_length=120, blank=True)
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)
    last_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "hour", "accepted", "reason", "shard"],
                                               name="callback_tally_once")]


class Suppression(models.Model):
    """The current consent state of one phone number. The history is in ConsentEvent."""

    phone = models.CharField(max_length=20, unique=True)
    opted_out = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.phone} {'opted out' if self.opted_out else 'subscribed'}"


class ConsentEvent(models.Model):
    """Append-only consent ledger by phone number: when, how, by whom. An undo is its own entry."""

    class Action(models.TextChoices):
        OPT_OUT = "opt_out", "opt-out"
        OPT_IN = "opt_in", "opt-in"

    class Method(models.TextChoices):
        KEYWORD = "keyword", "keyword reply"
        PROVIDER = "provider", "provider signal"
        IMPORT = "import", "import"
        STAFF = "staff", "staff"

    phone = models.CharField(max_length=20, db_index=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    method = models.CharField(max_length=10, choices=Method.choices)
    detail = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    undoes = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="the reply or the provider's report that caused it",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("undo_consentevent", "Can undo consent entries and opt numbers back in")]

    def __str__(self) -> str:
        return f"{self.phone} {self.get_action_display()} ({self.get_method_display()})"


class SenderPace(models.Model):
    """Per-sender sending state: the next free send slot (unix seconds, when pacing is kept in the database)
    and the circuit breaker (consecutive provider failures; no sends before ``open_until``)."""

    sender = models.OneToOneField(Sender, on_delete=models.CASCADE, primary_key=True, related_name="pace")
    next_free = models.FloatField(default=0.0)
    rate_factor = models.FloatField(
        default=1.0, db_default=1.0, help_text="share of the configured pace in use: lowered when the provider answers 429"
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    open_until = models.DateTimeField(null=True, blank=True)
    open_reason = models.CharField(
        max_length=300, blank=True, default="", db_default="", help_text="why the circuit last opened"
    )
    open_cause = models.CharField(
        max_length=20, blank=True, default="", db_default="",
        help_text="the cause (messaging.providers.base.causes) of the failures that last opened it",
    )


class AuditEntry(LogEntry):
    """Who did what to which object, and when: the admin's own change log (so each object's History shows it),
    which the product also writes for launches, cancels, exports, credential changes and the like. Read-only
    in the admin."""

    class Meta:
        proxy = True
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"


class ReplyManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(direction=Message.Direction.INBOUND)


class Reply(Message):
    """The inbox: messages that came to our senders (``Message`` rows of direction ``inbound``). Seen with the
    permission to view messages; answered and marked read with ``messaging.answer_message``."""

    objects = ReplyManager()

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "reply"
        verbose_name_plural = "inbox (replies)"
        ordering = ["-id"]
