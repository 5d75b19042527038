"""The provider registry: one explicit dict from registry code to adapter class.

To add a provider: write ``messaging/providers/<code>.py`` with a ``<Name>Provider`` subclass of
``base.Provider`` whose ``code`` equals the module name, and add it here. Nothing else in the app
names a provider.
"""

from .bandwidth import BandwidthProvider
from .base import ConfigurationError, Provider, SenderConfig
from .cloudvno import CloudvnoProvider
from .fonedynamics import FonedynamicsProvider
from .plivo import PlivoProvider
from .sendblue import SendblueProvider

PROVIDERS: dict[str, type[Provider]] = {
    BandwidthProvider.code: BandwidthProvider,
    CloudvnoProvider.code: CloudvnoProvider,
    FonedynamicsProvider.code: FonedynamicsProvider,
    PlivoProvider.code: PlivoProvider,
    SendblueProvider.code: SendblueProvider,
}


def provider_class(code: str) -> type[Provider]:
    try:
        return PROVIDERS[code]
    except KeyError:
        raise LookupError(f"unknown provider {code!r}") from None


def provider_choices() -> list[tuple[str, str]]:
    return [(code, cls.name) for code, cls in PROVIDERS.items()]


def inbound_url(sender) -> str:
    """The public URL of a sender's inbound-message webhook (the one to paste in a provider's console, and the
    reply webhook Fone Dynamics is given per message from a leased sender)."""
    from django.conf import settings
    from django.urls import reverse

    return f"{settings.PUBLIC_BASE_URL}{reverse('messaging:webhook_inbound', args=[sender.provider, sender.uuid])}"


def sender_problem(sender) -> str:
    """Why this sender cannot be used as stored, in words that name it and never a secret; "" when it can."""
    from ..fields import UNDECRYPTABLE_MESSAGE, is_undecryptable

    label = f"sender {sender.name!r} (id {sender.pk})"
    if is_undecryptable(sender.credentials):
        return f"The {label}: its {UNDECRYPTABLE_MESSAGE} (check CREDENTIALS_KEY)."
    if is_undecryptable(getattr(sender, "callback_password", "")):
        return f"The {label}: its callback password cannot be decrypted with the configured key (check CREDENTIALS_KEY)."
    if "callback_password" in (sender.options or {}):
        return (f"The {label} keeps callback_password in its plain options; enter it in the encrypted "
                "Callback password field instead.")
    return ""


def provider_for(sender) -> Provider:
    """An adapter bound to a ``messaging.Sender`` row (or anything with the same attributes).

    Raises ConfigurationError, naming the sender and never a secret, when its stored secrets cannot be used."""
    problem = sender_problem(sender)
    if problem:
        raise ConfigurationError(problem)
    cls = provider_class(sender.provider)
    return cls(
        SenderConfig(
            address=sender.address or "",
            credentials=dict(sender.credentials or {}),
            uuid=str(sender.uuid),
            base_url=sender.api_base_url or "",
            options=dict(sender.options or {}),
            callback_password=str(getattr(sender, "callback_password", "") or ""),
            inbound_url=inbound_url(sender) if getattr(sender, "uuid", None) else "",
        )
    )
