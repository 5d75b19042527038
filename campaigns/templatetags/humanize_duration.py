"""Template filters for the campaign pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds in words: "under a minute", "about 12 minutes", "about 3 h 20 min", "about 2 days 4 h"."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return ""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    days, hours = divmod(hours, 24)
    return f"about {days} day{'s' if days != 1 else ''} {hours} h" if hours else f"about {days} days"


@register.filter
def money(amount) -> str:
    """An amount with cents, and up to four decimals when it is small (0.022, 1.50, 1,234.57)."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(amount)
    except (TypeError, ValueError, InvalidOperation):
        return ""
    if abs(amount) >= 10:
        return f"{amount:,.2f}"
    text = f"{amount:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"
