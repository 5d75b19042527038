"""Senders created by code rather than staff (development data)."""

from __future__ import annotations

from ..models import Sender


def sender_ensure(*, name: str, provider: str, address: str, credentials: dict, api_base_url: str = "",
                  mps: float = 1.0) -> Sender:
    """The sender of this name, created with these settings when missing; its API base URL is kept up to
    date (the local emulator may move to another port)."""
    sender, _created = Sender.objects.get_or_create(
        name=name,
        defaults={"provider": provider, "address": address, "credentials": credentials,
                  "api_base_url": api_base_url, "mps": mps},
    )
    if sender.api_base_url != api_base_url:
        Sender.objects.filter(pk=sender.pk).update(api_base_url=api_base_url)
        sender.api_base_url = api_base_url
    return sender
