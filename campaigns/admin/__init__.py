"""Admin of the campaigns app, one module per concern."""

from ..imports import admin as _imports_admin  # noqa: F401  (registers ImportJobAdmin)
from . import campaigns, contacts  # noqa: F401  (register their model admins)
