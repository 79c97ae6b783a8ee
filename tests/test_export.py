"""``sketchrnn export`` / `sketchrnn.interop.export`: our models in the JavaScript libraries' own hands.

Two small runs are trained here on the bundled aaron_sheep data (tiny preset, num_mixture = 20,
the only mixture size the libraries read; 20 steps, validated at the last): an unconditional one,
exported to ``.gen.json`` and run by ``@magenta/sketch`` 0.2.0 on ``@tensorflow/tfjs`` 1.7.4 (npm,
``tests/js/package.json``; loaded as a web page loads it, ``new ms.SketchRNN(url)`` from a local
HTTP server), and a conditional one, exported to ``.vae.json`` and run by the original
``sketch_rnn.js`` (``../shared/js``). Both libraries get real drawings (the aaron_sheep test split,
in data units, pixel factor 1) and their numbers are compared with ours on the model read back
from the exported file (the quantised weights).

Measured here (max error: absolute below 1, relative above; 3 whole drawings, 74–99 points):

- ``.gen.json`` in ``@magenta/sketch`` (decoder 64): pdfs 5.2e-7, h 2.4e-7, c 5.9e-7; our float64
  model against the library 2.0e-7, 1.3e-7, 3.5e-7 (tfjs's cpu backend computes in float32).
- ``.vae.json`` in ``sketch_rnn.js`` (encoder 32, decoder 64, z 16): μ 8.4e-8, σ 5.0e-8, the
  state after the first step 1.6e-8, pdfs 2.4e-7 (the library computes in float64, see
  tests/test_vae_json.py).

The README's web page (its HTML as written) runs with the library's browser bundle
(``dist/magentasketch.js``) on the official sheep model exported by us (``tests/js/web_page.js``,
Math.random seeded) and draws a sketch of 99 lines.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import MODELS_JS, ROOT, max_error
from sketchrnn import HParams, SketchRNN
from sketchrnn.cli import main
from sketchrnn.interop import export, to_tf_variables
from sketchrnn.interop.export import ExportError, format_of, run_info
from sketchrnn.interop.magenta_js import GEN_BLOBS, VAE_BLOBS
from sketchrnn.train import train
from test_vae_json import library as vae_library
from test_vae_json import ours as vae_ours
from test_vae_json import run_library as run_sketch_rnn_js
from test_vae_json import sheep, stroke5

TOL = 1e-5
JS = ROOT / "tests" / "js"
NODE_MODULES = JS / "node_modules"
README = ROOT / "README.md"
STEPS = 20

pytestmark = pytest.mark.usefixtures("one_thread")


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node is not installed: the export tests run the JavaScript libraries under Node "
                    "(apt-get install nodejs npm; .ci/run installs them where they are missing)")
    return exe


def magenta_sketch() -> Path:
    """tests/js/node_modules with @magenta/sketch 0.2.0 and @tensorflow/tfjs 1.7.4, or a failure saying how."""
    package = NODE_MODULES / "@magenta" / "sketch" / "package.json"
    tfjs = NODE_MODULES / "@tensorflow" / "tfjs-core" / "package.json"
    if not (package.is_file() and tfjs.is_file()):
        pytest.fail(f"{NODE_MODULES} is missing: the export tests run @magenta/sketch 0.2.0 under Node; "
                    f"install it with `npm ci --prefix tests/js` (.ci/run does this where it is missing)")
    versions = (json.loads(package.read_text())["version"], json.loads(tfjs.read_text())["version"])
    assert versions == ("0.2.0", "1.7.4"), f"{NODE_MODULES} holds {versions}: run `npm ci --prefix tests/js` again"
    return NODE_MODULES


def _train(out: Path, conditional: bool) -> Path:
    hps = HParams.preset("tiny").replace(conditional=conditional, num_mixture=20, batch_size=16,
                                         save_every=STEPS)
    train(out, hps, steps=STEPS, seed=1, max_seq_len=100, progress=False)
    return out


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory) -> Path:
    """An unconditional LSTM run (tiny, M 20), trained 20 steps and validated."""
    return _train(tmp_path_factory.mktemp("export") / "gen_run", conditional=False)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    """A conditional LSTM run (tiny, M 20), trained 20 steps and validated."""
    return _train(tmp_path_factory.mktemp("export") / "vae_run", conditional=True)


@lru_cache(maxsize=None)
def drawings(n: int = 3) -> list[np.ndarray]:
    """Real drawings as the libraries take them: stroke-5 rows in data units, no end-of-sketch row."""
    return [stroke5(s) for s in sheep()["test"][:n]]


def run_magenta_sketch(path: Path, rows: list[np.ndarray], tmp: Path) -> dict:
    magenta_sketch()
    request = {"model": str(path), "pixel_factor": 1, "drawings": [r.tolist() for r in rows]}
    (tmp / "request.json").write_text(json.dumps(request))
    proc = subprocess.run([node(), str(JS / "gen_reference.js"), str(tmp / "request.json"), str(tmp / "out.json")],
                          capture_output=True, text=True, timeout=300, cwd=JS)
    assert proc.returncode == 0, f"@magenta/sketch failed:\n{proc.stderr[-3000:]}"
    return json.loads((tmp / "out.json").read_text())


def ours_gen(model: SketchRNN, rows: np.ndarray, dtype: torch.dtype) -> dict[str, np.ndarray]:
    """Per-step pdfs (the library's layout) and states (h, c) after S0 and every row."""
    x = np.concatenate([[[0.0, 0.0, 1.0, 0.0, 0.0]], rows])
    x[1:, :2] /= model.scale_factor
    x_t = torch.tensor(x, dtype=dtype)[None]
    hs, cs = [], []
    with torch.no_grad():
        mix = model.mixture(x_t)
        state = None
        for k in range(x_t.shape[1]):
            h, state = model.decoder_hidden(x_t[:, k: k + 1], state=state)
            hs.append(h[0, 0].numpy())
            cs.append(state[0][0].numpy())
    parts = (mix.pi, mix.mu1, mix.mu2, mix.sigma1, mix.sigma2, mix.rho, mix.pen)
    return {"pdfs": torch.cat([p[0] for p in parts], dim=-1).numpy(), "h": np.array(hs), "c": np.array(cs)}


def expected_weights(model: SketchRNN, blobs: dict[str, str], numjs: bool) -> dict[str, np.ndarray]:
    """What a reader of the exported file holds: round(w · 32767 / 10) back through the library's arithmetic."""
    out = {}
    for tf_name, w in to_tf_variables(model).items():
        if tf_name not in blobs.values():
            continue
        q = np.clip(np.round(w.astype(np.float64) * 32767 / 10), -32767, 32767)
        if numjs:  # sketch_rnn.js: a float32 array divided by 32767, then multiplied by 10
            out[tf_name] = (q.astype(np.float32) / np.float32(32767)) * np.float32(10)
        else:  # @magenta/sketch: 10 · q / 32767 in float64, stored in a Float32Array
            out[tf_name] = (10 * q / 32767).astype(np.float32)
    return out


def listing(directory: Path) -> list[tuple[str, bytes]]:
    return sorted((str(p.relative_to(directory)), p.read_bytes() if p.is_file() else b"")
                  for p in directory.rglob("*"))


# ---------------------------------------------------------------------- the libraries run our files
def test_gen_json_runs_in_magenta_sketch_as_ours(gen_run: Path, tmp_path: Path) -> None:
    result = export(gen_run, tmp_path / "sheep.gen.json")
    loaded = sketchrnn.load(result.path)
    rows = drawings()
    js = run_magenta_sketch(result.path, rows, tmp_path)
    assert js["library"]["@magenta/sketch"] == "0.2.0" and js["library"]["@tensorflow/tfjs-core"] == "1.7.4"
    run = json.loads((gen_run / "run.json").read_text())
    assert js["scale_factor"] == loaded.scale_factor == pytest.approx(run["scale_factor"])
    assert js["info"]["name"] == "sheep" and js["info"]["mode"] == 2 and js["info"]["version"] == 6
    assert js["nmixture"] == loaded.hps.num_mixture == 20 and js["num_units"] == 64
    wide = sketchrnn.load(result.path).double()
    errors: dict[str, dict[str, float]] = {"ours": {}, "float64": {}}
    for r, steps in zip(rows, js["drawings"]):
        ref = {"pdfs": np.array([np.concatenate(s["pdf"]) for s in steps]),
               "h": np.array([s["h"] for s in steps]), "c": np.array([s["c"] for s in steps])}
        assert ref["pdfs"].shape == (len(r) + 1, 123) and np.all(np.isfinite(ref["pdfs"]))
        for name, m, dtype in (("ours", loaded, torch.float32), ("float64", wide, torch.float64)):
            a = ours_gen(m, r, dtype)
            for key in ref:
                errors[name][key] = max(errors[name].get(key, 0.0), max_error(a[key], ref[key]))
    print(f"\n@magenta/sketch against us: {errors}")
    for name in errors:
        for key, err in errors[name].items():
            assert err <= TOL, f"{key}: {name} against @magenta/sketch {err:.3g} > {TOL:g} ({errors})"


def test_vae_json_runs_in_sketch_rnn_js_as_ours(vae_run: Path, tmp_path: Path) -> None:
    result = export(vae_run, tmp_path / "sheep.vae.json")
    loaded = sketchrnn.load(result.path)
    assert loaded.hps.conditional and loaded.hps.num_mixture == 20
    z = np.random.RandomState(0).randn(loaded.hps.z_size)
    rows = drawings()
    js = run_sketch_rnn_js(result.path, z, rows, tmp_path)
    assert js["version"] == 6 and js["scale_factor"] == loaded.scale_factor
    errors: dict[str, float] = {}
    for r, out in zip(rows, js["drawings"]):
        ref, a = vae_library(out), vae_ours(loaded, z, r, torch.float32)
        assert ref["pdfs"].shape == a["pdfs"].shape == (len(r) + 1, 123)
        for key in ref:
            errors[key] = max(errors.get(key, 0.0), max_error(a[key], ref[key]))
    print(f"\nsketch_rnn.js against us: {errors}")
    assert set(errors) == {"mu", "sigma", "h", "c", "pdfs"}
    for key, err in errors.items():
        assert err <= TOL, f"{key}: ours against sketch_rnn.js {err:.3g} > {TOL:g} ({errors})"


def _readme_page() -> str:
    m = re.search(r"<!--\s*web-page\s*-->\s*```html\n(.*?)```", README.read_text(), re.S)
    assert m, "README.md has no ```html block right after <!-- web-page -->"
    return m.group(1)


def test_readme_web_page_draws_with_the_exported_file(tmp_path: Path) -> None:
    page = _readme_page()
    model_file = re.search(r'new ms\.SketchRNN\("([^"]+)"\)', page).group(1)
    bundle = re.search(r'<script src="([^"]+)">', page).group(1)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(magenta_sketch() / "@magenta" / "sketch" / "dist" / "magentasketch.js", site / bundle)
    # the official sheep model, exported by us: a model trained for 20 steps here ends its sketches at once
    assert main(["export", "sheep", "--out", str(site / model_file)]) == 0
    (site / "index.html").write_text(page)
    proc = subprocess.run([node(), str(JS / "web_page.js"), str(site / "index.html"), str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert not out["errors"], out["errors"]
    assert "Initialized SketchRNN." in out["logs"]
    lines = np.array(out["lines"], dtype=np.float64)
    assert lines.ndim == 2 and lines.shape[1] == 4 and len(lines) >= 10 and np.all(np.isfinite(lines))
    assert np.array_equal(lines[0, :2], [150, 100])  # from where the page starts the pen


# ---------------------------------------------------------------------- what the file holds
@pytest.mark.parametrize("kind", ["gen", "vae"])
def test_export_then_load_gives_the_quantised_model_exactly(kind: str, gen_run: Path, vae_run: Path,
                                                            tmp_path: Path) -> None:
    run = gen_run if kind == "gen" else vae_run
    model = sketchrnn.load(run)
    result = export(model, tmp_path / f"m.{kind}.json")
    back = sketchrnn.load(result.path)
    blobs = GEN_BLOBS if kind == "gen" else VAE_BLOBS
    expected = expected_weights(model, blobs, numjs=kind == "vae")
    theirs = to_tf_variables(back)
    assert set(theirs) == set(expected)
    for name, value in expected.items():
        assert theirs[name].dtype == value.dtype and np.array_equal(theirs[name], value), name
    assert back.scale_factor == model.scale_factor
    for key in ("conditional", "dec_model", "dec_rnn_size", "num_mixture", "max_seq_len") + (
            ("enc_rnn_size", "z_size") if kind == "vae" else ()):
        assert getattr(back.hps, key) == getattr(model.hps, key), key
    # the largest quantisation error is what the file holds against the model, at most half a step
    worst = max(float(np.abs(expected[n].astype(np.float64) - w).max()) for n, w in to_tf_variables(model).items()
                if n in expected)
    assert result.max_error == worst and 0 < worst <= 10 / 32767 / 2 * 1.001
    assert result.values == sum(v.size for v in expected.values())
    # exported again, the file is the same file
    again = export(back, tmp_path / f"again.{kind}.json")
    assert json.loads(again.path.read_text())[1:] == json.loads(result.path.read_text())[1:]


def test_official_file_exported_again_has_the_same_weights(tmp_path: Path) -> None:
    original = json.loads((MODELS_JS / "sheep.gen.json").read_text())
    result = export(MODELS_JS / "sheep.gen.json", tmp_path / "sheep.gen.json")
    info, dims, blobs = json.loads(result.path.read_text())
    assert dims == original[1] and blobs == original[2] and result.max_error == 0.0
    assert {k: info[k] for k in original[0]} == original[0]  # mode, version, max_seq_len, name, scale_factor


def test_info_of_the_current_version_and_from_the_run(gen_run: Path, vae_run: Path, tmp_path: Path) -> None:
    run = json.loads((gen_run / "run.json").read_text())
    pointer = json.loads((gen_run / "checkpoint.json").read_text())
    valid = json.loads((gen_run / pointer["best"] / "eval.json").read_text())["valid"]
    info = export(gen_run, tmp_path / "flock.gen.json").info
    assert info == {"mode": 2, "version": 6, "max_seq_len": 100, "name": "flock",
                    "scale_factor": run["scale_factor"], "r_loss": valid["r_cost"], "kl_loss": valid["kl_cost"],
                    "training_size": run["counts"]["train"], "training_steps": STEPS}
    assert run_info(gen_run) == {k: info[k] for k in ("r_loss", "kl_loss", "training_size", "training_steps")}
    vae = export(vae_run, tmp_path / "flock.vae.json", info={"name": "my sheep", "mode": 2, "scale_factor": 1,
                                                             "author": "me"}).info
    assert vae["mode"] == 0 and vae["version"] == 6 and vae["name"] == "my sheep" and vae["author"] == "me"
    assert vae["scale_factor"] == json.loads((vae_run / "run.json").read_text())["scale_factor"]
    assert vae["kl_loss"] > 0 and vae["training_steps"] == STEPS
    # a model without a run: no run figures
    plain = export(sketchrnn.load(gen_run), tmp_path / "plain.gen.json").info
    assert set(plain) == {"mode", "version", "max_seq_len", "name", "scale_factor"}


def test_last_checkpoint_without_validation_takes_the_logged_costs(gen_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(gen_run, run)
    pointer = json.loads((run / "checkpoint.json").read_text())
    assert not (run / pointer["last"] / "eval.json").exists()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = next(e for e in logged if e["kind"] == "valid" and e["step"] == STEPS)
    info = run_info(run, "last")
    assert info["r_loss"] == valid["r_cost"] and info["training_steps"] == STEPS
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(e) for e in logged if e["kind"] == "train") + "\n{torn")
    last_train = [e for e in logged if e["kind"] == "train"][-1]
    assert run_info(run, "last")["r_loss"] == last_train["r_cost"]



def test_a_damaged_evaluation_gives_way_to_the_logged_costs(gen_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(gen_run, run)
    pointer = json.loads((run / "checkpoint.json").read_text())
    expected = run_info(run)
    for content in ("not json", "[1]", '{"valid": {"cost": true, "r_cost": 1, "kl_cost": 1}}'):
        (run / pointer["best"] / "eval.json").write_text(content)
        logged = next(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                      if json.loads(line)["kind"] == "valid" and json.loads(line)["step"] == pointer["best_step"])
        info = run_info(run)
        assert info["r_loss"] == logged["r_cost"] and info["kl_loss"] == logged["kl_cost"], content
        assert info == expected  # the same figures: the log holds what eval.json held

# ---------------------------------------------------------------------- refusals: one line, nothing left
def _small(**changes) -> SketchRNN:
    torch.manual_seed(0)
    hps = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=20, max_seq_len=30).replace(**changes)
    return SketchRNN(hps, scale_factor=5.0).eval()


REFUSALS = {
    "layer_norm decoder to gen": (dict(conditional=False, dec_model="layer_norm"), "gen.json",
                                  r"can run LSTM cells only; this model's decoder is dec_model=layer_norm"),
    "hyper decoder to gen": (dict(conditional=False, dec_model="hyper"), "gen.json",
                             r"decoder is dec_model=hyper"),
    "hyper decoder to vae": (dict(dec_model="hyper"), "vae.json", r"^sketch_rnn.js can run LSTM cells only; this model's decoder is dec_model=hyper"),
    "layer_norm encoder to vae": (dict(enc_model="layer_norm"), "vae.json", r"encoder is enc_model=layer_norm"),
    "conditional to gen": (dict(), "gen.json", r"a conditional model .* cannot go to .gen.json: .* NAME.vae.json"),
    "unconditional to vae": (dict(conditional=False), "vae.json", r"unconditional model .* cannot go to .vae.json"),
    "M 5 to gen": (dict(conditional=False, num_mixture=5), "gen.json",
                   r"^@magenta/sketch and sketch_rnn.js can read only 20 mixture components; .* num_mixture=5"),
    "M 30 to vae": (dict(num_mixture=30), "vae.json", r"^sketch_rnn.js can read only 20 mixture components; .* num_mixture=30"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_what_the_libraries_cannot_run_is_refused(case: str, tmp_path: Path) -> None:
    changes, fmt, message = REFUSALS[case]
    target = tmp_path / f"model.{fmt}"
    target.write_bytes(b"an earlier file")
    before = listing(tmp_path)
    with pytest.raises(ExportError, match=message) as info:
        export(_small(**changes), target)
    assert "\n" not in str(info.value)
    assert listing(tmp_path) == before  # nothing written, the earlier file untouched


@pytest.mark.parametrize("m", [5, 30])
def test_magenta_sketch_itself_fails_on_other_mixture_sizes(m: int, tmp_path: Path) -> None:
    """Why M ≠ 20 is refused: written anyway (the format-level writer allows it), the library cannot run it."""
    from sketchrnn.interop import write_gen_json

    path = write_gen_json(_small(conditional=False, num_mixture=m), tmp_path / "m.gen.json")
    request = {"model": str(path), "pixel_factor": 1, "drawings": [[[1.0, 2.0, 1, 0, 0]]]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    magenta_sketch()
    proc = subprocess.run([node(), str(JS / "gen_reference.js"), str(tmp_path / "request.json"),
                           str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300, cwd=JS)
    assert proc.returncode != 0 and "The sum of sizes must match the size of the axis dimension" in proc.stderr


def test_weights_beyond_ten_are_refused_naming_the_largest(tmp_path: Path) -> None:
    model = _small(conditional=False)
    with torch.no_grad():
        model.output.bias[7] = -12.5
        model.output.bias[8] = 11.0
    with pytest.raises(ExportError, match=r"weight vector_rnn/RNN/output_b is -12\.5, beyond the ±10") as info:
        export(model, tmp_path / "m.gen.json")
    assert "\n" not in str(info.value) and not any(tmp_path.iterdir())
    with torch.no_grad():
        model.output.bias[7:9] = 10.0  # ±10 itself is representable: 32767
    assert export(model, tmp_path / "m.gen.json").path.is_file()


def test_unwritable_paths_are_one_line_and_leave_nothing(tmp_path: Path, monkeypatch) -> None:
    model = _small(conditional=False)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder.gen.json").mkdir()
    before = listing(tmp_path)
    cases = {tmp_path / "a_file" / "m.gen.json": "cannot write there", tmp_path / "folder.gen.json": "is a folder"}
    for target, message in cases.items():
        with pytest.raises(ExportError, match=message) as info:
            export(model, target)
        assert str(info.value).startswith(f"{target}: ") and "\n" not in str(info.value)
    assert listing(tmp_path) == before
    # a disk that fills up mid-write: the temporary file goes, the earlier file stays
    target = tmp_path / "full.gen.json"
    target.write_bytes(b"earlier")
    before = listing(tmp_path)

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sketchrnn.atomic.os.fsync", no_space)
    with pytest.raises(ExportError, match=r"full.gen.json: cannot write there \(No space left on device\)"):
        export(model, target)
    assert listing(tmp_path) == before


def test_tf_export_hands_model_and_optimizer_state_to_the_checkpoint_writer(gen_run: Path, tmp_path: Path,
                                                                             monkeypatch) -> None:
    import sketchrnn

    calls = []

    def write_checkpoint(model, directory, trainer=None):
        calls.append((model, Path(directory), trainer))
        Path(directory).mkdir()
        return directory

    monkeypatch.setattr("sketchrnn.interop.tf_write.write_checkpoint", write_checkpoint)
    result = export(gen_run, tmp_path / "magenta")
    model, directory, trainer = calls[-1]
    assert result.format == "tf" and result.path == directory == tmp_path / "magenta" and result.max_error is None
    assert trainer is not None and trainer.step == STEPS and trainer.optimizer  # Adam moments for magenta
    assert model.hps == sketchrnn.load(gen_run).hps
    export(sketchrnn.load(gen_run), tmp_path / "plain", format="tf")
    assert calls[-1][2] is None  # a bare model: a fresh optimizer state is the writer's to make
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ExportError, match="is a file; a tf export is a folder"):
        export(gen_run, tmp_path / "a_file", format="tf")


def test_format_from_the_name_or_given() -> None:
    assert format_of("a/sheep.gen.json") == "gen.json" and format_of("sheep.vae.json") == "vae.json"
    assert format_of("exported") == "tf" and format_of("magenta/sheep_model") == "tf"
    assert format_of("sheep", "gen.json") == "gen.json" and format_of("x.gen.json", "gen.json") == "gen.json"
    with pytest.raises(ExportError, match="the name says vae.json, the format asked is gen.json"):
        format_of("x.vae.json", "gen.json")
    with pytest.raises(ExportError, match="name the file NAME.gen.json"):
        format_of("sheep.json")
    with pytest.raises(ExportError, match="unknown export format 'js'"):
        format_of("sheep", "js")


# ---------------------------------------------------------------------- the command
def test_cli_export_end_to_end(gen_run: Path, vae_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(gen_run), "--out", str(tmp_path / "sheep.gen.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrote .*sheep\.gen\.json \(gen\.json, [\d,]+ weights; largest quantisation error "
                     r"[\d.e-]+, in vector_rnn/", out), out
    assert sketchrnn.load(tmp_path / "sheep.gen.json").hps.num_mixture == 20
    assert main(["export", str(vae_run), "--which", "last", "--out", str(tmp_path / "plain"),
                 "--format", "vae.json"]) == 0
    assert json.loads((tmp_path / "plain").read_text())[0]["name"] == "plain"
    assert main(["export", "sheep", "--out", str(tmp_path / "official.gen.json")]) == 0  # an official name
    capsys.readouterr()
    before = listing(tmp_path)
    for argv, message in (([str(vae_run), "--out", str(tmp_path / "x.gen.json")], "cannot go to .gen.json"),
                          ([str(gen_run), "--out", str(tmp_path / "x.json")], "name the file NAME.gen.json"),
                          ([str(tmp_path / "nothing"), "--out", str(tmp_path / "x.gen.json")], "no such model")):
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sketchrnn: error: ") and message in err and err.count("\n") == 1, err
    assert listing(tmp_path) == before


def test_cli_help_names_the_formats() -> None:
    proc = subprocess.run([shutil.which("sketchrnn") or "sketchrnn", "export", "--help"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0
    assert "gen.json" in proc.stdout and "vae.json" in proc.stdout and "tf" in proc.stdout


def test_quantisation_is_the_official_one() -> None:
    from sketchrnn.interop.magenta_js import quantize

    w = np.array([0.0, 1e-4, -1e-4, 2e-4, 10.0, -10.0, 10.2, 3.3333], dtype=np.float32)
    raw = np.frombuffer(base64.b64decode(quantize(w)), dtype="<i2")
    assert raw.tolist() == [0, 0, 0, 1, 32767, -32767, 32767, 10922]
