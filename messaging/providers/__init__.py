"""The provider registry: one explicit dict from registry code to adapter class.

To add a provider: write ``messaging/providers/<code>.py`` with a ``<Name>Provider`` subclass of
``base.Provider`` whose ``code`` equals the module name, and add it here. Nothing else in the app
names a provider.
"""

from .bandwidth import BandwidthProvider
from .base import Provider, SenderConfig
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


def provider_for(sender) -> Provider:
    """An adapter bound to a ``messaging.Sender`` row (or anything with the same attributes)."""
    cls = provider_class(sender.provider)
    return cls(
        SenderConfig(
            address=sender.address or "",
            credentials=dict(sender.credentials or {}),
            uuid=str(sender.uuid),
            base_url=sender.api_base_url or "",
            options=dict(sender.options or {}),
        )
    )
