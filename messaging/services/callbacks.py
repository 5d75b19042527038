"""What a callback proves: the nonces of signatures that cover only the URL (Plivo V2), each accepted once within
CALLBACK_REPLAY_WINDOW_SECONDS; and whether the events a callback carries fit what we store."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import CallbackNonce, Message
from ..providers.base import StatusEvent

_NONCE_MAX = CallbackNonce._meta.get_field("nonce").max_length
_PROVIDER_ID_MAX = Message._meta.get_field("provider_message_id").max_length
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # IntegerField (Message.last_sequence, MessageEvent.sequence)
_SMALL_MAX = 32767  # PositiveSmallIntegerField (MessageEvent.part, parts)


def callback_nonce_claim(*, sender_id: int, nonce: str) -> bool:
    """Remember a nonce for this sender; False when it was seen already (a replay) or cannot be kept (longer
    than any nonce a provider sends). Run it in the transaction that applies the callback: if applying fails,
    the nonce is forgotten with the rest and the provider's retry is accepted."""
    if not nonce or len(nonce) > _NONCE_MAX:
        return False
    try:
        with transaction.atomic():
            CallbackNonce.objects.create(sender_id=sender_id, nonce=nonce, seen_at=timezone.now())
    except IntegrityError:
        return False
    return True


def callback_nonces_prune(*, now=None) -> int:
    """Forget nonces older than the replay window. Returns how many were forgotten."""
    before = (now or timezone.now()) - timedelta(seconds=settings.CALLBACK_REPLAY_WINDOW_SECONDS)
    deleted, _ = CallbackNonce.objects.filter(seen_at__lt=before).delete()
    return deleted


def event_problem(event: StatusEvent) -> str:
    """Why a parsed callback event cannot be stored as it is (a value no provider sends, beyond what our
    columns hold), or "" when it can. The webhook answers 400 for such a callback."""
    if len(event.provider_message_id) > _PROVIDER_ID_MAX:
        return "message id too long"
    if event.sequence is not None and not _INT_MIN <= event.sequence <= _INT_MAX:
        return "sequence out of range"
    if not (1 <= event.part <= event.parts <= _SMALL_MAX):
        return "part out of range"
    return ""
