"""``splinescope.watch``: defaults chosen from the model and data, training unchanged, stored
values equal to direct computations, steps counted, and the run's end status."""

from __future__ import annotations

import pytest
import torch
from integration_helpers import blobs, datasets, mlp, parameters_equal
from torch.utils.data import DataLoader

import splinescope
from splinescope.errors import SplinescopeError
from splinescope.integrations._common import lc_radius
from splinescope.monitor import LogSchedule, WeightNormProbe
from splinescope.store import get_run, load_metrics


def _train(model, x, y, steps, handle=None):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        batch = torch.randint(0, x.shape[0], (16,))  # the global RNG, as users do
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if handle is not None:
            handle.step()
    return model


def test_watch_leaves_training_bit_identical_and_stores_the_defaults(tmp_path):
    x, y = blobs(96, seed=1)
    data = (x, y, *blobs(64, seed=2))
    torch.manual_seed(0)
    plain = _train(mlp(), x, y, 30)
    torch.manual_seed(0)
    model = mlp()
    with splinescope.watch(model, data, runs_dir=tmp_path, steps=30) as w:
        _train(model, x, y, 30, handle=w)
    assert parameters_equal(plain, model)
    assert sorted(w.latest) == ["accuracy", "lc", "weights"] and w.skipped == {}
    assert w.current_step == 30 and get_run(tmp_path, w.run_id)["status"] == "finished"
    metrics = load_metrics(tmp_path, w.run_id)
    assert sorted(set(metrics.step)) == list(LogSchedule(40, 30).steps)
    last = metrics[metrics.step == 30].set_index(["probe", "key"])["value"]
    with torch.no_grad():
        acc = (model(data[2]).argmax(1) == data[3]).double().mean().item()
    assert last["accuracy", "test_acc"] == pytest.approx(acc, abs=1e-12)
    norm = torch.cat([p.detach().flatten() for p in model.parameters()]).norm().item()
    assert last["weights", "total_norm"] == pytest.approx(norm, rel=1e-6)
    lc = w.monitor.probes[1]
    assert lc.radius == lc_radius(x) and lc.splits == ("train", "test", "random")


def test_defaults_left_out_are_named_with_their_reason(tmp_path):
    x, y = blobs(40)
    linear = torch.nn.Linear(6, 3)
    w = splinescope.watch(linear, (x, y), runs_dir=tmp_path)
    assert set(w.skipped) == {"accuracy", "lc"} and "no test set" in w.skipped["accuracy"]
    assert [p.name for p in w.monitor.probes] == ["weights"]
    w.close()
    regressor = mlp(n_classes=1)
    w = splinescope.watch(regressor, (x, y, x, y), runs_dir=tmp_path)
    assert "not logits [B, 3]" in w.skipped["lc"]
    assert get_run(tmp_path, w.run_id)["config"]["defaults_left_out"] == w.skipped
    w.close()


def test_loaders_probes_tables_and_an_explicit_step(tmp_path):
    train, test = datasets()
    loaders = (DataLoader(train, batch_size=8, shuffle=True), DataLoader(test, batch_size=8))
    model = mlp()
    before = torch.get_rng_state()
    w = splinescope.watch(
        model,
        loaders,
        probes=[WeightNormProbe(), {"kind": "accuracy", "schedule": "steps:0,5"}],
        runs_dir=tmp_path,
        schedule="every:2",
        steps=10,
        n_train=20,
    )
    assert torch.equal(before, torch.get_rng_state())  # the loaders were not iterated
    assert torch.equal(w.monitor.context.x_train, train.tensors[0][:20])
    assert set(w.step(5)) == {"accuracy"} and set(w.step()) == {"weights"}
    assert w.step() is None and w.current_step == 7
    w.close()
    steps = load_metrics(tmp_path, w.run_id).groupby("probe")["step"].unique()
    assert list(steps["accuracy"]) == [0, 5] and list(steps["weights"]) == [0, 6]


def test_a_crash_in_the_block_marks_the_run_crashed(tmp_path):
    x, y = blobs(30)
    with pytest.raises(ZeroDivisionError):
        with splinescope.watch(mlp(), (x, y), runs_dir=tmp_path) as w:
            raise ZeroDivisionError
    assert get_run(tmp_path, w.run_id)["status"] == "crashed"


def test_bad_input_names_the_argument(tmp_path):
    with pytest.raises(SplinescopeError, match="data: expected a SplitData"):
        splinescope.watch(mlp(), "digits", runs_dir=tmp_path)
    with pytest.raises(SplinescopeError, match="steps: expected an integer"):
        splinescope.watch(mlp(), blobs(10), runs_dir=tmp_path, steps=0)
    with pytest.raises(SplinescopeError, match="y_train must be integer class indices"):
        splinescope.watch(mlp(), (torch.rand(4, 6), torch.rand(4)), runs_dir=tmp_path)
