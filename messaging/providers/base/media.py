"""Media size checks before a message is queued: each media URL is asked its size (HEAD, through the adapter's
own HTTP layer) and compared with the provider's documented limit. Mixed into ``Provider``."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from .errors import ProviderError
from .normalized import HttpCall


class MediaChecks:
    """``check_media`` for ``Provider``: reads the class attributes ``name``, ``max_media_bytes`` and
    ``media_limit_is_total`` and calls ``request``."""

    media_check_timeout: ClassVar[float] = 3.0  # seconds for each HEAD request (connection included)

    def check_media(self, urls: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Ask each media URL its size (HEAD, through this HTTP layer, short timeout) and compare it with the
        provider's documented ``max_media_bytes`` (per file, or for the whole message when
        ``media_limit_is_total``). Returns (problems, warnings): a problem blocks queueing (a file, or the
        total, over the limit: named with its size and the limit); a warning does not (unreachable URL, error
        answer, no Content-Length). Nothing is asked when the provider documents no size limit."""
        problems: list[str] = []
        warnings: list[str] = []
        limit = self.max_media_bytes
        if not urls or not limit:
            return problems, warnings
        sizes: dict[str, int] = {}
        for url in urls:
            if urlsplit(str(url)).scheme not in ("http", "https"):
                warnings.append(f"{url} is not an http(s) URL; its size could not be checked.")
                continue
            try:
                status, _, headers = self.request(
                    HttpCall("HEAD", str(url), allow_redirects=True),
                    timeout=self.media_check_timeout / 2,
                    connect_timeout=self.media_check_timeout / 2,
                )
            except ProviderError as exc:
                warnings.append(f"{url} could not be reached to check its size ({exc.message}).")
                continue
            if status >= 400:
                warnings.append(f"{url} answered HTTP {status}; its size could not be checked.")
                continue
            length = str(headers.get("content-length") or "").strip()
            if not length.isdigit():
                warnings.append(f"{url} did not say its size (no Content-Length); {self.name} accepts at most "
                                f"{_size(limit)}.")
                continue
            sizes[str(url)] = int(length)
            if not self.media_limit_is_total and int(length) > limit:
                problems.append(f"{url} is {_size(int(length))}; {self.name} accepts at most {_size(limit)} per "
                                "media file.")
        if self.media_limit_is_total and sum(sizes.values()) > limit:
            listed = ", ".join(f"{url} {_size(size)}" for url, size in sizes.items())
            problems.append(f"The media files total {_size(sum(sizes.values()))} ({listed}); {self.name} accepts at "
                            f"most {_size(limit)} in one message.")
        return problems, warnings


def _size(n: int) -> str:
    """Bytes in words: exact, plus MB when large."""
    return f"{n:,} bytes ({n / (1024 * 1024):.1f} MB)" if n >= 1024 * 1024 else f"{n:,} bytes"

