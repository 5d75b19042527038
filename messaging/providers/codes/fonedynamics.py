"""Fone Dynamics' error codes: none is documented; docs/providers.md, Fone Dynamics: Errors, and Error causes.

Errors come as HTTP 400 with ``{"ResponseStatus": {"ErrorCode", "Message", "Errors": [...]}}`` (the SDKs'
ServiceStack shape), and message records carry an ``ErrorCode``, but the "REST API Error Codes" page they point
to is not public, so no code's meaning is known. The table is therefore empty: a refused request gets its cause
from its HTTP status (``codes.error_cause(..., http_status=...)``) and any code Fone Dynamics sends gets the
unknown cause, stored with the provider's own text. Entries belong here once a code's meaning is documented.
"""

from __future__ import annotations

from ..base import ErrorCode

ERRORS: dict[str, ErrorCode] = {}
