"""Each provider's documented media limits (docs/providers.md, each provider's "Limits and pace"): how many files,
how large (each, or the whole message), which types; for files already known (``check_media_files``) and for
media URLs, whose type is read from the answer to a HEAD request (``check_media``)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest

from messaging.providers import PROVIDERS
from messaging.providers.bandwidth import BandwidthProvider
from messaging.providers.base import MediaFile, SenderConfig
from messaging.providers.cloudvno import CloudvnoProvider
from messaging.providers.fonedynamics import FonedynamicsProvider
from messaging.providers.plivo import PlivoProvider
from messaging.providers.sendblue import SendblueProvider
from tests.support import MediaHandler

MB = 1024 * 1024


def _adapter(cls):
    return cls(SenderConfig(address="+14155550100", credentials={k: f"test-{k}-value" for k in cls.credential_keys},
                            base_url="http://127.0.0.1:9"))


def png(name="photo.png", size=1000) -> MediaFile:
    return MediaFile(name, size, "image/png")


# What each provider's documentation says (None: not documented).
DOCUMENTED = {
    "plivo": {"max_media": 10, "max_media_bytes": 5 * MB, "total": True},
    "sendblue": {"max_media": 1, "max_media_bytes": 5 * MB, "total": False},
    "cloudvno": {"max_media": None, "max_media_bytes": None, "total": False},
    "bandwidth": {"max_media": None, "max_media_bytes": None, "total": False},
}


def test_every_provider_states_its_media_types():
    for cls in PROVIDERS.values():
        assert "media_types" in vars(cls), f"{cls.__name__} does not say which media types it takes"
        assert cls.media_types is None or (isinstance(cls.media_types, frozenset) and cls.media_types)
    assert PlivoProvider.media_types >= {"image/jpeg", "image/png", "image/gif"}
    for cls in (SendblueProvider, CloudvnoProvider, BandwidthProvider, FonedynamicsProvider):
        assert cls.media_types is None


# ---- count ----


@pytest.mark.parametrize("code", DOCUMENTED)
def test_the_number_of_files(code):
    adapter = _adapter(PROVIDERS[code])
    most = DOCUMENTED[code]["max_media"]
    if most is None:  # not documented: nothing refused for the count
        assert adapter.check_media_files([png(f"{n}.png") for n in range(20)]) == []
        return
    assert adapter.check_media_files([png(f"{n}.png") for n in range(most)]) == []
    problems = adapter.check_media_files([png(f"{n}.png") for n in range(most + 1)])
    noun = "media file" if most == 1 else "media files"
    assert problems == [f"{adapter.name} accepts at most {most} {noun}; this message has {most + 1}."]


def test_sendblue_takes_one_file_and_says_so_in_the_singular():
    problems = _adapter(SendblueProvider).check_media_files([png("a.png"), png("b.png")])
    assert problems == ["Sendblue accepts at most 1 media file; this message has 2."]
    # check_limits, which has only the URLs, says the same
    adapter = _adapter(SendblueProvider)
    assert adapter.check_limits("Hi", ["https://example.com/a.png", "https://example.com/b.png"]) == problems


def test_fone_dynamics_sends_no_media_at_all():
    adapter = _adapter(FonedynamicsProvider)
    assert adapter.check_media_files([png()]) == ["Fone Dynamics does not send media with this sender."]
    assert adapter.check_media_files([]) == []


# ---- size ----


def test_sendblue_limits_each_file():
    adapter = _adapter(SendblueProvider)
    assert adapter.check_media_files([png(size=5 * MB)]) == []
    problems = adapter.check_media_files([png("big.png", 5 * MB + 1)])
    assert len(problems) == 1
    assert problems[0].startswith("big.png is 5,242,881 bytes (5.0 MB); Sendblue accepts at most 5,242,880 bytes")


def test_plivo_limits_the_total_of_the_message():
    adapter = _adapter(PlivoProvider)
    assert adapter.check_media_files([png("a.png", 2 * MB), png("b.png", 3 * MB)]) == []
    problems = adapter.check_media_files([png("a.png", 3 * MB), png("b.png", 3 * MB)])
    assert len(problems) == 1
    assert "6,291,456 bytes" in problems[0] and "a.png" in problems[0] and "b.png" in problems[0]
    assert "Plivo accepts at most 5,242,880 bytes (5.0 MB) in one message" in problems[0]


@pytest.mark.parametrize("cls", [CloudvnoProvider, BandwidthProvider])
def test_no_size_or_type_refused_where_none_is_documented(cls):
    assert _adapter(cls).check_media_files([MediaFile("huge.webp", 100 * MB, "image/webp")]) == []


def test_a_size_or_type_not_known_is_not_checked():
    adapter = _adapter(PlivoProvider)
    assert adapter.check_media_files([MediaFile("https://example.com/x", None, "")]) == []


# ---- type ----


def test_plivo_refuses_a_type_it_does_not_document():
    problems = _adapter(PlivoProvider).check_media_files([MediaFile("photo.webp", 1000, "image/webp")])
    assert problems == ["photo.webp is image/webp; Plivo accepts image/gif, image/jpeg, image/png, video/*, "
                        "audio/*, text/vcard, text/x-vcard."]


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "image/gif", "audio/mpeg", "audio/wav",
                                          "video/mp4", "video/3gpp", "text/vcard"])
def test_plivo_accepts_images_audio_video_and_vcards(content_type):
    assert _adapter(PlivoProvider).check_media_files([MediaFile("f", 1000, content_type)]) == []


@pytest.mark.parametrize("content_type", ["application/pdf", "text/plain", "image/bmp"])
def test_plivo_refuses_documents(content_type):
    assert len(_adapter(PlivoProvider).check_media_files([MediaFile("f", 1000, content_type)])) == 1


def test_sendblue_documents_no_types():
    assert _adapter(SendblueProvider).check_media_files([MediaFile("doc.pdf", 1000, "application/pdf")]) == []


# ---- the type a media URL's server gives ----


class TypedMediaHandler(MediaHandler):
    """``MediaHandler``, plus files of other types: ``/photo.webp`` and ``/song.mp3`` (with a charset parameter),
    ``/untyped.bin`` (no Content-Type) and ``/octet.png`` (``application/octet-stream``)."""

    types = {"/photo.webp": "image/webp", "/song.mp3": "audio/mpeg; charset=binary", "/untyped.bin": None,
             "/octet.png": "application/octet-stream"}

    def do_HEAD(self):  # noqa: N802 - the http.server hook
        path = self.path.split("?")[0]
        if path not in self.types:
            return super().do_HEAD()
        MediaHandler.requests.append(self.path)
        self.send_response(200)
        if self.types[path]:
            self.send_header("Content-Type", self.types[path])
        self.send_header("Content-Length", "2000")
        self.end_headers()


@pytest.fixture
def typed_media_server():
    MediaHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), TypedMediaHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_of_a_type_the_provider_does_not_take_is_a_problem(typed_media_server):
    url = f"{typed_media_server}/photo.webp"
    problems, warnings = _adapter(PlivoProvider).check_media([url])
    assert warnings == []
    assert problems == [f"{url} is image/webp; Plivo accepts image/gif, image/jpeg, image/png, video/*, audio/*, "
                        "text/vcard, text/x-vcard."]
    assert _adapter(PlivoProvider).check_media([f"{typed_media_server}/song.mp3"]) == ([], [])
    # Sendblue documents no types: the same file is fine there
    assert _adapter(SendblueProvider).check_media([url]) == ([], [])


def test_a_png_url_passes_plivo(media_server):
    assert _adapter(PlivoProvider).check_media([f"{media_server}/small.png"]) == ([], [])
    assert MediaHandler.requests == ["/small.png"]


def test_a_url_that_does_not_say_its_type_is_a_warning(typed_media_server):
    adapter = _adapter(PlivoProvider)
    problems, warnings = adapter.check_media([f"{typed_media_server}/untyped.bin", f"{typed_media_server}/octet.png"])
    assert problems == []
    assert len(warnings) == 2 and all("no Content-Type" in w and "Plivo accepts image/gif" in w for w in warnings)


def test_urls_and_files_count_together(media_server):
    adapter = _adapter(PlivoProvider)
    files, warnings = adapter.media_files([f"{media_server}/two.png"])
    assert warnings == [] and files == [MediaFile(f"{media_server}/two.png", 2 * MB, "image/png")]
    problems = adapter.check_media_files([*files, png("upload.png", 4 * MB)])
    assert len(problems) == 1 and "6,291,456 bytes" in problems[0]
