"""Creating senders: by code (development data, tests) and the defaults staff get in the admin. A sender whose
callbacks are proven by HTTP Basic credentials (providers that sign nothing) gets a random callback password
when it is created: its callbacks are refused without one."""

from __future__ import annotations

import secrets

from ..models import Sender
from ..providers import provider_class


def callback_password_new() -> str:
    """A random callback password: 32 URL-safe characters (no ':', so it fits HTTP Basic and a URL as is)."""
    return secrets.token_urlsafe(24)


def callback_password_needed(*, provider: str, options: dict | None) -> bool:
    """Whether a sender of this provider with these options needs a callback password."""
    try:
        cls = provider_class(provider)
    except LookupError:
        return False
    return cls.callback_password_needed(options or {})


KEYWORD_SETTINGS = ("opt_out_keywords", "opt_in_keywords", "help_keywords", "opt_out_text", "opt_in_text",
                    "help_text_reply", "provider_answers_keywords")


def sender_create(*, name: str, provider: str, address: str = "", credentials: dict | None = None,
                  api_base_url: str = "", options: dict | None = None, mps: float = 1.0, is_active: bool = True,
                  callback_password: str = "", **keywords) -> Sender:
    """A new sender. One that needs a callback password and is given none gets a random one. ``keywords``: any
    of KEYWORD_SETTINGS (the others keep their defaults)."""
    unknown = set(keywords) - set(KEYWORD_SETTINGS)
    if unknown:
        raise TypeError(f"sender_create() got unexpected settings: {', '.join(sorted(unknown))}")
    if not callback_password and callback_password_needed(provider=provider, options=options):
        callback_password = callback_password_new()
    return Sender.objects.create(
        name=name, provider=provider, address=address, credentials=credentials or {}, api_base_url=api_base_url,
        options=options or {}, mps=mps, is_active=is_active, callback_password=callback_password, **keywords,
    )


def sender_ensure(*, name: str, provider: str, address: str, credentials: dict, api_base_url: str = "",
                  mps: float = 1.0) -> Sender:
    """The sender of this name, created with these settings when missing (``sender_create``); its API base URL
    is kept up to date (the local emulator may move to another port)."""
    sender = Sender.objects.filter(name=name).first()
    if sender is None:
        return sender_create(name=name, provider=provider, address=address, credentials=credentials,
                             api_base_url=api_base_url, mps=mps)
    if sender.api_base_url != api_base_url:
        Sender.objects.filter(pk=sender.pk).update(api_base_url=api_base_url)
        sender.api_base_url = api_base_url
    return sender
