"""``find`` over a provider's list endpoint, read page by page: how an ambiguous send is looked for among the
messages the provider lists for a time window. Mixed into ``Provider``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import LookupInconclusiveError
from .normalized import HttpCall, StatusEvent


class PagedFind:
    """``find_in_pages`` for ``Provider``: calls ``request``, ``_raise_for`` and ``parse_lookup``."""

    def find_in_pages(
        self,
        first: HttpCall,
        *,
        items: Callable[[Any], list | None],
        matches: Callable[[dict], bool],
        next_call: Callable[[HttpCall, Any, dict, list], HttpCall | None],
        max_pages: int,
        unique: bool,
    ) -> StatusEvent | None:
        """``find`` over a list endpoint read page by page.

        ``items(data)`` is a page's list of resources (None when the answer is not a list we can read);
        ``matches(item)`` says whether a resource is the message we look for; ``next_call(call, data, headers,
        rows)`` is the request for the following page, or None once the provider says the window is exhausted.
        ``unique``: the match is on recipient, sender and time only (no id of ours), so two candidates mean we
        cannot tell which one is ours. Returns ``parse_lookup`` of the match, or None when every page of the
        window was read without one."""
        found: list[dict] = []
        call: HttpCall | None = first
        pages = 0
        while call is not None:
            if pages >= max_pages:
                raise LookupInconclusiveError(
                    f"read {max_pages} pages of {self.name}'s message list without covering the whole window",
                    provider=self.code,
                )
            status, data, headers = self.request(call)
            self._raise_for(status, data, headers)
            pages += 1
            rows = items(data)
            if rows is None:
                raise LookupInconclusiveError(f"{self.name}'s message list answer is not readable",
                                              provider=self.code, http_status=status)
            found += [row for row in rows if isinstance(row, dict) and matches(row)]
            if found and not unique:
                break
            if len(found) > 1:
                break
            call = next_call(call, data, headers, rows)
        if len(found) > 1 and unique:
            raise LookupInconclusiveError(
                f"{len(found)} messages to this recipient from this sender in the window: cannot tell which is ours",
                provider=self.code,
            )
        if not found:
            return None
        event = self.parse_lookup(found[0])
        if event is None:
            raise LookupInconclusiveError(f"{self.name} listed a matching message we cannot read", provider=self.code)
        return event

