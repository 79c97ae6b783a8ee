"""Tests for sketchrnn.hparams: magenta's defaults, the override syntax and model_config.json dicts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import GOLDEN_TF
from sketchrnn.hparams import HParams

# REFERENCE.md section 1 (magenta's get_default_hparams), every name and value
MAGENTA_DEFAULTS = {
    "data_set": ["aaron_sheep.npz"],
    "num_steps": 10000000,
    "save_every": 500,
    "max_seq_len": 250,
    "dec_rnn_size": 512,
    "dec_model": "lstm",
    "enc_rnn_size": 256,
    "enc_model": "lstm",
    "z_size": 128,
    "kl_weight": 0.5,
    "kl_weight_start": 0.01,
    "kl_tolerance": 0.2,
    "batch_size": 100,
    "grad_clip": 1.0,
    "num_mixture": 20,
    "learning_rate": 0.001,
    "decay_rate": 0.9999,
    "kl_decay_rate": 0.99995,
    "min_learning_rate": 0.00001,
    "use_recurrent_dropout": True,
    "recurrent_dropout_prob": 0.90,
    "use_input_dropout": False,
    "input_dropout_prob": 0.90,
    "use_output_dropout": False,
    "output_dropout_prob": 0.90,
    "random_scale_factor": 0.15,
    "augment_stroke_prob": 0.10,
    "conditional": True,
    "is_training": True,
}
BOOL_KEYS = ("use_recurrent_dropout", "use_input_dropout", "use_output_dropout", "conditional", "is_training")


def magenta_config(**changes):
    """A dict laid out like the pretrained model_config.json files: every key, booleans as 0/1."""
    cfg = {k: (int(v) if isinstance(v, bool) else v) for k, v in MAGENTA_DEFAULTS.items()}
    cfg.update(
        data_set=["aaron_sheep.npz"],
        dec_model="layer_norm",
        enc_model="layer_norm",
        max_seq_len=250,
        batch_size=100,
        use_recurrent_dropout=1,
        conditional=1,
        is_training=1,
        use_input_dropout=0,
        use_output_dropout=0,
    )
    cfg.update(changes)
    return cfg


def test_defaults_are_magentas():
    hp = HParams()
    values = hp.to_dict()
    assert set(values) == set(MAGENTA_DEFAULTS), set(values) ^ set(MAGENTA_DEFAULTS)
    for name, want in MAGENTA_DEFAULTS.items():
        got = values[name]
        assert got == want, f"{name}: {got!r} != {want!r}"
        assert type(got) is type(want), f"{name}: {type(got).__name__} != {type(want).__name__}"
    # the default list is not shared between instances
    a, b = HParams(), HParams()
    a.data_set.append("x.npz")
    assert b.data_set == ["aaron_sheep.npz"]


def test_parse_overrides():
    hp = HParams.parse("dec_model=hyper,z_size=64,data_set=[a.npz,b.npz],use_recurrent_dropout=false")
    assert hp.dec_model == "hyper"
    assert hp.z_size == 64 and type(hp.z_size) is int
    assert hp.data_set == ["a.npz", "b.npz"]
    assert hp.use_recurrent_dropout is False
    # everything else keeps magenta's default
    for name, want in MAGENTA_DEFAULTS.items():
        if name not in ("dec_model", "z_size", "data_set", "use_recurrent_dropout"):
            assert getattr(hp, name) == want, name
    # spaces, floats, ints written as floats, booleans as 1/0 and True
    hp2 = HParams.parse(" kl_weight = 0.25 , batch_size=32, num_steps=1e3, conditional=0, use_input_dropout=True ")
    assert hp2.kl_weight == 0.25 and hp2.batch_size == 32 and hp2.num_steps == 1000
    assert hp2.conditional is False and hp2.use_input_dropout is True
    assert HParams.parse("") == HParams()
    assert HParams.parse("data_set=[single.npz]").data_set == ["single.npz"]


def test_parse_on_a_base():
    base = HParams.parse("dec_model=hyper,z_size=64")
    hp = HParams.parse("z_size=32,enc_model=layer_norm", base=base)
    assert hp.dec_model == "hyper"
    assert hp.z_size == 32
    assert hp.enc_model == "layer_norm"
    assert base.z_size == 64 and base.enc_model == "lstm"  # the base is not modified
    assert HParams.parse("", base=base) == base


@pytest.mark.parametrize("text, key", [
    ("no_such_thing=1", "no_such_thing"),
    ("z_size=64,zsize=3", "zsize"),
])
def test_parse_unknown_key(text, key):
    with pytest.raises(ValueError, match=key):
        HParams.parse(text)


@pytest.mark.parametrize("text, key", [
    ("z_size=abc", "z_size"),
    ("z_size=1.5", "z_size"),
    ("dec_model=gru", "dec_model"),
    ("enc_model=transformer", "enc_model"),
    ("use_input_dropout=maybe", "use_input_dropout"),
    ("kl_weight=lots", "kl_weight"),
    ("recurrent_dropout_prob=0", "recurrent_dropout_prob"),
    ("batch_size=0", "batch_size"),
    ("learning_rate=-1", "learning_rate"),
    ("learning_rate=nan", "learning_rate"),
    ("decay_rate=1.5", "decay_rate"),
    ("kl_decay_rate=0", "kl_decay_rate"),
    ("kl_tolerance=-0.1", "kl_tolerance"),
    ("grad_clip=0", "grad_clip"),
])
def test_parse_bad_value(text, key):
    with pytest.raises(ValueError, match=key):
        HParams.parse(text)


def test_an_infinite_gradient_clip_means_no_clipping_and_is_kept():
    assert HParams.parse("grad_clip=inf").grad_clip == float("inf")


def test_parse_names_the_nearest_setting_and_refuses_one_set_twice():
    with pytest.raises(ValueError, match=r"unknown setting 'dec_rnn_sze' \(did you mean dec_rnn_size\? known:"):
        HParams.parse("dec_rnn_sze=128")
    with pytest.raises(ValueError, match="z_size is set twice"):
        HParams.parse("z_size=32,dec_model=hyper,z_size=8")


def test_parse_item_without_equals():
    with pytest.raises(ValueError, match="z_size"):
        HParams.parse("z_size")


def test_from_dict_with_01_booleans():
    cfg = magenta_config(use_recurrent_dropout=0, is_training=0)
    hp = HParams.from_dict(cfg)
    assert hp.dec_model == "layer_norm" and hp.enc_model == "layer_norm"
    assert hp.use_recurrent_dropout is False
    assert hp.is_training is False
    assert hp.conditional is True
    for name in BOOL_KEYS:
        assert type(getattr(hp, name)) is bool, name
    assert hp.data_set == ["aaron_sheep.npz"]
    # ints stored for float settings are accepted as floats
    assert HParams.from_dict(magenta_config(grad_clip=1)).grad_clip == 1.0


def test_from_dict_reads_the_golden_hps():
    info = json.loads((GOLDEN_TF / "golden_A_cond_enc-lstm_dec-lstm.json").read_text())
    for key in ("hps", "eval_hps", "sample_hps"):
        hp = HParams.from_dict(info[key])
        for name, value in info[key].items():
            assert getattr(hp, name) == value, (key, name)
    assert HParams.from_dict(info["hps"]).max_seq_len == 60


def test_to_magenta_dict_round_trip():
    cfg = magenta_config(use_output_dropout=1, conditional=0)
    hp = HParams.from_dict(cfg)
    out = hp.to_magenta_dict()
    assert set(out) == set(MAGENTA_DEFAULTS)
    for name in BOOL_KEYS:
        assert type(out[name]) is int and out[name] in (0, 1), name
    assert out == cfg
    assert HParams.from_dict(out) == hp
    # survives a trip through JSON text as model_config.json does
    assert HParams.from_dict(json.loads(json.dumps(out))) == hp
    assert '"conditional": 0' in json.dumps(out)


def test_from_dict_errors_name_the_key():
    with pytest.raises(ValueError, match="bogus_key"):
        HParams.from_dict(magenta_config(bogus_key=1))
    assert HParams.from_dict(magenta_config(bogus_key=1), strict=False) == HParams.from_dict(magenta_config())
    with pytest.raises(ValueError, match="use_input_dropout"):
        HParams.from_dict(magenta_config(use_input_dropout=2))
    with pytest.raises(ValueError, match="z_size"):
        HParams.from_dict(magenta_config(z_size="big"))
    with pytest.raises(ValueError, match="z_size"):
        HParams.from_dict(magenta_config(z_size=True))
    with pytest.raises(ValueError, match="dec_model"):
        HParams.from_dict(magenta_config(dec_model="gru"))


def test_from_json(tmp_path):
    good = tmp_path / "model_config.json"
    good.write_text(json.dumps(magenta_config(z_size=32)))
    assert HParams.from_json(good).z_size == 32
    assert HParams.from_json(str(good)) == HParams.from_json(good)


@pytest.mark.parametrize("content", [
    None,  # missing file
    "{not json",
    json.dumps(["data_set", "num_steps"]),  # what magenta's own trainer writes (the key names only)
    json.dumps({"z_size": 64, "wrong_key": 1}),
    json.dumps({"dec_model": "gru"}),
])
def test_from_json_bad_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken_model_config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as excinfo:
        HParams.from_json(path)
    assert str(path) in str(excinfo.value)


def test_replace_validates():
    hp = HParams()
    assert hp.replace(z_size=8).z_size == 8
    with pytest.raises(ValueError, match="dec_model"):
        hp.replace(dec_model="gru")
    assert dataclasses.asdict(hp) == HParams().to_dict()
