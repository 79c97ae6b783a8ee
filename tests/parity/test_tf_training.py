"""Three real training steps of the reference, replayed: schedules, TF-style Adam, element-wise clip."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_close
from sketchrnn import HParams
from sketchrnn.interop import from_tf_variables, to_tf_variables
from sketchrnn.train.optim import TFAdam, clip_gradients_, kl_weight, learning_rate
from test_tf_parity import ALL_CONFIGS, golden, variables


def replay(config: str, optimizer_cls=TFAdam, dtype=torch.float32, check_gradients: bool = True):
    g, meta = golden(config)
    hps = HParams.from_dict(meta["hps"])
    model = from_tf_variables(variables(g, "init/"), hps).to(dtype)
    optimizer = optimizer_cls(model.parameters(), lr=hps.learning_rate)
    costs = []
    for k, record in enumerate(meta["train_steps"]):
        prefix = f"train/step{k}/"
        step = int(g[prefix + "global_step_before"])
        assert step == k
        lr, klw = learning_rate(hps, step), kl_weight(hps, step)
        assert lr == pytest.approx(float(g[prefix + "lr"]), rel=1e-12)
        assert klw == pytest.approx(float(g[prefix + "kl_weight"]), rel=1e-9)
        eps = torch.from_numpy(g[prefix + "eps"]).to(dtype) if prefix + "eps" in g else None
        optimizer.zero_grad()
        loss = model.compute_loss(torch.from_numpy(g[prefix + "input_data"]).to(dtype), g[prefix + "sequence_lengths"],
                                  klw, eps=eps)
        loss.cost.backward()
        costs.append((loss.cost.item(), loss.r_cost.item(), loss.kl_cost.item()))
        if check_gradients and prefix + f"grad/{next(iter(variables(g, 'init/')))}" in g:
            for name, value in to_tf_variables(model, gradients=True).items():
                tol = gradient_tolerance(config, name, k, dtype)
                assert_close(value, g[prefix + "grad/" + name], tol, f"step {k} gradient of {name}")
        clip_gradients_(model.parameters(), hps.grad_clip)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
    return model, costs, g, meta


def gradient_tolerance(config: str, name: str, step: int, dtype: torch.dtype) -> float:
    """1e-5 at step 0, which starts from the recorded weights; 5e-4 later, from our own update of
    them, which differs from TF's by float32 noise amplified in Adam's ε regime (see below).

    One gradient is ill-conditioned in float32: config B's backward encoder W_xh. Runs of the same
    maths in float32 with 1-ulp random perturbations of the hidden states land 5e-6 to 2.5e-5 from
    a float64 run at step 0 (measured, PyTorch's element-wise operations and the fused kernels
    alike), while the float64 run is 1.5e-6 from TF; after the two updates, at step 2, the float64
    run is 1.6e-4 from TF, float32 with PyTorch's operations 2.2e-4 and with the fused kernels
    8.2e-4 (the variables after three steps stay within 1e-4 all the same). It is held to 3e-5 at
    step 0 and 1e-3 later in float32, and to 1e-5 at step 0 in float64
    (`test_step0_gradients_in_float64`).
    """
    ill_conditioned = (dtype == torch.float32 and config.startswith("B_")
                       and name.endswith("ENC_RNN/bw/LayerNormLSTMCell/W_xh"))
    if step > 0:
        return 1e-3 if ill_conditioned else 5e-4
    return 3e-5 if ill_conditioned else 1e-5


def variable_tolerance(config: str, name: str) -> float:
    """1e-4, except inside config E's hyper network, where the reference itself is ill-conditioned.

    In E (unconditional HyperLSTM) the hyper network starts with zero weights into z_w and β, so
    its own LayerNorm-LSTM and z_b weights get an exactly zero gradient at step 0 and, at steps
    1-2, gradients of order 1e-8: Adam's ε regime, where the update's size is set by float32
    noise. A float64 replay of ours lands as far from TF there (1.3e-3) as our float32 one, while
    every other variable of E is within 1e-4.
    """
    hyper_internal = ("HyperLSTMCell/LayerNormLSTMCell/", "/zb/super_linear_w")
    if config.startswith("E_") and any(part in name for part in hyper_internal):
        return 2e-3
    return 1e-4


@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_three_training_steps_match_tf(config: str) -> None:
    model, costs, g, meta = replay(config)
    for (cost, r, kl), record in zip(costs, meta["train_steps"]):
        assert_close(cost, record["cost"], 1e-5, f"step {record['step']} cost")
        assert_close(r, record["r_cost"], 1e-5, f"step {record['step']} r_cost")
        assert_close(kl, record["kl_cost"], 1e-5, f"step {record['step']} kl_cost")
    for name, value in to_tf_variables(model).items():
        assert_close(value, g["final/" + name], variable_tolerance(config, name), f"variable {name} after 3 steps")


@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_step0_gradients_in_float64(config: str) -> None:
    """The maths without float32 rounding: every step-0 gradient within 1e-5 of TF's (all of them,
    the ill-conditioned one included; the replay checks them as it goes)."""
    replay(config, dtype=torch.float64)


def test_pytorch_adam_convention_would_not_match() -> None:
    """The test above can tell the two epsilon conventions apart."""
    model, _, g, _ = replay("A_cond_enc-lstm_dec-lstm", lambda params, lr: torch.optim.Adam(params, lr=lr, eps=1e-8),
                            check_gradients=False)
    errors = [abs(value - g["final/" + name]).max() for name, value in to_tf_variables(model).items()]
    assert max(errors) > 5e-4
