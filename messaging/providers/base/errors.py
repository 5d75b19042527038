"""The errors a provider call can end in. Transient (retry later), permanent (fail now) and ambiguous (the
provider may have accepted the message) are three different classes; each carries the provider, the HTTP status
and the redacted answer, never a secret. Also the errors of a lookup that cannot tell, a refused callback
signature and a sender that lacks something."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call did not succeed. Carries context, never secrets."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        http_status: int | None = None,
        code: str = "",
        response: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.http_status = http_status
        self.code = code
        self.response = response  # redacted, truncated

    def __str__(self) -> str:
        parts = [self.provider or "provider", self.kind]
        if self.http_status:
            parts.append(f"HTTP {self.http_status}")
        if self.code:
            parts.append(f"code {self.code}")
        return f"{' '.join(parts)}: {self.message}"


class TransientError(ProviderError):
    """Try again later: 429 (with its hint), 5xx, connection refused before the request was written.

    ``rate_limited`` marks the provider asking us to slow down (429, or a provider's own rate-limit code):
    the sender is slowed for every worker, and the attempt does not count against the message."""

    kind = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, rate_limited: bool | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.rate_limited = (self.http_status == 429) if rate_limited is None else rate_limited


class PermanentError(ProviderError):
    """Fail now: invalid number, opted out, content rejected, bad credentials."""

    kind = "permanent"

    def __init__(self, message: str, *, recipient_side: bool = False, **kwargs):
        super().__init__(message, **kwargs)
        # True when the fault is the recipient's (invalid number, opted out): failover won't help.
        self.recipient_side = recipient_side


class AmbiguousError(ProviderError):
    """The provider may have accepted the message: timeout or connection lost after the request was written."""

    kind = "ambiguous"


class LookupInconclusiveError(ProviderError):
    """``find`` cannot tell whether the provider has the message: the list ran past its page cap, did not cover
    the whole time window, was unreadable, or several of its messages match. Never a reason to send again:
    retry the lookup later or flag the message for staff."""

    kind = "inconclusive"


class SignatureError(Exception):
    """A callback's signature is missing or wrong."""


class ConfigurationError(Exception):
    """The sender lacks something the provider needs (credential key, address)."""
