"""The official model zoo: names, `sketchrnn models list|download`, `sketchrnn.pretrained`, zoo names as MODEL.

Downloads run against a local HTTP server laid out like Google's bucket (``{root}/{set}/{name}.{kind}.json``)
that serves the real magenta-js files of ``../shared/models/magenta-js/``; the bundled sheep model
is used with no server at all.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from httpserver import FileServer

import sketchrnn
from conftest import MODELS_JS, ROOT, SHARED
from sketchrnn import transfer, zoo
from sketchrnn.cli import main
from sketchrnn.data import load_npz
from sketchrnn.zoo import NAMES, ZooError, bundled_model, cached_model, download_model, model_url

pytestmark = pytest.mark.usefixtures("one_thread")

BIRD = MODELS_JS / "bird.gen.json"
SHEEP = MODELS_JS / "sheep.gen.json"


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory) -> Path:
    """A small conditional LSTM model of ours written as a magenta-js .vae.json (17 blobs)."""
    from sketchrnn import HParams, SketchRNN
    from sketchrnn.interop.magenta_js import write_vae_json

    hps = HParams(conditional=True, enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=20, max_seq_len=40,
                  use_recurrent_dropout=False)
    path = tmp_path_factory.mktemp("vae") / "rabbit.vae.json"
    return write_vae_json(SketchRNN(hps, scale_factor=50.0), path, info={"name": "rabbit"})


@pytest.fixture
def server(tmp_path_factory, tiny_vae):
    """A models root on 127.0.0.1: the ten real gen files in large_models, bird also in models, and bad files."""
    served = tmp_path_factory.mktemp("served")
    cut = served / "key.gen.json"
    cut.write_bytes(MODELS_JS.joinpath("key.gen.json").read_bytes()[:-5000])  # JSON that stops short
    files = {f"/large_models/{p.name}": p for p in MODELS_JS.glob("*.gen.json")}
    files.update({
        "/models/bird.gen.json": BIRD,
        "/large_models/key.gen.json": cut,
        "/large_models/cat.vae.json": BIRD,  # a gen file where a VAE should be
        "/large_models/rabbit.vae.json": tiny_vae,
    })
    with FileServer(files) as httpd:
        yield httpd


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A cache of the test's own, no models address from outside, interrupted transfers resumed at once."""
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SKETCHRNN_MODELS_URL", raising=False)
    monkeypatch.setattr(transfer, "RETRY_DELAY", 0.0)


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def cache_file(tmp_path: Path, name: str, kind: str = "gen", set: str = "large_models") -> Path:
    return tmp_path / "cache" / "models" / set / f"{name}.{kind}.json"


# ---------------------------------------------------------------------------- the list
def test_names_are_the_official_list():
    text = (SHARED / "models" / "OFFICIAL.md").read_text()
    official = re.search(r"```\n(.*?)```", text, re.S).group(1).split()
    assert NAMES == tuple(official) and len(NAMES) == len(set(NAMES)) == 114
    assert [n for n in NAMES if zoo.kinds_of(n) != ("gen", "vae")] == ["everything"]
    assert zoo.SETS == ("large_models", "models") and zoo.KINDS == ("gen", "vae")


def test_addresses_and_cache_layout(tmp_path, monkeypatch):
    root = "https://storage.googleapis.com/quickdraw-models/sketchRNN"
    assert zoo.MODELS_URL == root and zoo.models_root() == root
    assert model_url("cat") == f"{root}/large_models/cat.gen.json"
    assert model_url("catpig", "vae", "models") == f"{root}/models/catpig.vae.json"
    assert model_url("owl", base_url="http://mirror/m/") == "http://mirror/m/large_models/owl.gen.json"
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", "http://mirror/zoo")
    assert model_url("owl", "vae") == "http://mirror/zoo/large_models/owl.vae.json"
    assert cached_model("cat", "vae") == tmp_path / "cache" / "models" / "large_models" / "cat.vae.json"
    assert cached_model("cat", set="models", directory=tmp_path / "d") == tmp_path / "d" / "models" / "cat.gen.json"
    assert zoo.parse_name("cat") == ("cat", "gen") and zoo.parse_name("cat.vae") == ("cat", "vae")
    assert zoo.parse_name("cat.gen.json") is None and zoo.parse_name("runs/cat") is None


def test_the_bundled_sheep_is_package_data():
    path = bundled_model("sheep")
    assert path is not None and path.read_bytes() == SHEEP.read_bytes()
    assert "Apache License, Version 2.0" in (path.parent / "sheep.gen.LICENSE.md").read_text()
    assert bundled_model("sheep", "vae") is None and bundled_model("sheep", set="models") is None
    pyproject = (ROOT / "pyproject.toml").read_text()
    listed = re.search(r"^\[tool\.setuptools\.package-data\]\nsketchrnn = \[(.*)\]$", pyproject, re.M)
    patterns = re.findall(r'"([^"]+)"', listed.group(1))
    package = ROOT / "src" / "sketchrnn"
    for shipped in (path, path.parent / "sheep.gen.LICENSE.md"):
        assert any(fnmatch.fnmatch(shipped.relative_to(package).as_posix(), p) for p in patterns), shipped


def test_models_list(capsys, server):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "gen", "vae"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:115]}
    assert list(rows) == list(NAMES)
    assert rows["sheep"] == ["bundled", "-"] and rows["cat"] == ["-", "-"] and rows["everything"] == ["-"]
    assert lines[115].startswith("114 official models in large_models (114 gen, 113 vae)") and len(lines) == 117

    assert main(["models", "download", "bird", "--base-url", server.url, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--kind", "vae"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "vae"] and len(lines) == 1 + 113 + 2
    assert "everything" not in {line.split()[0] for line in lines[1:114]}
    assert main(["models", "list", "--kind", "gen"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:115]}
    assert rows["bird"] == ["cached"] and rows["sheep"] == ["bundled"] and rows["everything"] == ["-"]


def test_listing_and_unknown_names_need_no_torch():
    probe = ("import sys, sketchrnn.cli; rc = sketchrnn.cli.main(['models', 'list', '--kind', 'vae']); "
             "sketchrnn.cli.main(['models', 'download', 'catt']); print(rc, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "0 False", done.stderr
    assert done.stderr.strip().splitlines() == [
        "sketchrnn: error: catt: not an official model name; did you mean cat or catpig or catbus? "
        "(`sketchrnn models list` lists them)"]


# ---------------------------------------------------------------------------- downloads
def test_fresh_download_through_the_cli(server, tmp_path, capsys):
    assert main(["models", "download", "bird", "dog.gen", "--base-url", server.url, "--quiet"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(cache_file(tmp_path, "bird")), str(cache_file(tmp_path, "dog"))]
    assert cache_file(tmp_path, "bird").read_bytes() == BIRD.read_bytes()
    (request,) = server.requests_for("/large_models/bird.gen.json")
    assert request.range is None and request.status == 200
    record = json.loads(cache_file(tmp_path, "bird").with_suffix(".json.json").read_text())
    assert record["url"] == f"{server.url}/large_models/bird.gen.json" and record["md5_from_server"] is True
    assert sorted(p.name for p in cache_file(tmp_path, "bird").parent.iterdir()) == [
        "bird.gen.json", "bird.gen.json.json", "dog.gen.json", "dog.gen.json.json"]
    # cached: no second transfer; the other set is a file of its own
    assert main(["models", "download", "bird", "--base-url", server.url, "--quiet"]) == 0
    assert main(["models", "download", "bird", "--set", "models", "--base-url", server.url, "--quiet"]) == 0
    assert len(server.requests_for("/large_models/bird.gen.json")) == 1
    assert cache_file(tmp_path, "bird", set="models").read_bytes() == BIRD.read_bytes()


def test_environment_root_and_the_bundled_model(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", server.url + "/")
    assert download_model("parrot") == cache_file(tmp_path, "parrot")
    assert main(["models", "download", "sheep"]) == 0  # bundled: nothing to fetch
    assert capsys.readouterr().out.strip() == str(bundled_model("sheep"))
    assert server.requests_for("/large_models/sheep.gen.json") == []


def test_interrupted_download_resumes(server, tmp_path):
    server.faults.cut_after, server.faults.cuts = 1_000_000, 1
    path = download_model("rabbit", base_url=server.url)
    assert path.read_bytes() == MODELS_JS.joinpath("rabbit.gen.json").read_bytes()
    first, second = server.requests_for("/large_models/rabbit.gen.json")
    assert first.range is None and second.range == "bytes=1000000-" and second.status == 206


def test_partial_download_is_kept_and_resumed_by_the_next_call(server, tmp_path, capsys):
    server.faults.cut_after = 200_000  # every answer breaks
    assert main(["models", "download", "mosquito", "--base-url", server.url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"sketchrnn: error: .*mosquito\.gen\.json: download interrupted .*resumes from there\n", err)
    part = cache_file(tmp_path, "mosquito").with_name("mosquito.gen.json.part")
    assert part.stat().st_size == transfer.ATTEMPTS * 200_000
    server.faults.cut_after = None
    server.seen.clear()
    path = download_model("mosquito", base_url=server.url)
    assert path.read_bytes() == MODELS_JS.joinpath("mosquito.gen.json").read_bytes() and not part.exists()
    (request,) = server.requests_for("/large_models/mosquito.gen.json")
    assert request.range == f"bytes={transfer.ATTEMPTS * 200_000}-"


@pytest.mark.parametrize("damage", ["truncate", "same size"])
def test_corrupt_cached_model_is_replaced(server, tmp_path, damage):
    path = download_model("ambulance", base_url=server.url)
    data = path.read_bytes()
    path.write_bytes(data[:100_000] if damage == "truncate" else data[:-40] + b"#" * 40)
    with pytest.warns(UserWarning, match=r"ambulance\.gen\.json: the cached file is corrupt or truncated"):
        assert download_model("ambulance", base_url=server.url) == path
    assert path.read_bytes() == MODELS_JS.joinpath("ambulance.gen.json").read_bytes()
    assert len(server.requests_for("/large_models/ambulance.gen.json")) == 2


def test_bad_files_are_refused_and_not_kept(server, tmp_path):
    with pytest.raises(ZooError, match=r"key\.gen\.json: the downloaded file is not a valid magenta-js gen model "
                                       r"\(not a magenta-js model \(not JSON"):
        download_model("key", base_url=server.url)
    with pytest.raises(ZooError, match=r"cat\.vae\.json: the downloaded file is not a valid magenta-js vae model "
                                       r"\(expected 17 weight shapes and blobs"):
        download_model("cat", "vae", base_url=server.url)
    with pytest.raises(ZooError, match=r"large_models/dog\.vae\.json: the server has no dog\.vae\.json in "
                                       r"large_models \(HTTP 404\)$"):
        download_model("dog", "vae", base_url=server.url)
    with pytest.raises(ZooError, match=r"HTTP 404\); note: the base URL .* is the root above the sets"):
        download_model("dog", base_url=server.url + "/large_models")
    assert list(cache_file(tmp_path, "key").parent.iterdir()) == []


def test_offline_is_one_line(tmp_path, capsys):
    url = closed_port_url()
    with pytest.raises(ZooError, match=r"cannot reach 127\.0\.0\.1:\d+ \(.*\); offline\?") as err:
        download_model("cat", base_url=url)
    assert "\n" not in str(err.value)
    assert main(["models", "download", "cat", "--base-url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "offline?" in err and err.startswith(f"sketchrnn: error: {url}/large_models/cat")


def test_names_are_checked_before_anything_is_fetched(server, capsys):
    for argv, message in [
        (["bird", "catt"], "catt: not an official model name; did you mean cat"),
        (["bird", "everything", "--kind", "vae"], "everything: no vae model was published, only everything.gen.json"),
        (["bird", "cat.vae.json"], "cat.vae.json: not an official model name"),
    ]:
        assert main(["models", "download", *argv, "--base-url", server.url]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert server.seen == []
    with pytest.raises(ZooError, match=r"^cat\.vae: give the name and the kind apart \(name 'cat', kind 'vae'\)"):
        sketchrnn.pretrained("cat.vae")
    with pytest.raises(ValueError, match="unknown set 'big'"):
        sketchrnn.pretrained("cat", set="big")


# ---------------------------------------------------------------------------- zoo names as models
def test_sample_sheep_offline_from_the_bundled_model(tmp_path, monkeypatch, capsys):
    from sketchrnn.model import kernels

    monkeypatch.setenv("SKETCHRNN_MODELS_URL", closed_port_url())  # no network, and an empty cache
    monkeypatch.setattr(kernels, "ENABLED", False)  # the fused kernels' build would also go to the cache
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "sheep", "--n", "9", "--seed", "1"]) == 0
    assert "wrote 9 sketches" in capsys.readouterr().out
    assert len(list((tmp_path / "samples").glob("sample_*.svg"))) == 9
    assert len(load_npz(tmp_path / "samples" / "sample.npz")["sample"]) == 9
    assert not (tmp_path / "cache").exists()  # nothing downloaded, nothing cached


def test_pretrained_downloads_once(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", server.url)
    model = sketchrnn.pretrained("bird")
    assert model.hps.dec_rnn_size == 512 and not model.hps.conditional
    assert model.scale_factor == pytest.approx(71.3754)
    assert cache_file(tmp_path, "bird").is_file()
    again = sketchrnn.load("bird")  # a zoo name as a path: the cached file
    assert again.scale_factor == model.scale_factor
    assert len(server.requests_for("/large_models/bird.gen.json")) == 1
    sketchrnn.pretrained("bird", set="models")
    assert len(server.requests_for("/models/bird.gen.json")) == 1
    sheep = sketchrnn.pretrained("sheep")  # bundled
    assert sheep.scale_factor == pytest.approx(63.0983) and server.requests_for("/large_models/sheep.gen.json") == []


def test_a_vae_name_loads_a_vae_model(server, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", server.url)
    model = sketchrnn.pretrained("rabbit", kind="vae")
    assert model.hps.conditional and model.hps.z_size == 4 and model.scale_factor == pytest.approx(50.0)
    assert main(["info", "rabbit.vae"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model: rabbit.vae (") and "z_size = 4" in out and "name = rabbit" in out
    assert len(server.requests_for("/large_models/rabbit.vae.json")) == 1


def test_an_existing_path_wins_over_a_zoo_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("cat").mkdir()  # neither a run nor a model directory
    with pytest.raises(FileNotFoundError, match=r"^cat: not a model \(expected a training run"):
        sketchrnn.load("cat")


def test_unknown_model_name_is_one_line(tmp_path, capsys):
    assert main(["sample", "catt", "--n", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err == ("sketchrnn: error: catt: no such model: not a training run, a saved model directory or a model "
                   "file, nor an official model name; did you mean cat or catpig or catbus? "
                   "(`sketchrnn models list` lists them)\n")
    assert main(["info", "sheep.gen.json"]) == 2
    assert "the official model is named sheep" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match=r"nothing: no such model: there is no nothing in "):
        sketchrnn.load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=r"cat.gen.json: no such model: the folder .*/gone does not exist"):
        sketchrnn.load(tmp_path / "gone" / "cat.gen.json")  # a path, not a name: no zoo suggestions
    with pytest.raises(ZooError, match="not an official model name"):
        sketchrnn.pretrained("unicorn")
