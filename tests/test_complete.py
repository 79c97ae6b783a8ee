"""Sketch completion (sketchrnn.generate.complete): priming as magenta-js primes, then batched drawing.

The reference is the official JavaScript library: for recorded real drawings fed to official
models (`../shared/golden/js/`), the distribution after priming on the first k points must be the
one the library computed for point k+1.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import GOLDEN_JS, GOLDEN_TF, MODELS_JS, assert_close
from sketchrnn import HParams
from sketchrnn.data import load_npz
from sketchrnn.generate import complete, encode, prime, sample
from sketchrnn.model.mixture import split_output
from sketchrnn.train import train

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
FILES = [e["file"] for e in json.loads((GOLDEN_JS / "index.json").read_text())]

pytestmark = pytest.mark.usefixtures("one_thread")


@lru_cache(maxsize=None)
def official(name: str) -> sketchrnn.SketchRNN:
    return sketchrnn.load(MODELS_JS / f"{name}.gen.json")


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A small conditional model: 40 steps of the tiny preset on real sheep."""
    run = tmp_path_factory.mktemp("complete") / "run"
    train(run, HParams.preset("tiny").replace(save_every=20), data=[SUBSET], steps=40, seed=0, progress=False)
    return sketchrnn.load(run)


def recorded_strokes(rec: dict, model: sketchrnn.SketchRNN) -> np.ndarray:
    """The recorded drawing as stroke-3 in the model's data units (the library's normalised input × scale)."""
    x = np.asarray(rec["input_normalized"], dtype=np.float64)[1:-1]  # S0 and the end token dropped
    return np.stack([x[:, 0] * model.scale_factor, x[:, 1] * model.scale_factor, x[:, 3]], axis=1)


@pytest.mark.parametrize("file", FILES)
def test_priming_on_k_points_gives_the_librarys_pdf_of_point_k_plus_1(file: str) -> None:
    rec = json.loads((GOLDEN_JS / file).read_text())
    model = official(rec["model"])
    strokes = recorded_strokes(rec, model)
    n = len(strokes)
    for k in sorted({1, 2, 5, n // 3, n // 2, n - 1}):
        state = prime(model, strokes[:k])
        with torch.no_grad():
            mix = split_output(model.output(model.dec_cell.output(state)), model.hps.num_mixture)
        want = rec["steps"][k]["pdf_t1"]  # after update(input_strokes[k]): the distribution of point k+1
        got = {"pi": torch.softmax(mix.pi_logits[0], -1), "muX": mix.mu1[0], "muY": mix.mu2[0],
               "sigmaX": mix.sigma1[0], "sigmaY": mix.sigma2[0], "corr": mix.rho[0],
               "pen": torch.softmax(mix.pen_logits[0], -1)}
        for field, expected in want.items():
            assert_close(got[field].numpy(), expected, 1e-5, f"{file} k={k} {field}")


def test_continuations_are_new_points_seeded_and_batched() -> None:
    model = official("sheep")
    rec = json.loads((GOLDEN_JS / "sheep_0.json").read_text())
    given = recorded_strokes(rec, model)[:20]
    first = complete(model, given, n=9, temperature=0.5, seed=3)
    again = model.complete(given, n=9, temperature=0.5, seed=3)
    assert len(first) == 9
    for a, b in zip(first, again):
        assert np.array_equal(a, b)  # seeded: repeatable
    assert len({len(c) for c in first}) > 1  # alternatives differ
    for c in first:
        assert c.ndim == 2 and c.shape[1] == 3 and 1 <= len(c) <= model.hps.max_seq_len - 20
        assert c[-1, 2] == 1 and np.isfinite(c).all()
        finished = np.concatenate([given, c])
        assert len(finished) <= model.hps.max_seq_len
    other = complete(model, given, n=9, temperature=0.5, seed=4)
    assert any(len(a) != len(b) or not np.array_equal(a, b) for a, b in zip(first, other))


def test_greedy_completion_is_deterministic_and_follows_the_mean() -> None:
    model = official("sheep")
    given = recorded_strokes(json.loads((GOLDEN_JS / "sheep_1.json").read_text()), model)[:15]
    a = complete(model, given, n=3, greedy=True, max_len=30)
    b = complete(model, given, n=3, greedy=True, seed=123, max_len=30)
    assert all(np.array_equal(x, a[0]) for x in a + b)  # no randomness left
    # the first point is the most likely component's mean after the given points
    state = prime(model, given)
    with torch.no_grad():
        mix = split_output(model.output(model.dec_cell.output(state)), model.hps.num_mixture)
    j = int(mix.pi_logits[0].argmax())
    expected = np.array([mix.mu1[0, j].item(), mix.mu2[0, j].item()]) * model.scale_factor
    np.testing.assert_allclose(a[0][0, :2], expected, rtol=1e-5, atol=1e-4)


def test_pen_down_versus_lifted_at_the_end_changes_what_comes_next() -> None:
    """The given pen state is read as given: its last row's p decides the decoder's next input."""
    model = official("sheep")
    given = recorded_strokes(json.loads((GOLDEN_JS / "sheep_2.json").read_text()), model)[:12]
    down, up = given.copy(), given.copy()
    down[-1, 2], up[-1, 2] = 0, 1
    state_down, state_up = prime(model, down), prime(model, up)
    assert not torch.allclose(state_down[0], state_up[0])


def test_an_empty_sketch_is_plain_sampling() -> None:
    model = official("sheep")
    for empty in ([], np.zeros((0, 3)), None):
        got = complete(model, empty, n=4, temperature=0.5, seed=1, max_len=40)
        want = sample(model, 4, temperature=0.5, seed=1, max_len=40)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_conditional_model_prior_encode_and_given_z(conditional) -> None:
    given = np.asarray(load_npz(SUBSET)["test"][0], dtype=np.float64)[:10]
    prior = complete(conditional, given, n=4, seed=0, max_len=25)
    assert len(prior) == 4 and complete(conditional, given, n=4, z="prior", seed=0, max_len=25)[0].shape == prior[0].shape
    # "encode": the partial sketch's mean z, the same as encode() gives; the same as passing that z
    z = encode(conditional, [given])[0]
    encoded = complete(conditional, given, n=4, z="encode", seed=0, max_len=25)
    passed = complete(conditional, given, n=4, z=z.numpy(), seed=0, max_len=25)
    assert all(np.array_equal(a, b) for a, b in zip(encoded, passed))
    # priming once for a shared z is priming each row with it
    once = prime(conditional, given, z[None])
    per_row = prime(conditional, given, torch.stack([z, z, z]))
    for a, b in zip(once, per_row):
        torch.testing.assert_close(b, a.expand(3, -1), rtol=1e-6, atol=1e-6)


def test_completions_primed_together_equal_each_primed_alone(conditional) -> None:
    """`start_completions` primes requests of different lengths (one shared z, one z per
    alternative, an empty sketch) in one batch: each start is the one it gets alone."""
    from sketchrnn.generate import prepare_completion, start_completion, start_completions

    test = load_npz(SUBSET)["test"]
    given = [np.asarray(test[i], dtype=np.float64)[:k] for i, k in ((0, 12), (1, 5), (2, 20), (3, 0))]
    zs = [encode(conditional, [given[0]])[0], None, None, "prior"]
    alone = [start_completion(conditional, g, 3, z, torch.Generator().manual_seed(i), None)
             for i, (g, z) in enumerate(zip(given, zs))]
    together = start_completions(conditional, [prepare_completion(conditional, g, 3, z, torch.Generator().manual_seed(i))
                                               for i, (g, z) in enumerate(zip(given, zs))])
    for a, b in zip(alone, together):
        assert a.max_len == b.max_len
        torch.testing.assert_close(b.constant, a.constant, rtol=0, atol=0)
        for x, y in zip(a.state, b.state):
            torch.testing.assert_close(y, x, rtol=1e-6, atol=1e-6)
    assert [s.max_len for s in together] == [conditional.hps.max_seq_len - len(g) for g in given]


@pytest.mark.parametrize("strokes, message", [
    (np.zeros((5, 2)), r"strokes: expected a \[k, 3\] stroke-3 array .* got shape \[5, 2\]"),
    ([[1.0, 2.0, 0.0], [float("nan"), 0.0, 1.0]], "strokes: row 1 is not finite"),
    ([[1.0, 2.0, 0.5]], "the pen column must be 0"),
    ([[1, 2], [3]], "ragged or non-numeric"),
    (np.tile([1.0, 0.0, 0.0], (156, 1)), r"has 156 points, but this model draws sketches of at most 156"),
])
def test_bad_partial_sketches_are_one_line_errors(strokes, message) -> None:
    with pytest.raises(ValueError, match=message) as err:
        complete(official("sheep"), strokes)
    assert "\n" not in str(err.value)


def test_bad_z_arguments() -> None:
    model = official("sheep")
    with pytest.raises(ValueError, match="no encoder"):
        complete(model, [[1.0, 1.0, 0.0]], z="encode")
    with pytest.raises(ValueError, match="no latent vector"):
        complete(model, [[1.0, 1.0, 0.0]], z=np.zeros(128))
    with pytest.raises(ValueError, match="'prior' or 'encode'"):
        complete(model, [[1.0, 1.0, 0.0]], z="posterior")
