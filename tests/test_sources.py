"""Data arguments: paths, the bundled set, and official names downloaded from a local server."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading

import pytest

from conftest import DATA
from sketchrnn.data import DataFileError, load_npz
from sketchrnn.data.sources import bundled_path, download, resolve


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a folder with a real file and a truncated one."""
    root = tmp_path / "bucket"
    root.mkdir()
    shutil.copy(DATA / "short_kanji.npz", root / "kanji.npz")
    (root / "broken.npz").write_bytes((DATA / "short_kanji.npz").read_bytes()[:5000])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_bundled_sheep_needs_no_network() -> None:
    path = resolve("aaron_sheep")
    assert path == bundled_path() and resolve("aaron_sheep.npz") == path
    data = load_npz(path)
    assert [len(data[k]) for k in ("train", "valid", "test")] == [7400, 300, 300]
    assert (path.parent / "aaron_sheep.LICENSE.md").is_file()


def test_existing_path_is_used_as_is() -> None:
    assert resolve(DATA / "omniglot.npz") == DATA / "omniglot.npz"


def test_official_name_is_downloaded_once(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", server)
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path / "cache"))
    path = resolve("kanji")
    assert path == tmp_path / "cache" / "kanji.npz"
    assert len(load_npz(path)["train"]) == 10000
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", "http://127.0.0.1:9")  # nothing there: the cache serves
    assert resolve("kanji.npz") == path


def test_missing_and_truncated_downloads_are_refused(server, tmp_path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataFileError, match="HTTP 404"):
        download("no_such_category", cache, base_url=server)
    with pytest.raises(DataFileError, match=r"broken\.npz: the downloaded file is not a valid"):
        download("broken", cache, base_url=server)
    assert list(cache.iterdir()) == []  # nothing half-written is left or cached


def test_offline_gives_a_clear_message(tmp_path) -> None:
    with socket.socket() as s:  # a port on which nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataFileError, match="offline"):
        download("cat", tmp_path, base_url=f"http://127.0.0.1:{port}")


def test_a_missing_path_is_named(tmp_path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        resolve(str(tmp_path / "nope.npz"))
