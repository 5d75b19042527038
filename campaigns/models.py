"""Audience and campaigns: contacts, lists, campaigns."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from phonenumber_field.modelfields import PhoneNumberField


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContactList(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# The causes (messaging.providers.base.causes) that flag a contact's number.
NUMBER_PROBLEMS = [("invalid_number", "invalid number"), ("not_sms_capable", "landline or not SMS-capable")]


class Contact(models.Model):
    phone = PhoneNumberField(unique=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    custom_fields = models.JSONField(blank=True, default=dict, help_text="Usable in templates as {{ name }}")
    opted_out = models.BooleanField("opted out", default=False)
    is_fixed_line = models.BooleanField("fixed line", default=False)
    number_problem = models.CharField(
        "number flagged", max_length=20, blank=True, default="", db_default="", choices=NUMBER_PROBLEMS,
        help_text="A provider reported the number cannot take messages: it is skipped at launch until cleared.",
    )
    # Database defaults too: imports insert contacts with raw SQL that names only the columns they fill.
    number_problem_detail = models.CharField("flag detail", max_length=200, blank=True, default="", db_default="")
    number_problem_at = models.DateTimeField("flagged at", null=True, blank=True)
    lists = models.ManyToManyField(ContactList, through="ListMembership", related_name="contacts", blank=True)
    tags = models.ManyToManyField(Tag, related_name="contacts", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        permissions = [("export_contact", "Can export contacts and lists")]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} {self.phone}".strip() if name else str(self.phone)


class ListMembership(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact_list", "contact"], name="membership_once")]


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        SENDING = "sending"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELED = "canceled"

    name = models.CharField(max_length=200)
    sender = models.ForeignKey("messaging.Sender", on_delete=models.PROTECT, related_name="campaigns")
    backup_sender = models.ForeignKey(
        "messaging.Sender",
        on_delete=models.PROTECT,
        related_name="backup_campaigns",
        null=True,
        blank=True,
        help_text="Used when the main sender's provider fails or is down.",
    )
    more_senders = models.ManyToManyField(
        "messaging.Sender",
        blank=True,
        related_name="split_campaigns",
        verbose_name="more senders",
        help_text="Recipients are split evenly between the sender and these; each recipient gets one message, "
        "from one of them.",
    )
    body = models.TextField(
        "message template",
        blank=True,
        help_text="Personalise with {{ first_name }}, {{ last_name }} or any custom field, "
        'e.g. {{ first_name|default:"there" }}.',
    )
    media_urls = models.JSONField("media URLs", blank=True, default=list)
    # The last time the media URLs' servers were asked their size and type (when saved in the admin, at launch):
    # {"urls": [...], "senders": [ids], "problems": [...], "warnings": [...]}. Pages show it; they never ask.
    media_check = models.JSONField(blank=True, default=dict, editable=False)
    media_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    lists = models.ManyToManyField(ContactList, related_name="campaigns", blank=True, verbose_name="audience lists")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    window_start = models.TimeField(
        "send from", null=True, blank=True,
        help_text="Optional sending window, in each recipient's local time (e.g. 09:00 to 21:00). Messages outside "
        "it wait for its next opening.",
    )
    window_end = models.TimeField("send until", null=True, blank=True)
    timezone = models.CharField(
        "campaign timezone", max_length=64, blank=True,
        help_text="For recipients whose timezone is neither on their contact nor known from their number.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    recipient_count = models.PositiveIntegerField(default=0)
    suppressed_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(
        max_length=300, blank=True, help_text="why the product paused the campaign on its own (empty: paused by staff)"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_due")]
        # What sends or stops messages is a permission of its own, not "change" (editing a draft).
        permissions = [
            ("launch_campaign", "Can launch, schedule, pause and resume a campaign"),
            ("cancel_campaign", "Can cancel a campaign"),
            ("resend_campaign", "Can resend a campaign's failed messages"),
            ("test_send_campaign", "Can send a campaign's test message"),
            ("export_campaign", "Can export a campaign's results"),
        ]

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    """What one message segment costs with a provider to a destination country (blank: any other country),
    for the cost estimate before launch. Example prices are marked as such until staff enter their own."""

    provider = models.CharField(max_length=20)
    country = models.CharField(
        max_length=2, blank=True, help_text="ISO country code of the destination (e.g. US, GB); blank for any other."
    )
    per_segment = models.DecimalField("price per segment", max_digits=10, decimal_places=5)
    mms_per_message = models.DecimalField(
        "price per MMS", max_digits=10, decimal_places=5, null=True, blank=True,
        help_text="For a message with media; blank to count it as one segment.",
    )
    currency = models.CharField(max_length=3, default="USD")
    is_example = models.BooleanField(
        "example price", default=True, help_text="Shipped as an example; untick once it is your contract's price."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "country"]
        constraints = [models.UniqueConstraint(fields=["provider", "country"], name="price_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.country or 'any country'}: {self.per_segment} {self.currency}"


class ImportJob(models.Model):
    """One uploaded spreadsheet of contacts (or of opted-out numbers) and what importing it did."""

    class Status(models.TextChoices):
        NEW = "new", "awaiting mapping"
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    class Kind(models.TextChoices):
        CONTACTS = "contacts", "contacts for a list"
        SUPPRESSION = "suppression", "opted-out numbers (suppression list)"

    class Policy(models.TextChoices):
        UPDATE = "update", "update existing contacts"
        SKIP = "skip", "keep existing contacts as they are"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CONTACTS)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    file = models.FileField(upload_to="imports/%Y/%m/", max_length=255)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    file_format = models.CharField(max_length=8, blank=True, help_text="csv or xlsx")
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=list, blank=True, help_text="one target per column, '' to ignore it")
    region = models.CharField("default country", max_length=2, blank=True)
    policy = models.CharField(max_length=8, choices=Policy.choices, default=Policy.UPDATE)
    contact_list = models.ForeignKey(
        ContactList, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    progress = models.FloatField(default=0.0, help_text="percent of the file read")
    rows = models.PositiveIntegerField(default=0, help_text="data rows read (blank lines not counted)")
    created_count = models.PositiveIntegerField("created", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    skipped_count = models.PositiveIntegerField("skipped", default=0)
    invalid_count = models.PositiveIntegerField("invalid", default=0)
    duplicate_count = models.PositiveIntegerField("duplicate", default=0)
    fixed_line_count = models.PositiveIntegerField("fixed line", default=0)
    warning_count = models.PositiveIntegerField("warnings", default=0)
    error_report = models.FileField(upload_to="imports/reports/", max_length=255, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Import #{self.pk} {self.original_name}"
