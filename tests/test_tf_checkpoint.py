"""magenta TF checkpoint folders written by us (sketchrnn.interop.tf_write), checked on the real ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import GOLDEN_TF
from sketchrnn import HParams, SketchRNN
from sketchrnn.interop import from_tf_variables
from sketchrnn.interop.tf_bundle import read_bundle
from sketchrnn.interop.tf_write import adam_step, optimizer_state, required_keys, write_checkpoint
from sketchrnn.train.checkpoint import TrainerState

CHECKPOINTS = GOLDEN_TF / "checkpoints"
NAMES = ["cond_lstm", "uncond_layer_norm"]


def imported(name: str):
    """A real checkpoint as our model and trainer state (what --init-from and load build)."""
    tensors = read_bundle(CHECKPOINTS / name / "vector-5")
    config = json.loads((CHECKPOINTS / name / "model_config.json").read_text())
    trainable = {k: v for k, v in tensors.items() if k.startswith("vector_rnn/")
                 and not k.startswith("vector_rnn/vector_rnn/") and k.split("/")[-1] not in
                 ("Variable", "Variable_1", "beta1_power", "beta2_power", "global_step")}
    model = from_tf_variables(trainable, config, scale_factor=2.0)
    step = int(tensors["vector_rnn/global_step"])
    trainer = TrainerState(step=step, optimizer=optimizer_state(model, tensors),
                           optimizer_step=adam_step(tensors["vector_rnn/beta1_power"], step))
    return tensors, config, model, trainer


@pytest.mark.parametrize("name", NAMES)
def test_real_checkpoint_written_back_is_the_same_bytes(name: str, tmp_path) -> None:
    tensors, config, model, trainer = imported(name)
    assert trainer.optimizer_step == 5
    out = write_checkpoint(model, tmp_path / name, trainer)
    again = read_bundle(out / "vector-5")
    assert list(again) == list(tensors)  # every key, Adam slots and the three models' scalars included
    for key, value in tensors.items():
        assert again[key].dtype == value.dtype and again[key].shape == value.shape, key
        assert again[key].tobytes() == value.tobytes(), f"{key} differs"
    for suffix in (".index", ".data-00000-of-00001"):  # TF's own layout, byte for byte
        assert (out / f"vector-5{suffix}").read_bytes() == (CHECKPOINTS / name / f"vector-5{suffix}").read_bytes()
    assert json.loads((out / "model_config.json").read_text()) == config
    assert (out / "model_config.json").read_text() == (CHECKPOINTS / name / "model_config.json").read_text()
    assert (out / "checkpoint").read_text() == (CHECKPOINTS / name / "checkpoint").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_a_fresh_model_gets_a_fresh_optimizer_and_every_required_key(name: str, tmp_path) -> None:
    golden = read_bundle(CHECKPOINTS / name / "vector-5")
    config = json.loads((CHECKPOINTS / name / "model_config.json").read_text())
    torch.manual_seed(0)
    model = SketchRNN(HParams.from_dict(config), scale_factor=1.0)
    assert required_keys(model) == list(golden)  # what magenta's graph restores, as magenta saved it
    out = write_checkpoint(model, tmp_path / "fresh")
    tensors = read_bundle(out / "vector-0")
    assert list(tensors) == list(golden)
    assert (out / "checkpoint").read_text().startswith('model_checkpoint_path: "vector-0"')
    for key, value in tensors.items():
        if key.endswith(("/Adam", "/Adam_1")):
            assert not value.any(), key
    for scope in ("vector_rnn", "vector_rnn_1", "vector_rnn_2"):
        assert tensors[f"{scope}/global_step"] == 0 and tensors[f"{scope}/global_step"].dtype == np.int32
        assert tensors[f"{scope}/beta1_power"] == np.float32(0.9)
        assert tensors[f"{scope}/beta2_power"] == np.float32(0.999)
        assert tensors[f"{scope}/Variable"] == np.float32(model.hps.learning_rate)
        assert tensors[f"{scope}/Variable_1"] == np.float32(model.hps.kl_weight_start)
        # the eval and sample models' scalars as magenta saved them
        if scope != "vector_rnn":
            for v in ("beta1_power", "beta2_power", "Variable", "Variable_1"):
                assert tensors[f"{scope}/{v}"].tobytes() == golden[f"{scope}/{v}"].tobytes()


@pytest.mark.parametrize("cells", [dict(conditional=True, enc_model="layer_norm", dec_model="hyper"),
                                   dict(conditional=False, dec_model="hyper")])
def test_every_cell_round_trips(cells: dict, tmp_path) -> None:
    hps = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=10, **cells)
    torch.manual_seed(1)
    model = SketchRNN(hps, scale_factor=3.0)
    state = {f"adam.{kind}.{name}": torch.randn_like(p) for name, p in model.named_parameters() for kind in "mv"}
    trainer = TrainerState(step=12, optimizer=state, optimizer_step=12)
    out = write_checkpoint(model, tmp_path / "ckpt", trainer)
    tensors = read_bundle(out / "vector-12")
    assert list(tensors) == required_keys(model)
    assert tensors["vector_rnn/beta1_power"] == np.float32(0.9) ** 13  # β₁^(t+1), as TF's Adam keeps it
    back = optimizer_state(model, tensors)
    for key, value in state.items():
        assert torch.equal(back[key], value), key


def test_a_run_is_written_with_its_adam_state(tmp_path) -> None:
    from sketchrnn.train import train
    from sketchrnn.train.checkpoint import load_trainer_state

    hps = HParams.preset("tiny").replace(batch_size=4, save_every=1000)
    run = tmp_path / "run"
    train(run, hps, data=[str(GOLDEN_TF / "aaron_sheep_subset_le60.npz")], steps=3, progress=False)
    model, state = load_trainer_state(run)  # what export hands the writer for a run
    out = write_checkpoint(model, tmp_path / "tf", state)
    tensors = read_bundle(out / "vector-3")
    assert int(tensors["vector_rnn/global_step"]) == 3
    assert tensors["vector_rnn/beta2_power"] == np.float32(0.999) ** 4
    for key, value in optimizer_state(model, tensors).items():
        assert torch.equal(value, state.optimizer[key]), key
    write_checkpoint(model, out, state)  # a checkpoint folder is replaced whole
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "model_config.json", "sketchrnn.json",
                                                    "vector-3.data-00000-of-00001", "vector-3.index"]
    with pytest.raises(FileExistsError, match="not a checkpoint and not empty"):
        write_checkpoint(model, run)  # never over a folder of something else
    assert not list(tmp_path.glob(".*tmp-*")) and not list(tmp_path.glob(".*old-*"))  # nothing half-written left


def test_init_from_continues_a_magenta_checkpoint_with_its_adam_state(tmp_path) -> None:
    from sketchrnn.cli import main
    from sketchrnn.data import load_dataset
    from sketchrnn.interop.tf_write import read_training_checkpoint
    from sketchrnn.train import train
    from sketchrnn.train.checkpoint import load_trainer_state
    from sketchrnn.train.optim import kl_weight

    folder = CHECKPOINTS / "cond_lstm"
    data = [str(GOLDEN_TF / "aaron_sheep_subset_le60.npz")]
    hps = HParams.from_json(folder / "model_config.json")
    # at its own step count: the run's first checkpoint is the imported model and optimizer, exactly
    start = train(tmp_path / "start", hps, data=data, steps=5, init_from=folder, progress=False)
    assert start.step == 5 and start.train_costs == []
    model, state = load_trainer_state(tmp_path / "start")
    assert state.step == 5 and state.optimizer_step == 5
    out = write_checkpoint(model, tmp_path / "back", state)
    for suffix in (".index", ".data-00000-of-00001"):  # and it goes back to magenta unchanged
        assert (out / f"vector-5{suffix}").read_bytes() == (folder / f"vector-5{suffix}").read_bytes()
    # three steps on: the first loss is the imported model's on the run's first batch
    summary = train(tmp_path / "run", hps, data=data, steps=8, init_from=folder, progress=False)
    assert summary.step == 8 and len(summary.train_costs) == 3
    dataset = load_dataset(data, random_scale_factor=hps.random_scale_factor,
                           augment_stroke_prob=hps.augment_stroke_prob, seed=0)
    torch.manual_seed(0)
    ours, _ = read_training_checkpoint(folder, hps.replace(max_seq_len=dataset.max_seq_len), dataset.scale_factor)
    batch = dataset.train.random_batch(hps.batch_size)
    loss = ours.train().compute_loss(torch.from_numpy(batch.inputs), batch.lengths, kl_weight(hps, 5))
    assert summary.train_costs[0] == pytest.approx(loss.cost.item(), rel=1e-6)
    assert load_trainer_state(tmp_path / "run")[1].optimizer_step == 8
    # the command line
    assert main(["train", "--init-from", str(folder), "--data", *data, "--steps", "6", "--out",
                 str(tmp_path / "cli"), "--quiet"]) == 0
    assert load_trainer_state(tmp_path / "cli")[1].step == 6
    assert main(["train", "--init-from", str(folder), "--preset", "tiny", "--out", str(tmp_path / "x")]) == 2


def test_export_tf_then_load_gives_the_model_back(tmp_path) -> None:
    import sketchrnn
    from sketchrnn.interop import export

    hps = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=10, dec_model="layer_norm")
    torch.manual_seed(2)
    model = SketchRNN(hps, scale_factor=4.5)
    result = export(model, tmp_path / "magenta")
    assert result.format == "tf" and (tmp_path / "magenta" / "vector-0.index").is_file()
    back = sketchrnn.load(tmp_path / "magenta", scale_factor=4.5)
    assert back.hps == model.hps and back.scale_factor == 4.5
    for a, b in zip(model.parameters(), back.parameters()):
        assert torch.equal(a, b)


def test_the_command_line_takes_a_magenta_folder_and_its_scale_factor(tmp_path, capsys) -> None:
    from sketchrnn.cli import main

    folder = CHECKPOINTS / "uncond_layer_norm"  # its data is not beside it
    assert main(["info", str(folder)]) == 2
    assert "pass --scale-factor F" in capsys.readouterr().err
    assert main(["info", str(folder), "--scale-factor", "22.26"]) == 0
    assert "scale factor: 22.26" in capsys.readouterr().out
    assert main(["sample", str(folder), "--scale-factor", "22.26", "--n", "2", "--seed", "1",
                 "--out", str(tmp_path / "s")]) == 0
    assert main(["export", str(folder), "--scale-factor", "22.26", "--out", str(tmp_path / "tf")]) == 0
    # the folder's own Adam moments and step come along: TF's files again, byte for byte
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / "tf" / f"vector-5{suffix}").read_bytes() == (folder / f"vector-5{suffix}").read_bytes()
    assert json.loads((tmp_path / "tf" / "sketchrnn.json").read_text()) == {"scale_factor": 22.26}


def test_an_exported_model_keeps_its_own_scale_factor(tmp_path):
    """An official model was not trained on the data_set its magenta config names: the folder keeps
    the model's scale factor beside magenta's files, and loading prefers it."""
    import json

    import sketchrnn
    from sketchrnn.interop.tf_checkpoint import load_checkpoint

    sheep = sketchrnn.load("sheep")
    out = write_checkpoint(sheep, tmp_path / "sheeptf")
    assert json.loads((out / "sketchrnn.json").read_text()) == {"scale_factor": pytest.approx(sheep.scale_factor)}
    assert load_checkpoint(out).scale_factor == pytest.approx(sheep.scale_factor)
    assert load_checkpoint(out, scale_factor=2.0).scale_factor == 2.0  # the caller's word comes first
    for bad in ('{"scale_factor": -1}', '{"scale_factor": true}', '{"scale_factor": "63"}', '[63]'):
        (out / "sketchrnn.json").write_text(bad)
        with pytest.raises(ValueError, match=r"sketchrnn\.json: expected"):
            load_checkpoint(out)
