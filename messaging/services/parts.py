"""Messages a provider reports part by part (a long text split into units, each with its own callbacks): the
status of the whole message, combined from the latest status of each part.

Driven only by the parsed events' ``part`` / ``parts`` fields, so any provider that reports parts gets it.
The whole message is undelivered (or failed) as soon as one part is, delivered once every part is, and sent
(or queued) in between. Each part moves forward only: its first final status wins.
"""

from __future__ import annotations

from dataclasses import replace

from ..models import STATUS_RANK, Message, MessageEvent
from ..providers.base import StatusEvent

S = Message.Status


def whole_message_event(event: StatusEvent, *, sender_id: int) -> StatusEvent:
    """``event`` (about one part) as an event about the whole message, from every part callback stored so far
    for that message (``event`` itself included: store it first). The caller holds the message's row lock,
    so two parts reported at once are combined one after the other."""
    if event.parts <= 1:
        return event
    stored = (
        MessageEvent.objects.filter(sender_id=sender_id, provider_message_id=event.provider_message_id,
                                    source=MessageEvent.Source.CALLBACK, parts=event.parts)
        .order_by("id").values_list("part", "status", "error_code", "error_message")
    )
    latest: dict[int, tuple[str, str, str]] = {}
    for part, status, code, text in stored:
        if status not in STATUS_RANK or not 1 <= part <= event.parts:
            continue  # unknown statuses say nothing about the part
        if part not in latest or STATUS_RANK[status] > STATUS_RANK[latest[part][0]]:
            latest[part] = (status, code, text)
    statuses = {part: status for part, (status, _, _) in latest.items()}
    if S.UNDELIVERED in statuses.values():
        combined = S.UNDELIVERED
    elif S.FAILED in statuses.values():
        combined = S.FAILED
    elif len(statuses) == event.parts and all(s == S.DELIVERED for s in statuses.values()):
        combined = S.DELIVERED
    elif any(s in (S.SENT, S.DELIVERED) for s in statuses.values()):
        combined = S.SENT
    else:
        combined = S.QUEUED
    code, text = "", ""
    if combined in (S.UNDELIVERED, S.FAILED):
        worst = next(latest[part] for part in sorted(latest) if latest[part][0] == combined)
        code, text = worst[1], worst[2]
    return replace(event, status=combined, raw_status=f"{event.raw_status} (part {event.part} of {event.parts})",
                   error_code=code, error_message=text)
