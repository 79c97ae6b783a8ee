"""Data arguments: paths, the bundled set, and official Quick, Draw! files downloaded from a local server."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from httpserver import FileServer

from conftest import DATA, SHARED
from sketchrnn.data import DataFileError, load_npz
from sketchrnn import transfer
from sketchrnn.data.sources import (
    KINDS, QUICKDRAW_URL, bundled_path, cached_file, category_url, download, quickdraw_root, resolve,
)

SHEEP = DATA / "aaron_sheep.npz"
KANJI = DATA / "short_kanji.npz"
EIFFEL = SHARED / "ndjson" / "simplified" / "The_Eiffel_Tower.ndjson"
CAT_SIMPLIFIED = SHARED / "ndjson" / "simplified" / "cat.ndjson"
CAT_RAW = SHARED / "ndjson" / "raw" / "cat.ndjson"


@pytest.fixture
def server(tmp_path_factory):
    """A dataset root on 127.0.0.1 laid out like the official bucket, plus a truncated and a bad file."""
    served = tmp_path_factory.mktemp("served")  # apart from each test's own tmp_path
    broken = served / "broken.npz"
    broken.write_bytes(KANJI.read_bytes()[:5000])
    cut_line = served / "cut.ndjson"
    cut_line.write_bytes(CAT_SIMPLIFIED.read_bytes()[:-40])  # the last drawing is incomplete
    files = {
        "/sketchrnn/sheep.npz": SHEEP,
        "/sketchrnn/kanji.npz": KANJI,
        "/sketchrnn/broken.npz": broken,
        "/sketchrnn/aircraft carrier.full.npz": KANJI,
        "/full/simplified/cat.ndjson": CAT_SIMPLIFIED,
        "/full/simplified/The Eiffel Tower.ndjson": EIFFEL,
        "/full/simplified/cut.ndjson": cut_line,
        "/full/raw/cat.ndjson": CAT_RAW,
    }
    with FileServer(files) as httpd:
        yield httpd


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    """Interrupted transfers are resumed at once."""
    monkeypatch.setattr(transfer, "RETRY_DELAY", 0.0)


def closed_port_url() -> str:
    """The address of a port on 127.0.0.1 on which nobody listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------
# Paths, bundled data, names and addresses


def test_bundled_sheep_needs_no_network() -> None:
    path = resolve("aaron_sheep")
    assert path == bundled_path() and resolve("aaron_sheep.npz") == path
    data = load_npz(path)
    assert [len(data[k]) for k in ("train", "valid", "test")] == [7400, 300, 300]
    assert (path.parent / "aaron_sheep.LICENSE.md").is_file()


def test_existing_path_is_used_as_is() -> None:
    assert resolve(DATA / "omniglot.npz") == DATA / "omniglot.npz"


def test_a_missing_path_is_named(tmp_path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        resolve(str(tmp_path / "nope.npz"))


def test_a_mistyped_file_name_is_missing_not_downloaded(server, tmp_path, monkeypatch) -> None:
    """A name with a suffix is a file: `mysheep.npz` is not a category to fetch; `sheep` (bare) is."""
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", server.url)
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataFileError, match=r"^mysheep\.npz: no such file") as err:
        resolve("mysheep.npz")
    assert "give its name alone: mysheep" in str(err.value)
    with pytest.raises(DataFileError, match=r"^sheep\.full\.npz: no such file .*--kind full"):
        resolve("sheep.full.npz")
    with pytest.raises(DataFileError, match=r"^notes\.txt: no such file$"):
        resolve("notes.txt")
    assert server.seen == [] and not (tmp_path / "cache").exists()
    assert resolve("sheep") == tmp_path / "cache" / "sheep.npz"  # the bare name downloads


def test_addresses_and_file_names(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SKETCHRNN_QUICKDRAW_URL", raising=False)
    assert KINDS == ("sketchrnn", "full", "simplified", "raw")
    assert quickdraw_root() == QUICKDRAW_URL == "https://storage.googleapis.com/quickdraw_dataset"
    root = QUICKDRAW_URL
    assert category_url("cat") == f"{root}/sketchrnn/cat.npz"
    assert category_url("cat", "full") == f"{root}/sketchrnn/cat.full.npz"
    assert category_url("cat", "simplified") == f"{root}/full/simplified/cat.ndjson"
    assert category_url("cat", "raw") == f"{root}/full/raw/cat.ndjson"
    # official names have spaces; underscores are accepted for them; both are URL-quoted
    eiffel = f"{root}/full/simplified/The%20Eiffel%20Tower.ndjson"
    assert category_url("The Eiffel Tower", "simplified") == category_url("The_Eiffel_Tower", "simplified") == eiffel
    carrier = "http://mirror/qd/sketchrnn/aircraft%20carrier.npz"
    assert category_url("aircraft_carrier", base_url="http://mirror/qd/") == carrier
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", "http://mirror/qd")
    assert category_url("t-shirt", "raw") == "http://mirror/qd/full/raw/t-shirt.ndjson"
    # one file per kind side by side, named with underscores
    assert cached_file("The Eiffel Tower", "simplified", tmp_path) == tmp_path / "The_Eiffel_Tower.simplified.ndjson"
    assert [cached_file("cat", k, tmp_path).name for k in KINDS] == [
        "cat.npz", "cat.full.npz", "cat.simplified.ndjson", "cat.raw.ndjson"
    ]
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path / "c"))
    assert cached_file("cat") == tmp_path / "c" / "cat.npz"


def test_bad_kinds_and_names_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown kind 'svg'"):
        download("cat", "svg", tmp_path)
    for bad in ("../cat", "a/b", "", ".hidden"):
        with pytest.raises(DataFileError, match="not a Quick, Draw! category name"):
            download(bad, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Fresh downloads


def test_official_name_is_downloaded_once(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", server.url)  # the dataset root
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path / "cache"))
    path = resolve("kanji")
    assert path == tmp_path / "cache" / "kanji.npz"
    assert len(load_npz(path)["train"]) == 10000
    assert len(server.requests_for("/sketchrnn/kanji.npz")) == 1
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", closed_port_url())  # nothing there: the cache serves
    assert resolve("kanji.npz") == path


@pytest.mark.parametrize(
    "name, kind, source, address",
    [
        ("sheep", "sketchrnn", SHEEP, "/sketchrnn/sheep.npz"),
        ("aircraft_carrier", "full", KANJI, "/sketchrnn/aircraft%20carrier.full.npz"),
        ("cat", "simplified", CAT_SIMPLIFIED, "/full/simplified/cat.ndjson"),
        ("The Eiffel Tower", "simplified", EIFFEL, "/full/simplified/The%20Eiffel%20Tower.ndjson"),
        ("cat", "raw", CAT_RAW, "/full/raw/cat.ndjson"),
    ],
)
def test_fresh_download_of_each_kind(server, tmp_path, name, kind, source, address) -> None:
    path = download(name, kind, tmp_path, base_url=server.url)
    assert path == cached_file(name, kind, tmp_path) and path.read_bytes() == source.read_bytes()
    (request,) = [s for s in server.seen if s.raw_path == address]
    assert request.range is None and request.status == 200
    record = json.loads((tmp_path / (path.name + ".json")).read_text())
    assert record["size"] == source.stat().st_size and record["md5"] == md5(source)
    assert record["url"] == server.url + address and record["md5_from_server"] is True and record["time"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".json"]  # no .part, no lock


def test_environment_root_serves_every_kind(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", server.url + "/")
    assert download("cat", "raw", tmp_path).read_bytes() == CAT_RAW.read_bytes()
    assert download("sheep", directory=tmp_path).read_bytes() == SHEEP.read_bytes()


def test_progress_bar_goes_to_stderr(server, tmp_path, capsys) -> None:
    server.faults.cut_after, server.faults.cuts = 300_000, 1  # a bar for the cut transfer, one for the rest
    path = download("sheep", directory=tmp_path, base_url=server.url, progress=True)
    assert path.read_bytes() == SHEEP.read_bytes()
    out, err = capsys.readouterr()
    assert out == "" and "sheep.npz" in err and "100%" in err
    download("cat", "simplified", tmp_path, base_url=server.url)  # progress=False: silent
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------
# Interrupted downloads


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path) -> None:
    server.faults.cut_after, server.faults.cuts = 700_000, 1  # the first answer stops after 700 kB
    path = download("sheep", directory=tmp_path, base_url=server.url)
    assert path.read_bytes() == SHEEP.read_bytes()
    first, second = server.requests_for("/sketchrnn/sheep.npz")
    assert first.range is None and second.range == "bytes=700000-" and second.status == 206
    record = json.loads((tmp_path / "sheep.npz.json").read_text())
    assert record["md5"] == md5(SHEEP) and record["md5_from_server"] is True  # the whole file was hashed


def test_partial_file_is_kept_and_resumed_by_the_next_call(server, tmp_path) -> None:
    attempts = transfer.ATTEMPTS
    server.faults.cut_after = 100_000  # every answer breaks after 100 kB
    with pytest.raises(DataFileError, match=r"interrupted .*kept in .*sheep\.npz\.part.*resumes") as err:
        download("sheep", directory=tmp_path, base_url=server.url)
    assert "\n" not in str(err.value)
    part = tmp_path / "sheep.npz.part"
    assert part.read_bytes() == SHEEP.read_bytes()[: attempts * 100_000]
    assert not (tmp_path / "sheep.npz").exists()
    server.faults.cut_after = None  # the network is back
    server.seen.clear()
    path = download("sheep", directory=tmp_path, base_url=server.url)
    assert path.read_bytes() == SHEEP.read_bytes() and not part.exists()
    (request,) = server.requests_for("/sketchrnn/sheep.npz")
    assert request.range == f"bytes={attempts * 100_000}-" and request.status == 206


def test_server_ignoring_the_range_restarts_from_the_beginning(server, tmp_path) -> None:
    part = tmp_path / "sheep.npz.part"
    part.write_bytes(b"\0" * 1000)  # not even the right bytes: they must not survive
    server.faults.ignore_range = True
    path = download("sheep", directory=tmp_path, base_url=server.url)
    assert path.read_bytes() == SHEEP.read_bytes()
    (request,) = server.requests_for("/sketchrnn/sheep.npz")
    assert request.range == "bytes=1000-" and request.status == 200


def test_unsatisfiable_range_restarts_cleanly(server, tmp_path) -> None:
    part = tmp_path / "cat.simplified.ndjson.part"
    part.write_bytes(b"x" * (CAT_SIMPLIFIED.stat().st_size + 10))  # longer than the file
    path = download("cat", "simplified", tmp_path, base_url=server.url)
    assert path.read_bytes() == CAT_SIMPLIFIED.read_bytes()
    first, second = server.requests_for("/full/simplified/cat.ndjson")
    assert first.status == 416 and second.range is None and second.status == 200


def test_concurrent_downloads_of_one_file_take_turns(server, tmp_path, monkeypatch) -> None:
    results: list[Path | BaseException] = []
    fetch_and_keep = transfer._fetch_and_keep

    def slow_fetch_and_keep(*args, **kwargs) -> None:  # keep the others waiting at the lock
        time.sleep(0.3)
        fetch_and_keep(*args, **kwargs)

    monkeypatch.setattr(transfer, "_fetch_and_keep", slow_fetch_and_keep)

    def fetch() -> None:
        try:
            results.append(download("sheep", directory=tmp_path, base_url=server.url))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / "sheep.npz"] * 3
    assert (tmp_path / "sheep.npz").read_bytes() == SHEEP.read_bytes()
    assert len(server.requests_for("/sketchrnn/sheep.npz")) == 1


# ---------------------------------------------------------------------------
# Integrity


def test_md5_mismatch_is_refused(server, tmp_path) -> None:
    server.faults.md5["/sketchrnn/sheep.npz"] = hashlib.md5(b"something else").digest()
    with pytest.raises(DataFileError, match=r"sheep\.npz: MD5 mismatch: .*not kept"):
        download("sheep", directory=tmp_path, base_url=server.url)
    assert list(tmp_path.iterdir()) == []


def test_without_a_server_hash_the_content_still_decides(server, tmp_path) -> None:
    server.faults.send_hash = False
    path = download("sheep", directory=tmp_path, base_url=server.url)
    assert path.read_bytes() == SHEEP.read_bytes()
    assert json.loads((tmp_path / "sheep.npz.json").read_text())["md5_from_server"] is False


def test_missing_and_truncated_downloads_are_refused(server, tmp_path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataFileError, match="no such category 'no such category' of kind 'sketchrnn' .*HTTP 404"):
        download("no_such_category", directory=cache, base_url=server.url)
    with pytest.raises(DataFileError, match=r"broken\.npz: the downloaded file is not a valid sketch-rnn \.npz"):
        download("broken", directory=cache, base_url=server.url)
    with pytest.raises(DataFileError, match=r"cut\.ndjson: the downloaded file is not a valid .*line 25 is not"):
        download("cut", "simplified", cache, base_url=server.url)
    assert list(cache.iterdir()) == []  # nothing half-written is left or cached


def test_404_names_the_category_and_hints_at_the_root(server, tmp_path) -> None:
    with pytest.raises(DataFileError) as err:
        download("The Eiffel Tower", directory=tmp_path, base_url=server.url)
    message = str(err.value)
    assert message.startswith(f"{server.url}/sketchrnn/The%20Eiffel%20Tower.npz: no such category 'The Eiffel Tower'")
    assert "HTTP 404" in message and "\n" not in message and "dataset root" not in message
    # the old-style setting pointed at the sketchrnn folder itself
    with pytest.raises(DataFileError, match=r"no such category .*the base URL .* is the dataset root"):
        download("sheep", directory=tmp_path, base_url=server.url + "/sketchrnn")


def test_unwritable_directory_is_named(server, tmp_path) -> None:
    occupied = tmp_path / "a_file"
    occupied.write_text("")
    with pytest.raises(DataFileError, match=r"a_file: cannot write the download"):
        download("sheep", directory=occupied, base_url=server.url)


def test_offline_gives_a_clear_message(tmp_path) -> None:
    url = closed_port_url()
    message = r"cannot reach 127\.0\.0\.1:\d+ \(.*\); offline\? .*pass a local file"
    with pytest.raises(DataFileError, match=message) as err:
        download("cat", directory=tmp_path, base_url=url)
    assert "\n" not in str(err.value)
    with pytest.raises(DataFileError, match=r"^cat: no such file or bundled dataset, .*offline"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SKETCHRNN_QUICKDRAW_URL", url)
            mp.setenv("SKETCHRNN_CACHE", str(tmp_path))
            resolve("cat")


# ---------------------------------------------------------------------------
# The cache


def test_truncated_cached_file_is_detected_and_replaced(server, tmp_path) -> None:
    path = download("sheep", directory=tmp_path, base_url=server.url)
    path.write_bytes(SHEEP.read_bytes()[:1_000_000])
    with pytest.warns(UserWarning, match=r"sheep\.npz: the cached file is corrupt or truncated \(it has 1000000 bytes"):
        assert download("sheep", directory=tmp_path, base_url=server.url) == path
    assert path.read_bytes() == SHEEP.read_bytes()
    assert len(server.requests_for("/sketchrnn/sheep.npz")) == 2


@pytest.mark.parametrize("kind, name, source", [("sketchrnn", "sheep", SHEEP), ("simplified", "cat", CAT_SIMPLIFIED)])
def test_corrupt_cached_file_of_the_same_size_is_detected_and_replaced(server, tmp_path, kind, name, source) -> None:
    path = download(name, kind, tmp_path, base_url=server.url)
    data = bytearray(path.read_bytes())
    data[-30:] = b"#" * 30  # the zip directory, or the last line
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        download(name, kind, tmp_path, base_url=server.url)
    assert path.read_bytes() == source.read_bytes()


def test_verify_catches_damage_the_cheap_check_cannot(server, tmp_path) -> None:
    path = download("sheep", directory=tmp_path, base_url=server.url)
    data = bytearray(path.read_bytes())
    data[1_000_000] ^= 0xFF  # one flipped byte in the middle: same size, same zip directory
    path.write_bytes(bytes(data))
    assert download("sheep", directory=tmp_path, base_url=server.url) == path  # cheap check: trusted
    assert len(server.requests_for("/sketchrnn/sheep.npz")) == 1
    with pytest.warns(UserWarning, match="MD5 differs"):
        download("sheep", directory=tmp_path, base_url=server.url, verify=True)
    assert path.read_bytes() == SHEEP.read_bytes()


def test_cached_file_without_a_record_is_checked_once(tmp_path) -> None:
    offline = closed_port_url()
    (tmp_path / "cat.simplified.ndjson").write_bytes(CAT_SIMPLIFIED.read_bytes())  # put there by hand
    assert download("cat", "simplified", tmp_path, base_url=offline).read_bytes() == CAT_SIMPLIFIED.read_bytes()
    record = json.loads((tmp_path / "cat.simplified.ndjson.json").read_text())
    assert record["size"] == CAT_SIMPLIFIED.stat().st_size and record["md5"] == md5(CAT_SIMPLIFIED)
    (tmp_path / "dog.npz").write_bytes(b"PK not really")
    with pytest.warns(UserWarning, match="dog.npz: the cached file is corrupt"):
        with pytest.raises(DataFileError, match="offline"):
            download("dog", directory=tmp_path, base_url=offline)
