"""A campaign's media (MMS): files uploaded here or public URLs, checked against each chosen sender's provider
limits, stored through Django's storage API and served publicly so that providers can fetch them.

- ``media_file`` / ``media_store``: an upload's type is read from its first bytes (never from the browser), unknown
  types and files over ``MAX_UPLOAD_BYTES`` are refused, and the file is stored under an unguessable folder.
- ``media_problems``: what each chosen sender's provider would refuse (through messaging's selectors).
- ``MediaField`` (its widget ``MediaWidget``), ``MediaValue``, ``media_save``: the form field of the campaign
  form; ``media_links_html`` for read-only display.
- ``media_serve``: the public view answering the stored files (routed in config/urls.py).
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.http import FileResponse, Http404, HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from messaging import selectors as messaging_selectors
from messaging.providers.base import MediaFile

MEDIA_DIR = "campaign-media"
# Our own cap on an upload: the largest file it makes sense to keep for an MMS. Each provider's own documented
# limit (5 MB for Plivo and Sendblue) is checked per sender by ``media_problems``.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
HEAD_BYTES = 512  # how much of a file is read to tell its type

# ---- the type of a file, from its first bytes ----


@dataclass(frozen=True)
class Kind:
    content_type: str
    extension: str
    label: str


JPEG = Kind("image/jpeg", "jpg", "JPEG")
PNG = Kind("image/png", "png", "PNG")
GIF = Kind("image/gif", "gif", "GIF")
WEBP = Kind("image/webp", "webp", "WebP")
BMP = Kind("image/bmp", "bmp", "BMP")
MP4 = Kind("video/mp4", "mp4", "MP4")
M4A = Kind("audio/mp4", "m4a", "MP4 audio")
THREE_GP = Kind("video/3gpp", "3gp", "3GP")
THREE_G2 = Kind("video/3gpp2", "3g2", "3GP")
MP3 = Kind("audio/mpeg", "mp3", "MP3")
WAV = Kind("audio/wav", "wav", "WAV")
PDF = Kind("application/pdf", "pdf", "PDF")
VCARD = Kind("text/vcard", "vcf", "vCard")
TEXT = Kind("text/plain", "txt", "plain text")
KINDS = (JPEG, PNG, GIF, WEBP, BMP, MP4, M4A, THREE_GP, THREE_G2, MP3, WAV, PDF, VCARD, TEXT)
KNOWN = "JPEG, PNG, GIF, WebP, BMP, MP4, 3GP, MP3, WAV, PDF, vCard or plain text"

# Signatures at fixed offsets: (offset, bytes, kind). RIFF and ISO media files are told apart further in.
SIGNATURES = (
    (0, b"\xff\xd8\xff", JPEG),
    (0, b"\x89PNG\r\n\x1a\n", PNG),
    (0, b"GIF87a", GIF),
    (0, b"GIF89a", GIF),
    (0, b"%PDF-", PDF),
    (0, b"ID3", MP3),  # an MP3 file that starts with ID3v2 tags
)
RIFF = {b"WEBP": WEBP, b"WAVE": WAV}  # "RIFF", 4 bytes of size, then the form type
ISO_BRANDS = {  # the major brand after "ftyp" at offset 4
    b"isom": MP4, b"iso2": MP4, b"iso4": MP4, b"iso5": MP4, b"iso6": MP4, b"mp41": MP4, b"mp42": MP4,
    b"avc1": MP4, b"M4V ": MP4, b"MSNV": MP4, b"dash": MP4, b"M4A ": M4A,
    b"3gp4": THREE_GP, b"3gp5": THREE_GP, b"3gp6": THREE_GP, b"3gp7": THREE_GP, b"3gs7": THREE_GP,
    b"3g2a": THREE_G2, b"3g2b": THREE_G2, b"3g2c": THREE_G2,
}
BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # the DIB header sizes a BMP file can have at offset 14
TEXT_CONTROLS = set(range(32)) - {9, 10, 12, 13}


def sniff(head: bytes) -> Kind | None:
    """The kind of a file from its first bytes (``HEAD_BYTES`` of them); None when it is none we store."""
    for offset, signature, kind in SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in RIFF:
        return RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        return ISO_BRANDS.get(head[8:12])
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in BMP_HEADER_SIZES:
        return BMP
    if _mp3_frame(head):
        return MP3
    text = _text(head)
    if text is None:
        return None
    return VCARD if text.lstrip("\ufeff \t\r\n").upper().startswith("BEGIN:VCARD") else TEXT


def _mp3_frame(head: bytes) -> bool:
    """An MPEG audio layer III frame header: sync bits, a valid bitrate and sample rate."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    return (head[1] >> 1) & 3 == 1 and (head[2] >> 4) not in (0, 15) and (head[2] >> 2) & 3 != 3


def _text(head: bytes) -> str | None:
    """The start of a UTF-8 text without control characters; None when the bytes are not that."""
    if not head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end of what was read
            return None
        text = head[:exc.start].decode("utf-8")
    return None if any(ord(c) in TEXT_CONTROLS or ord(c) == 127 for c in text) else text


# ---- uploads: checked, stored ----


class MediaError(ValueError):
    """An upload we refuse to store; the message says why, in plain words."""


def _head(file) -> bytes:
    file.seek(0)
    head = file.read(HEAD_BYTES)
    file.seek(0)
    return head


def _upload_kind(upload: UploadedFile) -> Kind:
    name = upload.name or "The file"
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise MediaError(f"{name} is {upload.size / (1024 * 1024):.1f} MB; files up to "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB can be uploaded.")
    if not upload.size:
        raise MediaError(f"{name} is empty.")
    kind = sniff(_head(upload))
    if kind is None:
        raise MediaError(f"{name} is not a type that can be sent as media ({KNOWN}).")
    return kind


def media_file(upload: UploadedFile) -> MediaFile:
    """An upload as the providers' checks see it (its name, size and the type read from its first bytes).
    Raises MediaError for a type we do not store or a file over ``MAX_UPLOAD_BYTES``."""
    return MediaFile(upload.name or "upload", upload.size, _upload_kind(upload).content_type)


def safe_name(name: str, extension: str) -> str:
    """A file name made of ASCII letters, digits, ``-`` and ``_``, ending with the extension of its real type
    (``../My photo!.PHP.png`` -> ``My-photo-PHP.png``)."""
    base = re.split(r"[\\/]", name or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:60] or "media"
    return f"{stem}.{extension}"


def public_url(name: str) -> str:
    """The URL a provider fetches a stored file at: ``PUBLIC_BASE_URL`` and the storage's URL (MEDIA_URL)."""
    url = default_storage.url(name)
    return url if urlsplit(url).scheme else f"{settings.PUBLIC_BASE_URL}/{url.lstrip('/')}"


def media_store(upload: UploadedFile) -> str:
    """Store an upload through Django's storage API under ``campaign-media/<random>/<safe name>`` and return
    its public URL. Raises MediaError for a type we do not store or a file over ``MAX_UPLOAD_BYTES``."""
    kind = _upload_kind(upload)
    name = default_storage.save(f"{MEDIA_DIR}/{secrets.token_urlsafe(16)}/{safe_name(upload.name, kind.extension)}",
                                upload)
    return public_url(name)


# ---- what the chosen senders' providers would refuse ----


def media_problems(*, senders, urls: list[str], uploads: list[MediaFile], ask_servers: bool = True) -> list[str]:
    """What each chosen sender's provider would refuse in one message carrying these URLs and uploads, in plain
    words naming the provider and its limit: media at all, how many, sizes, types. With ``ask_servers`` each URL
    is asked its size and type (HEAD, a short timeout: call it outside a transaction); without, URLs only count.
    A URL whose server does not answer is not a problem here (the campaign page and launch warn about it)."""
    if not urls and not uploads:
        return []
    if ask_servers:
        problems, _warnings = messaging_selectors.senders_media_file_problems(
            senders=list(senders), files=list(uploads), urls=list(urls))
    else:
        problems, _warnings = messaging_selectors.senders_media_file_problems(
            senders=list(senders), files=[*(MediaFile(url, None) for url in urls), *uploads])
    return problems


# ---- the form field ----


@dataclass(frozen=True)
class MediaValue:
    """What ``MediaField`` cleans to: the URLs to keep (current ones not removed, then new ones), the uploads to
    store once the form is valid (``media_save``), and the uploads as the providers' checks see them."""

    urls: list[str] = field(default_factory=list)
    uploads: list[UploadedFile] = field(default_factory=list)
    files: list[MediaFile] = field(default_factory=list)


@dataclass
class _Entered:
    current: list[str]
    remove: set[str]
    text: str
    uploads: list


def _as_urls(value) -> list[str]:
    """A list of URLs from what a field's initial value can be: a list, a JSON list, lines of text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = value.splitlines()
    if not isinstance(value, list | tuple):
        return []
    return [str(url).strip() for url in value if str(url).strip()]


def _entered(value) -> _Entered:
    if isinstance(value, MediaValue):
        return _Entered(list(value.urls), set(), "", [])
    if isinstance(value, dict):
        return _Entered(_as_urls(value.get("current")), set(value.get("remove") or ()), value.get("urls") or "",
                        list(value.get("uploads") or ()))
    return _Entered(_as_urls(value), set(), "", [])


# The admin's aligned forms give every label a fixed width: these (class media-inline-label, in
# static/campaigns/campaign.css) sit beside their own inputs instead. No inline style: see the content security policy.
INLINE_LABEL_CLASS = "media-inline-label"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")


def _thumbnail_src(url: str) -> str | None:
    """Where the thumbnail of a media URL loads from: the path of an image stored and served here (the page's own
    origin, which the content security policy allows). None for a file on another host, shown as a link only:
    staff browsers never fetch other hosts' files on their own."""
    parts, base = urlsplit(url), urlsplit(settings.PUBLIC_BASE_URL)
    stored = f"/{settings.MEDIA_URL.strip('/')}/{MEDIA_DIR}/"
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(stored):
        return None
    return parts.path if parts.path.lower().endswith(IMAGE_EXTENSIONS) else None


def _link(url: str) -> SafeString:
    """A link to one media file, with a thumbnail when it is an image stored here."""
    path = urlsplit(url).path
    label = unquote(path.rsplit("/", 1)[-1]) or url
    thumbnail = _thumbnail_src(url)
    if thumbnail:
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer" title="{}"><img src="{}" alt="" '
                           'loading="lazy" class="media-thumb">{}</a>', url, url, thumbnail, label)
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer" title="{}">{}</a>', url, url, label)


def media_links_html(urls) -> SafeString:
    """A campaign's media as a list of links (thumbnails for images), for read-only display; "-" when none."""
    urls = _as_urls(urls)
    if not urls:
        return mark_safe("-")
    items = format_html_join("", "<li>{}</li>", ((_link(url),) for url in urls))
    return format_html('<ul class="media-links">{}</ul>', items)


class MediaWidget(forms.Widget):
    """The current media as links, each with a box to remove it; a file input (several files) to upload; a
    text area for more URLs, one per line. Its data: ``<name>_current`` (hidden, one per current URL),
    ``<name>_remove``, ``<name>_upload`` and ``<name>_urls``."""

    needs_multipart_form = True
    accept = ",".join(sorted({kind.content_type for kind in KINDS} | {f".{kind.extension}" for kind in KINDS}))

    def value_from_datadict(self, data, files, name):
        def many(source, key):
            return list(source.getlist(key)) if hasattr(source, "getlist") else list(source.get(key) or ())

        return {"current": many(data, f"{name}_current"), "remove": many(data, f"{name}_remove"),
                "urls": data.get(f"{name}_urls") or "", "uploads": many(files, f"{name}_upload")}

    def value_omitted_from_data(self, data, files, name):
        return not any(f"{name}_{part}" in source for part, source in
                       (("current", data), ("remove", data), ("urls", data), ("upload", files)))

    def id_for_label(self, id_):
        return f"{id_}_upload" if id_ else id_

    def render(self, name, value, attrs=None, renderer=None):
        entered = _entered(value)
        base_id = (attrs or {}).get("id") or self.attrs.get("id") or f"id_{name}"
        if entered.current:
            rows = format_html_join("", '<li><input type="hidden" name="{}" value="{}">{} <label class="{}">'
                                        '<input type="checkbox" name="{}" value="{}"{}> Remove</label></li>',
                                    ((f"{name}_current", url, _link(url), INLINE_LABEL_CLASS, f"{name}_remove", url,
                                      mark_safe(" checked") if url in entered.remove else "")
                                     for url in entered.current))
            current = format_html('<ul class="media-current">{}</ul>', rows)
        else:
            current = format_html('<p class="help">{}</p>', "No media yet.")
        return format_html(
            '<div class="media-field" id="{}">{}'
            '<p><label for="{}_upload" class="{}">Upload files:</label> '
            '<input type="file" name="{}_upload" id="{}_upload" multiple accept="{}"></p>'
            '<p><label for="{}_urls" class="{}">Add media URLs, one per line:</label><br>'
            '<textarea name="{}_urls" id="{}_urls" rows="2" cols="60">\n{}</textarea></p></div>',
            base_id, current, base_id, INLINE_LABEL_CLASS, name, base_id, self.accept, base_id, INLINE_LABEL_CLASS, name,
            base_id,
            entered.text)


class MediaField(forms.Field):
    """A campaign's media: cleans to a ``MediaValue`` (the final URLs, and the uploads to store with
    ``media_save`` once the form is valid). Its initial value is the list of current URLs."""

    widget = MediaWidget
    default_error_messages = {"required": "Upload a file or enter a media URL."}

    def clean(self, value) -> MediaValue:
        entered = _entered(value)
        validate = URLValidator(schemes=["http", "https"])
        errors: list[str] = []
        urls: list[str] = []
        for url in entered.current:
            if url in entered.remove or url in urls:
                continue
            try:
                validate(url)
            except forms.ValidationError:
                errors.append(f"{url} is not an http(s) URL.")
            urls.append(url)
        for number, line in enumerate(entered.text.splitlines(), start=1):
            url = line.strip()
            if not url or url in urls:
                continue
            try:
                validate(url)
            except forms.ValidationError:
                errors.append(f"Line {number} is not an http(s) URL: {url}")
            urls.append(url)
        uploads, files = [], []
        for upload in entered.uploads:
            try:
                files.append(media_file(upload))
            except MediaError as exc:
                errors.append(str(exc))
            uploads.append(upload)
        if errors:
            raise forms.ValidationError(errors)
        if self.required and not urls and not uploads:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return MediaValue(urls=urls, uploads=uploads, files=files)

    def has_changed(self, initial, data) -> bool:
        if self.disabled:
            return False
        entered = _entered(data)
        return bool(entered.remove or entered.text.strip() or entered.uploads
                    or entered.current != _as_urls(initial))


def media_save(value: MediaValue) -> list[str]:
    """The campaign's final media URLs: the kept and new URLs, then each upload stored (``media_store``). Call
    it once the form is valid."""
    return [*value.urls, *(media_store(upload) for upload in value.uploads)]


# ---- serving: public, so that providers can fetch the files ----

STORED_PATH = re.compile(r"[A-Za-z0-9_-]{16,64}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


@require_safe
def media_serve(request: HttpRequest, path: str) -> FileResponse:
    """A stored campaign media file, to anyone (providers fetch it without logging in): ``<random>/<name>`` under
    ``campaign-media/`` only, with the type read from its first bytes; 404 for anything else."""
    if not STORED_PATH.fullmatch(path):
        raise Http404("No such media file.")
    try:
        file = default_storage.open(f"{MEDIA_DIR}/{path}", "rb")
    except (OSError, SuspiciousFileOperation):
        raise Http404("No such media file.") from None
    kind = sniff(_head(file))
    if kind is None:
        file.close()
        raise Http404("No such media file.")
    response = FileResponse(file, content_type=kind.content_type, filename=path.rsplit("/", 1)[-1])
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "public, max-age=31536000, immutable"  # a stored file never changes
    return response
