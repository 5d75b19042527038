"""Campaign media: uploads are typed by their first bytes, refused when unknown or too large, stored under an
unguessable name and served to anyone (providers fetch them without logging in); the form field shows the
current media as links and cleans removals, new URLs and uploads; each chosen sender's provider limits apply."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

from campaigns.media import (
    MAX_UPLOAD_BYTES,
    MediaError,
    MediaField,
    MediaValue,
    media_file,
    media_links_html,
    media_problems,
    media_save,
    media_store,
    safe_name,
)
from messaging.providers.base import MediaFile

MB = 1024 * 1024

SAMPLES = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(64),
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
    "image/gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(32),
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32),
    "image/bmp": b"BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00" + bytes(40),
    "video/mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(32),
    "video/3gpp": b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x00" + bytes(32),
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(32),
    "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32),
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "text/vcard": b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Example\r\nEND:VCARD\r\n",
    "text/plain": "Spring sale: 20% off, été compris.\n".encode(),
}


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://campaigns.example.com"
    return settings.MEDIA_ROOT


def upload(name: str, content: bytes, claimed: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=claimed)


# ---- storing an upload ----


def test_an_upload_is_stored_under_an_unguessable_folder_and_answered_publicly(media_root, client):
    url = media_store(upload("Logo.png", SAMPLES["image/png"]))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://campaigns.example.com"
    folder, name = parts.path.removeprefix("/media/campaign-media/").split("/")
    assert name == "Logo.png" and len(folder) >= 22
    assert (media_root / "campaign-media" / folder / name).read_bytes() == SAMPLES["image/png"]
    # the same file again gets another URL: nothing to guess from a name
    assert media_store(upload("Logo.png", SAMPLES["image/png"])) != url

    response = client.get(parts.path)  # not logged in, as a provider fetching it
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == SAMPLES["image/png"]
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    assert "max-age" in response["Cache-Control"]
    assert response["Content-Length"] == str(len(SAMPLES["image/png"]))
    head = client.head(parts.path)  # what a provider's size check asks
    assert head.status_code == 200 and head["Content-Length"] == str(len(SAMPLES["image/png"]))
    assert reverse("campaign_media", args=[f"{folder}/{name}"]) == parts.path


@pytest.mark.parametrize("content_type", SAMPLES)
def test_the_type_is_read_from_the_first_bytes_not_from_the_browser(media_root, client, content_type):
    file = upload("whatever.png", SAMPLES[content_type], claimed="image/png")
    assert media_file(file) == MediaFile("whatever.png", len(SAMPLES[content_type]), content_type)
    path = urlsplit(media_store(file)).path
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"] == content_type


def test_a_pdf_named_png_is_stored_and_served_as_a_pdf(media_root, client):
    path = urlsplit(media_store(upload("photo.png", SAMPLES["application/pdf"]))).path
    assert path.endswith("/photo.pdf")
    assert client.get(path)["Content-Type"] == "application/pdf"


@pytest.mark.parametrize("content", [
    b"\x00\x01\x02\x03\x04binary data\xff\xfe",
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00",  # a Windows program
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00",  # a zip archive
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",  # HEIC: an ISO file, but not a video
])
def test_an_unknown_type_is_refused_with_a_clear_message(media_root, content):
    with pytest.raises(MediaError) as refused:
        media_store(upload("thing.png", content))
    assert str(refused.value).startswith("thing.png is not a type that can be sent as media (JPEG, PNG")
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_a_file_over_the_upload_limit_or_empty_is_refused(media_root):
    big = upload("huge.jpg", SAMPLES["image/jpeg"] + bytes(MAX_UPLOAD_BYTES))
    with pytest.raises(MediaError, match=r"huge.jpg is 10.0 MB; files up to 10 MB can be uploaded."):
        media_store(big)
    with pytest.raises(MediaError, match="empty.png is empty"):
        media_file(upload("empty.png", b""))
    jpeg = SAMPLES["image/jpeg"]
    assert media_file(upload("limit.jpg", jpeg + bytes(MAX_UPLOAD_BYTES - len(jpeg)))).size == MAX_UPLOAD_BYTES


@pytest.mark.parametrize(("name", "extension", "safe"), [
    ("../../etc/passwd", "txt", "passwd.txt"),
    ("..\\..\\boot.ini", "txt", "boot.txt"),
    ("My photo!.PHP.png", "png", "My-photo-PHP.png"),
    ("été à la plage.jpg", "jpg", "ete-a-la-plage.jpg"),
    (".htaccess", "txt", "htaccess.txt"),
    ("<script>.gif", "gif", "script.gif"),
    ("", "jpg", "media.jpg"),
    ("x" * 300 + ".png", "png", "x" * 60 + ".png"),
])
def test_file_names_are_made_safe_and_end_with_the_real_type(name, extension, safe):
    assert safe_name(name, extension) == safe


def test_a_hostile_name_stays_inside_its_folder(media_root):
    url = media_store(upload("../../../outside.txt", SAMPLES["text/plain"]))
    stored = [p for p in media_root.rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].parent.parent == media_root / "campaign-media"
    assert url.endswith("/outside.txt")


# ---- serving: only stored campaign media ----


def test_nothing_else_is_served(media_root, client):
    path = urlsplit(media_store(upload("a.png", SAMPLES["image/png"]))).path
    folder = path.split("/")[3]
    (media_root / "private").mkdir()
    (media_root / "private" / "secret.txt").write_text("secret")
    (media_root / "campaign-media" / folder / ".hidden.txt").write_text("hidden")
    odd = media_root / "campaign-media" / "AAAAAAAAAAAAAAAAAAAAAA"
    odd.mkdir()
    (odd / "program.txt").write_bytes(b"MZ\x90\x00\x03\x00binary")  # not a type we store
    for bad in [
        "/media/private/secret.txt",
        "/media/campaign-media/../private/secret.txt",
        "/media/campaign-media/%2e%2e/private/secret.txt",
        f"/media/campaign-media/{folder}/..%2f..%2fprivate%2fsecret.txt",
        f"/media/campaign-media/{folder}/../../private/secret.txt",
        f"/media/campaign-media/{folder}/",  # no listing of a folder
        "/media/campaign-media/",
        f"/media/campaign-media/{folder}",
        f"/media/campaign-media/{folder}/.hidden.txt",
        f"/media/campaign-media/{folder}/missing.png",
        "/media/campaign-media/AAAAAAAAAAAAAAAAAAAAAA/program.txt",
    ]:
        assert client.get(bad).status_code == 404, bad
    assert client.post(path).status_code == 405


# ---- the form field ----


class CampaignMediaForm(forms.Form):
    media = MediaField(required=False)


CURRENT = ["https://cdn.example.com/sale/banner.png", "https://cdn.example.com/sale/terms.pdf"]


def test_the_field_shows_the_current_media_as_links_with_a_box_to_remove_each(settings):
    stored = f"{settings.PUBLIC_BASE_URL}/media/campaign-media/{'a' * 22}/photo.png"
    html = str(CampaignMediaForm(initial={"media": [*CURRENT, stored]})["media"])
    assert '<a href="https://cdn.example.com/sale/banner.png"' in html
    # A thumbnail for an image stored here, loaded from this site (the content security policy allows no other);
    # another host's image and the PDF are links only.
    assert f'<img src="/media/campaign-media/{"a" * 22}/photo.png"' in html and html.count("<img") == 1
    assert "style=" not in html
    assert '<a href="https://cdn.example.com/sale/terms.pdf"' in html and ">terms.pdf</a>" in html
    assert html.count('type="checkbox" name="media_remove"') == 3
    assert 'type="file" name="media_upload"' in html and " multiple" in html
    assert '<textarea name="media_urls"' in html
    assert "[" not in html and "]" not in html
    assert CampaignMediaForm().is_multipart()


@pytest.mark.parametrize("initial", [[], "[]", None, ""])
def test_no_media_is_said_in_words_never_as_brackets(initial):
    html = str(CampaignMediaForm(initial={"media": initial})["media"])
    assert "No media yet." in html and "[]" not in html and "None" not in html


def bound(data: dict, files: dict | None = None) -> CampaignMediaForm:
    return CampaignMediaForm(MultiValueDict({k: v if isinstance(v, list) else [v] for k, v in data.items()}),
                             MultiValueDict({k: v if isinstance(v, list) else [v] for k, v in (files or {}).items()}))


def test_clean_keeps_what_is_not_removed_adds_new_urls_and_holds_uploads_until_saved(media_root):
    form = bound(
        {"media_current": CURRENT, "media_remove": CURRENT[1],
         "media_urls": "https://cdn.example.com/sale/extra.gif\n\n  https://cdn.example.com/sale/banner.png  \n"},
        {"media_upload": [upload("Card.vcf", SAMPLES["text/vcard"], claimed="application/octet-stream")]},
    )
    assert form.is_valid(), form.errors
    value = form.cleaned_data["media"]
    assert isinstance(value, MediaValue)
    assert value.urls == [CURRENT[0], "https://cdn.example.com/sale/extra.gif"]  # the repeat is not added twice
    assert [u.name for u in value.uploads] == ["Card.vcf"]
    assert value.files == [MediaFile("Card.vcf", len(SAMPLES["text/vcard"]), "text/vcard")]
    assert not media_root.exists()  # nothing stored by cleaning
    final = media_save(value)
    assert final[:2] == value.urls and len(final) == 3
    assert final[2].startswith("https://campaigns.example.com/media/campaign-media/") and final[2].endswith("/Card.vcf")
    assert form.has_changed()


def test_an_invalid_url_names_its_line():
    form = bound({"media_current": CURRENT, "media_urls": "https://ok.example.com/a.png\nnot a url\n"})
    assert not form.is_valid()
    assert form.errors["media"] == ["Line 2 is not an http(s) URL: not a url"]
    html = str(form["media"])  # shown again as entered, removals and text kept
    assert "not a url\n</textarea>" in html and html.count('name="media_current"') == 2


def test_an_upload_of_an_unknown_type_is_an_error_naming_the_file():
    form = bound({}, {"media_upload": upload("virus.png", b"MZ\x90\x00\x03\x00\x00\x00")})
    assert not form.is_valid()
    assert form.errors["media"][0].startswith("virus.png is not a type that can be sent as media")


def test_an_unchanged_field_is_not_changed_and_required_asks_for_media():
    form = CampaignMediaForm({"media_current": CURRENT}, initial={"media": CURRENT})
    assert form.is_valid() and not form.has_changed()
    assert form.cleaned_data["media"] == MediaValue(urls=CURRENT)

    class Required(forms.Form):
        media = MediaField()

    assert Required({}).errors["media"] == ["Upload a file or enter a media URL."]


def test_read_only_links():
    html = str(media_links_html(CURRENT))
    assert html.startswith('<ul class="media-links"><li><a href="https://cdn.example.com/sale/banner.png"')
    assert "terms.pdf</a>" in html and "[" not in html
    assert str(media_links_html([])) == "-"
    assert "&lt;script&gt;" in str(media_links_html(['https://x.example.com/"><script>.png']))


# ---- each chosen sender's provider limits ----


@pytest.fixture
def make_sender_row(db):
    from messaging.models import Sender
    from messaging.providers import PROVIDERS

    def make(provider: str, name: str | None = None):
        cls = PROVIDERS[provider]
        return Sender.objects.create(name=name or f"{cls.name} line", provider=provider,
                                     address=f"+1415555{Sender.objects.count():04d}",
                                     credentials={k: f"test-{k}-value" for k in cls.credential_keys})

    return make


def test_each_chosen_senders_provider_limits_apply(make_sender_row):
    sendblue, plivo = make_sender_row("sendblue"), make_sender_row("plivo")
    webp = MediaFile("photo.webp", 1000, "image/webp")
    url = ["https://cdn.example.com/a.png"]
    assert media_problems(senders=[sendblue], urls=url, uploads=[webp], ask_servers=False) == [
        "Sendblue accepts at most 1 media file; this message has 2."]
    assert media_problems(senders=[plivo], urls=[], uploads=[webp]) == [
        "photo.webp is image/webp; Plivo accepts image/gif, image/jpeg, image/png, video/*, audio/*, text/vcard, "
        "text/x-vcard."]
    both = media_problems(senders=[sendblue, plivo], urls=[], uploads=[webp])
    assert both == [f"{plivo.name}: photo.webp is image/webp; Plivo accepts image/gif, image/jpeg, image/png, "
                    "video/*, audio/*, text/vcard, text/x-vcard."]
    assert media_problems(senders=[sendblue, plivo], urls=[], uploads=[]) == []


def test_urls_are_asked_their_size_and_count_with_the_uploads(make_sender_row, media_server):
    plivo = make_sender_row("plivo")
    upload_file = MediaFile("video.mp4", 4 * MB, "video/mp4")
    problems = media_problems(senders=[plivo], urls=[f"{media_server}/two.png"], uploads=[upload_file])
    assert len(problems) == 1 and "6,291,456 bytes" in problems[0] and "in one message" in problems[0]
    # a URL that does not answer is not a problem on saving
    assert media_problems(senders=[plivo], urls=[f"{media_server}/missing.png"], uploads=[upload_file]) == []
