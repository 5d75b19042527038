"""The contract every provider adapter keeps, run over real HTTP against the emulator.

A provider's test module subclasses ``ProviderContract`` and fills in the few provider facts below
(documented statuses, how a signed callback looks, an invalid recipient). pytest collects the subclass
(its name starts with ``Test``); this base class is not collected.
"""

from __future__ import annotations

import base64
import logging

import pytest
from django.urls import reverse

from messaging.models import STATUS_RANK, Message, MessageEvent
from messaging.providers import provider_class, provider_for
from messaging.providers.base import (
    AmbiguousError,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from tests.support import free_port, wait_until

# Who may write a reply, beyond valid numbers: short codes, alphanumeric sender IDs, numbers of ranges phonenumbers
# calls invalid, nothing, an emoji. And texts of every kind. An adapter parses each without raising and gives the
# address exactly as the provider wrote it (what is stored is the inbound service's decision).
ODD_ADDRESSES = ["12345", "898287", "ACME", "Vodafone", "+1 555 010 0000", "+15550100000", "+999123456", "",
                 "\U0001f642"]
ODD_TEXTS = ["", "\U0001f642 ok \U0001f44d", "x" * 5000, "  STOP  ", "line\nbreak"]


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def credentials(sender) -> dict:
    """The headers a provider that signs nothing sends back: the sender's callback Basic credentials."""
    username = str((sender.options or {}).get("callback_username") or "")
    return {"Authorization": basic_auth(username, sender.callback_password)}


def emulator_url(sender, url: str) -> str:
    """``url`` as the emulator is given it: with the sender's callback Basic credentials embedded when its
    provider needs them (what staff paste in the provider's console)."""
    return provider_for(sender).callback_url(url)


def outbound_message(message_id=42, to="+12125550123", body="Hello", url="http://127.0.0.1:9/cb", media=()):
    return OutboundMessage(id=message_id, to=to, body=body, media_urls=tuple(media), status_callback_url=url)


class ProviderContract:
    provider: str = ""
    # Every documented raw status value -> the normalized status docs/providers.md gives it (its provider's
    # "Statuses" table; test_documented_examples.py checks the two agree).
    documented_statuses: dict[str, str] = {}
    # A recipient the provider refuses as invalid (permanent, recipient-side).
    invalid_recipient: str = "+1"
    good_recipient: str = "+12125550123"

    # ---- provider facts a subclass implements ----

    def callback(self, sender, *, provider_message_id: str, raw_status: str, url: str, error_code: str = "",
                 extra: dict | None = None) -> dict:
        """Keyword arguments for Django's test client ``post``: ``data``, ``content_type``, ``headers``,
        signed for ``url`` (the absolute URL the test client calls) as the provider documents."""
        raise NotImplementedError

    def tamper(self, request: dict) -> dict:
        """The same request with a wrong or missing signature. Providers that sign nothing return None."""
        raise NotImplementedError

    # ---- shared helpers ----

    def outbound(self, sender, to: str | None = None, body: str = "Hello from the contract suite", **kw):
        return OutboundMessage(id=kw.pop("id", 42), to=to or self.good_recipient, body=body,
                               status_callback_url="http://127.0.0.1:9/cb", **kw)

    def webhook_path(self, sender) -> str:
        return reverse("messaging:webhook_status", args=[sender.provider, sender.uuid])

    def post_callback(self, client, sender, **kw):
        path = self.webhook_path(sender)
        request = self.callback(sender, url=f"http://testserver{path}", **kw)
        return client.post(path, **request)

    def send_through_emulator(self, make_sender, sandbox, live_server, outcome: str, **sender_fields) -> Message:
        """A message sent by the adapter to the emulator with its callbacks aimed at the live server, once the
        emulator's callbacks (every one ending in ``outcome``) have brought it to that status."""
        sandbox.config(**{"delivered": 0.0, "undelivered": 0.0, "failed": 0.0, outcome: 1.0})
        sender = make_sender(self.provider, **sender_fields)
        message = Message.objects.create(sender=sender, to=self.good_recipient, body="x", status="sending")
        url = f"{live_server.url}{self.webhook_path(sender)}?m={message.pk}"
        result = provider_for(sender).send(outbound_message(message_id=message.pk, to=self.good_recipient, url=url))
        Message.objects.filter(pk=message.pk).update(provider_message_id=result.provider_message_id, status="sent")
        wait_until(lambda: Message.objects.get(pk=message.pk).status == outcome, timeout=10,
                   message=f"the {outcome} callback")
        message.refresh_from_db()
        return message

    def check_emulator_reply(self, make_sender, sandbox, live_server, phone: str) -> None:
        """An inbound STOP posted by the emulator is recorded as an inbound message and suppresses ``phone``."""
        from messaging.models import Suppression

        sender = make_sender(self.provider)
        # The sender's credentials: the emulator signs with the one its provider uses (Basic ones are in the URL).
        path = reverse("messaging:webhook_inbound", args=[sender.provider, sender.uuid])
        sandbox.inbound(provider=self.provider, url=emulator_url(sender, f"{live_server.url}{path}"),
                        to=sender.address, text="STOP", **{"from": phone}, **sender.credentials)
        wait_until(lambda: Message.objects.filter(sender=sender, direction="inbound").exists(), timeout=10,
                   message="the reply")
        assert Message.objects.get(sender=sender, direction="inbound").body == "STOP"
        assert Suppression.objects.get(phone=phone).opted_out

    def sent_message(self, sender, provider_message_id: str = "pm-1") -> Message:
        return Message.objects.create(
            sender=sender, to=self.good_recipient, body="x", status=Message.Status.SENT,
            provider_message_id=provider_message_id,
        )

    # ---- the contract ----

    def test_good_send_returns_an_id(self, make_sender, sandbox):
        sender = make_sender(self.provider)
        result = provider_for(sender).send(self.outbound(sender))
        assert result.provider_message_id
        assert sandbox.ledger()["accepted"] == 1

    def test_server_error_is_transient(self, make_sender, sandbox):
        sandbox.config(error_5xx=1.0)
        sender = make_sender(self.provider)
        with pytest.raises(TransientError):
            provider_for(sender).send(self.outbound(sender))
        assert sandbox.ledger()["accepted"] == 0

    def test_rate_limit_is_transient_with_a_hint(self, make_sender, sandbox):
        sandbox.config(rate_429=1.0)
        sender = make_sender(self.provider)
        with pytest.raises(TransientError) as info:
            provider_for(sender).send(self.outbound(sender))
        assert info.value.retry_after is not None and info.value.retry_after > 0
        assert sandbox.ledger()["accepted"] == 0

    def test_connection_refused_is_transient(self, make_sender):
        sender = make_sender(self.provider, api_base_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(TransientError):
            provider_for(sender).send(self.outbound(sender))

    def test_dropped_connection_after_accepting_is_ambiguous(self, make_sender, sandbox):
        sandbox.config(ambiguous=1.0)
        sender = make_sender(self.provider)
        with pytest.raises(AmbiguousError):
            provider_for(sender).send(self.outbound(sender))
        assert sandbox.ledger()["accepted"] == 1  # the provider has it: never blindly retry

    def test_invalid_recipient_is_permanent(self, make_sender, sandbox):
        sender = make_sender(self.provider)
        with pytest.raises(PermanentError) as info:
            provider_for(sender).send(self.outbound(sender, to=self.invalid_recipient))
        assert info.value.http_status and 400 <= info.value.http_status < 500
        assert sandbox.ledger()["accepted"] == 0

    def test_bad_credentials_are_permanent_and_reported(self, make_sender, sandbox):
        cls = provider_class(self.provider)
        sender = make_sender(self.provider, credentials={k: "invalid" for k in cls.credential_keys})
        with pytest.raises(PermanentError):
            provider_for(sender).check_credentials()

    def test_check_credentials_accepts_good_ones(self, make_sender, sandbox):
        sender = make_sender(self.provider)
        assert "accepted" in provider_for(sender).check_credentials()

    def test_every_documented_status_maps(self, make_sender, client):
        """Each documented status, posted about a ``sent`` message, is stored as its normalized status and moves
        the message exactly as the forward-only rule says: a final status (rank above ``sent``) replaces ``sent``
        and records the raw value; anything else (queued, sending, sent, unknown, and ``received``, which is
        about inbound messages) leaves the message ``sent``."""
        sender = make_sender(self.provider)
        assert self.documented_statuses
        for raw, normalized in self.documented_statuses.items():
            message = self.sent_message(sender, provider_message_id=f"pm-{raw}")
            response = self.post_callback(client, sender, provider_message_id=f"pm-{raw}", raw_status=raw)
            assert response.status_code == 200, (raw, response.content)
            event = MessageEvent.objects.filter(provider_message_id=f"pm-{raw}").latest("id")
            assert event.status == normalized, raw
            message.refresh_from_db()
            moves = normalized in STATUS_RANK and normalized != Message.Status.RECEIVED and (
                STATUS_RANK[normalized] > STATUS_RANK[Message.Status.SENT])
            expected = normalized if moves else Message.Status.SENT
            assert message.status == expected, (raw, normalized, message.status)
            if moves:
                assert message.provider_status == raw, (raw, message.provider_status)

    def test_unknown_status_is_stored_as_unknown(self, make_sender, client):
        sender = make_sender(self.provider)
        message = self.sent_message(sender)
        response = self.post_callback(client, sender, provider_message_id="pm-1", raw_status="zz_new_status")
        assert response.status_code == 200
        assert MessageEvent.objects.get(provider_message_id="pm-1").status == "unknown"
        message.refresh_from_db()
        assert message.status == Message.Status.SENT

    def test_signature_refused_changes_nothing(self, make_sender, client):
        sender = make_sender(self.provider)
        message = self.sent_message(sender)
        path = self.webhook_path(sender)
        good = self.callback(sender, url=f"http://testserver{path}", provider_message_id="pm-1",
                             raw_status=self.delivered_status)
        bad = self.tamper(good)
        if bad is None:
            pytest.skip(f"{self.provider} does not sign callbacks; its URL's sender uuid is the credential")
        assert client.post(path, **bad).status_code == 403
        message.refresh_from_db()
        assert message.status == Message.Status.SENT
        assert not MessageEvent.objects.exists()
        assert client.post(path, **good).status_code == 200
        message.refresh_from_db()
        assert message.status == Message.Status.DELIVERED

    def test_unknown_sender_uuid_is_refused(self, make_sender, client):
        sender = make_sender(self.provider)
        path = reverse("messaging:webhook_status", args=[sender.provider, "00000000-0000-4000-8000-000000000000"])
        request = self.callback(sender, url=f"http://testserver{path}", provider_message_id="pm-1",
                                raw_status=self.delivered_status)
        assert client.post(path, **request).status_code == 404

    def test_duplicate_and_late_callbacks_keep_the_final_status(self, make_sender, client):
        sender = make_sender(self.provider)
        message = self.sent_message(sender)
        for _ in range(2):
            assert self.post_callback(client, sender, provider_message_id="pm-1",
                                      raw_status=self.delivered_status).status_code == 200
        assert self.post_callback(client, sender, provider_message_id="pm-1",
                                  raw_status=self.sent_status).status_code == 200
        message.refresh_from_db()
        assert message.status == Message.Status.DELIVERED
        assert message.delivered_at is not None
        assert MessageEvent.objects.filter(provider_message_id="pm-1", status="delivered").count() == 1

    def test_no_secret_in_logs_or_errors(self, make_sender, sandbox, caplog, admin_client):
        caplog.set_level(logging.DEBUG)
        cls = provider_class(self.provider)
        secrets = {k: f"S3cr3t-{k}-{self.provider}-value" for k in cls.credential_keys}
        sender = make_sender(self.provider, credentials=secrets)
        provider_for(sender).send(self.outbound(sender))
        sandbox.config(error_5xx=1.0)
        with pytest.raises(TransientError) as info:
            provider_for(sender).send(self.outbound(sender))
        page = admin_client.get(reverse("admin:messaging_sender_change", args=[sender.pk])).content.decode()
        text = "\n".join(r.getMessage() for r in caplog.records) + str(info.value) + info.value.response + page
        for key, value in secrets.items():
            if key in ("auth_id", "account_sid", "user_id", "api_key_id", "property_sid"):
                continue  # identifiers, not secrets; they may appear in URLs
            assert value not in text, key
            assert "••••••" + value[-4:] in page  # only the last four characters are shown back

    @pytest.mark.django_db(transaction=True)
    def test_emulator_reply_is_recorded_and_stop_suppresses(self, make_sender, sandbox, live_server):
        self.check_emulator_reply(make_sender, sandbox, live_server, phone=self.reply_phone)

    # subclasses override when the provider's words differ
    delivered_status = "delivered"
    sent_status = "sent"
    reply_phone = "+12125550199"  # who writes the reply the emulator posts
