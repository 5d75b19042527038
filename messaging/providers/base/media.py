"""Media checks before a message is queued, against the provider's documented limits (``max_media``,
``max_media_bytes``, ``media_limit_is_total``, ``media_types``): files already known (an upload not stored yet)
are checked as they are; a media URL is asked its size and type first (HEAD, through the adapter's own HTTP
layer, which connects to public addresses only: a URL on an internal address is a problem, never asked).
Mixed into ``Provider``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from .errors import ProviderError
from .normalized import HttpCall
from .outbound import OutboundRefusedError

# A server that answers this says nothing about the file's type: the type is taken as not known.
UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True)
class MediaFile:
    """One media file of a message, as far as it is known: ``name`` names it in problems (a file name or a
    URL), ``size`` in bytes (None when not known), ``content_type`` its MIME type without parameters ("" when
    not known), ``refused`` why its URL was not asked (an internal address: a problem, as no provider could
    fetch it either)."""

    name: str
    size: int | None
    content_type: str = ""
    refused: str = ""


def content_type_of(header: str | None) -> str:
    """The MIME type of a Content-Type header value, lower case, without parameters; "" when it says none."""
    value = str(header or "").split(";", 1)[0].strip().lower()
    return "" if value in UNTYPED else value


class MediaChecks:
    """``check_media_files``, ``media_files`` and ``check_media`` for ``Provider``: they read the class
    attributes ``name``, ``media_allowed``, ``max_media``, ``max_media_bytes``, ``media_limit_is_total`` and
    ``media_types``, and call ``request``."""

    media_check_timeout: ClassVar[float] = 3.0  # seconds for each HEAD request (connection included)

    def check_media_files(self, files: list[MediaFile]) -> list[str]:
        """Problems with one message's media files against this provider's documented limits, in plain words
        naming the provider and the limit: media at all, how many, each file's size or the total (when
        ``media_limit_is_total``) and each file's type. A size or type not known is not checked."""
        if not files:
            return []
        refused = _refused_problems(files)
        if not self.media_allowed:
            return [f"{self.name} does not send media with this sender."]
        problems = []
        if self.max_media is not None and len(files) > self.max_media:
            problems.append(f"{self.name} accepts at most {_files(self.max_media)}; this message has "
                            f"{len(files)}.")
        return refused + problems + self._size_problems(files) + self._type_problems(files)

    def accepts_type(self, content_type: str) -> bool:
        """Whether this provider documents this MIME type as accepted; True when it documents no list, or the
        type is not known. ``media_types`` may name a whole kind (``audio/*``)."""
        if self.media_types is None or not content_type:
            return True
        kind = content_type.split("/", 1)[0]
        return content_type in self.media_types or f"{kind}/*" in self.media_types

    def media_files(self, urls: list[str] | tuple[str, ...]) -> tuple[list[MediaFile], list[str]]:
        """One ``MediaFile`` per URL, with the size and type its server gives (HEAD, through this HTTP layer,
        short timeout, redirects followed), and warnings for what could not be learned: an unreachable URL, an
        error answer, no Content-Length, no Content-Type. Nothing is asked when the provider documents neither
        a size limit nor a list of types: the files then have no size and no type."""
        files: list[MediaFile] = []
        warnings: list[str] = []
        if not self.max_media_bytes and self.media_types is None:
            return [MediaFile(str(url), None) for url in urls], warnings
        asked = " and ".join(w for w, on in (("size", self.max_media_bytes), ("type", self.media_types is not None))
                             if on)
        for url in map(str, urls):
            if urlsplit(url).scheme not in ("http", "https"):
                warnings.append(f"{url} is not an http(s) URL; its {asked} could not be checked.")
                files.append(MediaFile(url, None))
                continue
            try:
                status, _, headers = self.request(
                    HttpCall("HEAD", url, allow_redirects=True),
                    timeout=self.media_check_timeout / 2,
                    connect_timeout=self.media_check_timeout / 2,
                )
            except OutboundRefusedError as exc:
                files.append(MediaFile(url, None, refused=exc.message))
                continue
            except ProviderError as exc:
                warnings.append(f"{url} could not be reached to check its {asked} ({exc.message}).")
                files.append(MediaFile(url, None))
                continue
            if status >= 400:
                warnings.append(f"{url} answered HTTP {status}; its {asked} could not be checked.")
                files.append(MediaFile(url, None))
                continue
            length = str(headers.get("content-length") or "").strip()
            content_type = content_type_of(headers.get("content-type"))
            if self.max_media_bytes and not length.isdigit():
                warnings.append(f"{url} did not say its size (no Content-Length); {self.name} accepts at most "
                                f"{_size(self.max_media_bytes)}.")
            if self.media_types is not None and not content_type:
                warnings.append(f"{url} did not say its type (no Content-Type); {self.name} accepts "
                                f"{_types(self.media_types)}.")
            files.append(MediaFile(url, int(length) if length.isdigit() else None, content_type))
        return files, warnings

    def check_media(self, urls: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Ask each media URL its size and type (``media_files``) and compare them with the provider's
        documented ``max_media_bytes`` (per file, or for the whole message when ``media_limit_is_total``) and
        ``media_types``. Returns (problems, warnings): a problem blocks queueing (a file, or the total, over the
        limit, named with its size and the limit; a type the provider does not take); a warning does not
        (what could not be learned). The number of files is ``check_limits``' business."""
        files, warnings = self.media_files(urls)
        refused = _refused_problems(files)
        return refused + self._size_problems(files) + self._type_problems(files), warnings

    def _size_problems(self, files: list[MediaFile]) -> list[str]:
        limit = self.max_media_bytes
        sized = [f for f in files if f.size is not None]
        if not limit or not sized:
            return []
        if self.media_limit_is_total:
            total = sum(f.size for f in sized)
            if total <= limit:
                return []
            listed = ", ".join(f"{f.name} {_size(f.size)}" for f in sized)
            return [f"The media files total {_size(total)} ({listed}); {self.name} accepts at most {_size(limit)} "
                    "in one message."]
        return [f"{f.name} is {_size(f.size)}; {self.name} accepts at most {_size(limit)} per media file."
                for f in sized if f.size > limit]

    def _type_problems(self, files: list[MediaFile]) -> list[str]:
        return [f"{f.name} is {f.content_type}; {self.name} accepts {_types(self.media_types)}."
                for f in files if not self.accepts_type(f.content_type)]


def _refused_problems(files: list[MediaFile]) -> list[str]:
    return [f"{f.name} was not checked ({f.refused}); providers fetch media from public addresses."
            for f in files if f.refused]


def _size(n: int) -> str:
    """Bytes in words: exact, plus MB when large."""
    return f"{n:,} bytes ({n / (1024 * 1024):.1f} MB)" if n >= 1024 * 1024 else f"{n:,} bytes"


def _files(n: int) -> str:
    return "1 media file" if n == 1 else f"{n} media files"


def _types(types: frozenset[str] | None) -> str:
    """The accepted types, images first, in a stable order: ``image/gif, image/jpeg, ..., audio/*``."""
    order = {"image": 0, "video": 1, "audio": 2, "text": 3}
    return ", ".join(sorted(types or (), key=lambda t: (order.get(t.split("/")[0], 4), t.endswith("/*"), t)))
