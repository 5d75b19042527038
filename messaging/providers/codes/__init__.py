"""Each provider's documented error codes, mapped to the error causes (``base.causes``).

One module per provider, each with one table ``ERRORS`` from the provider's code (as a string: ``"30"``,
``"4001"``, ``"message-rate-limit"``) to an ``ErrorCode``: our cause and the provider's documented meaning. The
codes, their meanings and our mapping are written out in docs/providers.md, Error causes.

``error_cause`` reads a code in this order: the provider's table; then, for an answer that is an HTTP error, the
HTTP status; then no code at all means no error; any other code is undocumented and its cause unknown.
"""

from __future__ import annotations

from ..base import ErrorCode, clean_error_code
from ..base.causes import ACCOUNT, CAUSES, RATE_LIMITED, UNKNOWN, UNREACHABLE
from . import bandwidth, cloudvno, fonedynamics, plivo, sendblue

TABLES: dict[str, dict[str, ErrorCode]] = {
    "bandwidth": bandwidth.ERRORS,
    "cloudvno": cloudvno.ERRORS,
    "fonedynamics": fonedynamics.ERRORS,
    "plivo": plivo.ERRORS,
    "sendblue": sendblue.ERRORS,
}


def _entry(provider: str, code: object) -> ErrorCode | None:
    return TABLES.get(provider, {}).get(clean_error_code(code))


def cause_for_http_status(http_status: int) -> str:
    """The cause an HTTP error status gives when the code does not: 401 and 403 are the account's, 429 a rate
    limit, 5xx the provider's trouble (worth trying later), any other 4xx unknown; "" below 400."""
    if http_status in (401, 403):
        return ACCOUNT
    if http_status == 429:
        return RATE_LIMITED
    if 500 <= http_status <= 599:
        return UNREACHABLE
    if http_status >= 400:
        return UNKNOWN
    return ""


def error_cause(provider: str, code: str | int | None, *, http_status: int | None = None) -> str:
    """The cause of ``provider``'s error ``code``, "" when there is no error.

    A code in the provider's table gives its cause, whatever the HTTP status (Bandwidth answers its rate limits
    with 403 and a rate-limit code: rate limited, not the account). Otherwise an HTTP error status decides (see
    ``cause_for_http_status``); Plivo's REST errors, which carry only text, are read this way. Without an error
    status, a code that means "no error" (None, "", "0", "000") gives "", and any other code, undocumented,
    gives unknown. A provider that is not registered has an empty table; this never raises.
    """
    entry = _entry(provider, code)
    if entry is not None:
        return entry.cause
    if http_status is not None and http_status >= 400:
        return cause_for_http_status(http_status)
    return UNKNOWN if clean_error_code(code) else ""


def error_meaning(provider: str, code: str | int | None) -> str:
    """What ``provider`` documents ``code`` to mean, in plain words; "" for a code it does not document."""
    entry = _entry(provider, code)
    return entry.meaning if entry is not None else ""


def table_summary() -> dict[str, dict[str, int]]:
    """Per provider, how many documented codes map to each cause (causes in their usual order, only those with
    at least one code)."""
    summary: dict[str, dict[str, int]] = {}
    for provider, table in TABLES.items():
        counts = {cause: 0 for cause in CAUSES}
        for entry in table.values():
            counts[entry.cause] += 1
        summary[provider] = {cause: count for cause, count in counts.items() if count}
    return summary


__all__ = ["TABLES", "cause_for_http_status", "error_cause", "error_meaning", "table_summary"]
