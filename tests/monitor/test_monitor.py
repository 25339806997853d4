import numpy as np
import pytest
import torch
from monitor_helpers import blobs, tiny_context
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor import (
    AccuracyProbe,
    AdversarialProbe,
    EverySchedule,
    ExplicitSchedule,
    LocalComplexityProbe,
    Monitor,
    ProbeResult,
    UnitActivityProbe,
    WeightNormProbe,
)
from splinescope.store import (
    RunStore,
    load_arrays,
    load_errors,
    load_metrics,
    load_probes,
    load_runs,
)
from splinescope.train import mse_onehot


class Boom:
    name, needs = "boom", ()

    def compute(self, model, ctx):
        raise RuntimeError(f"kaput at {ctx.step}")


class Count:
    name, needs = "count", ()

    def __init__(self):
        self.calls = []

    def compute(self, model, ctx):
        self.calls.append(ctx.step)
        return ProbeResult(scalars={"n": float(len(self.calls))}, arrays={"v": np.arange(3)})


class Meddler:
    """A careless probe: draws from every global RNG, flips modes, writes .grad and BN stats."""

    name, needs = "meddler", ("train",)

    def compute(self, model, ctx):
        import random

        torch.rand(5)
        np.random.rand(5)
        random.random()
        model.eval()
        model.train()
        out = model(ctx.x_train[:8])  # train-mode forward: dropout draws, BN stats move
        out.sum().backward()  # accumulates into .grad
        return ProbeResult(scalars={"x": 1.0})


def test_monitor_measures_exactly_at_scheduled_steps(tmp_path, model, context):
    counter = Count()
    with Monitor(model, [counter], tmp_path, ExplicitSchedule([0, 3, 7]), context=context) as m:
        for step in range(10):
            m.step(step)
    assert counter.calls == [0, 3, 7]
    metrics = load_metrics(tmp_path, m.run_id)
    assert metrics["step"].tolist() == [0, 3, 7] and set(metrics["probe"]) == {"count"}
    arrays = load_arrays(tmp_path, m.run_id)
    assert np.array_equal(arrays["array"].iloc[0], np.arange(3))
    assert load_runs(tmp_path).iloc[0]["status"] == "finished"


def test_a_failing_probe_is_recorded_and_the_others_go_on(tmp_path, model, context):
    counter = Count()
    with Monitor(model, [Boom(), counter], tmp_path, EverySchedule(2), context=context) as m:
        for step in range(5):
            m.step(step)
    assert counter.calls == [0, 2, 4] and m.errors == 3
    errors = load_errors(tmp_path, m.run_id)
    assert errors["step"].tolist() == [0, 2, 4] and set(errors["probe"]) == {"boom"}
    assert "RuntimeError: kaput at 2" in errors["message"].iloc[1]
    assert "Traceback" in errors["traceback"].iloc[0] and "compute" in errors["traceback"].iloc[0]
    assert load_runs(tmp_path).iloc[0]["status"] == "finished"


def test_strict_mode_reraises_and_marks_the_run_crashed(tmp_path, model, context):
    with pytest.raises(RuntimeError, match="kaput"):
        with Monitor(
            model, [Boom()], tmp_path, EverySchedule(1), context=context, strict=True
        ) as m:
            m.step(0)
    assert load_runs(tmp_path).iloc[0]["status"] == "crashed"
    assert len(load_errors(tmp_path, m.run_id)) == 1


@pytest.mark.parametrize(
    "exc, status", [(None, "finished"), (ValueError, "crashed"), (KeyboardInterrupt, "interrupted")]
)
def test_context_manager_closes_the_run_with_the_right_status(
    tmp_path, model, context, exc, status
):
    counter = Count()
    try:
        with Monitor(model, [counter], tmp_path, EverySchedule(1), context=context) as m:
            m.step(0)
            if exc is not None:
                raise exc
    except (ValueError, KeyboardInterrupt):
        pass
    assert load_runs(tmp_path).iloc[0]["status"] == status
    assert len(load_metrics(tmp_path, m.run_id)) == 1  # data kept in every case
    with pytest.raises(SplinescopeError, match="closed"):
        m.measure(1)


def test_monitor_writes_into_a_given_store_and_run(tmp_path, model, context):
    store = RunStore(tmp_path)
    run_id = store.create_run("mine", {"a": 1}, seed=3)
    with Monitor(model, [Count()], store, EverySchedule(1), context=context, run_id=run_id) as m:
        m.step(0)
    assert m.run_id == run_id
    runs = load_runs(tmp_path)
    assert len(runs) == 1 and runs.iloc[0]["name"] == "mine"
    store.log_scalars(run_id, 1, "after", {"x": 1.0})  # the Monitor did not close our store
    store.close()


def test_monitor_rejects_bad_arguments(tmp_path, model, context):
    with pytest.raises(SplinescopeError, match="needs train, test, loss_fn"):
        Monitor(model, [AccuracyProbe()], tmp_path, EverySchedule(1))
    with pytest.raises(SplinescopeError, match="unique"):
        Monitor(model, [Count(), Count()], tmp_path, EverySchedule(1), context=context)
    with pytest.raises(SplinescopeError, match="schedule"):
        Monitor(model, [Count()], tmp_path, [0, 1], context=context)
    with pytest.raises(SplinescopeError, match="not a probe"):
        Monitor(model, [object()], tmp_path, EverySchedule(1), context=context)
    with pytest.raises(SplinescopeError, match="store"):
        Monitor(model, [Count()], object(), EverySchedule(1), context=context)


def test_the_guard_undoes_a_careless_probe(tmp_path, context):
    import random

    model = nn.Sequential(
        nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)
    )
    model.eval()
    model(context.x_train).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    _, key, pos, *_ = np.random.get_state()
    rng = (torch.get_rng_state(), key.copy(), pos, random.getstate())
    with Monitor(model, [Meddler()], tmp_path, EverySchedule(1), context=context) as m:
        assert m.step(0)["meddler"].scalars == {"x": 1.0}
    assert not model.training and not any(mod.training for mod in model.modules())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    assert torch.equal(rng[0], torch.get_rng_state())
    assert np.array_equal(rng[1], np.random.get_state()[1])
    assert rng[2] == np.random.get_state()[2] and rng[3] == random.getstate()


def _train(monitor_dir=None, steps=20):
    """A small training loop that leans on everything a probe could disturb: global-RNG batch
    sampling, dropout, BatchNorm statistics, momentum, gradient accumulation over two batches."""
    torch.manual_seed(0)
    np.random.seed(0)
    model = nn.Sequential(
        nn.Linear(6, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 3),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = blobs(200, seed=4)
    ctx = tiny_context()
    probes = [
        AccuracyProbe(),
        LocalComplexityProbe(radius=0.1, n_vertices=8, n_points=30),
        AdversarialProbe(eps=(0.05,), steps=3, n_points=20, splits=("test", "train")),
        WeightNormProbe(),
        UnitActivityProbe(),
        Meddler(),
    ]
    monitor = (
        Monitor(model, probes, monitor_dir, EverySchedule(4), context=ctx)
        if monitor_dir is not None
        else None
    )
    model.train()
    for step in range(steps + 1):
        if step > 0:
            optimizer.zero_grad()
            for _ in range(2):
                index = torch.randint(0, 200, (16,))
                noise = torch.from_numpy(np.random.randn(16, 6).astype(np.float32)) * 0.01
                mse_onehot(model(x[index] + noise), y[index]).backward()
            optimizer.step()
        if monitor is not None:
            monitor.step(step)
    if monitor is not None:
        monitor.close()
        assert monitor.errors == 0
    return model


@pytest.mark.slow
def test_measuring_never_changes_the_run(tmp_path):
    plain = _train()
    watched = _train(tmp_path)
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(load_metrics(tmp_path, load_runs(tmp_path).iloc[0]["run_id"])) > 50


def test_each_probe_runs_on_its_own_schedule(tmp_path, model, context):
    fast, slow = Count(), Count()
    slow.name = "slow"
    with Monitor(
        model,
        [fast, (slow, ExplicitSchedule([0, 9]))],
        tmp_path,
        EverySchedule(3),
        context=context,
    ) as m:
        ran = [sorted(r) for step in range(10) if (r := m.step(step)) is not None]
    assert fast.calls == [0, 3, 6, 9] and slow.calls == [0, 9]
    assert ran == [["count", "slow"], ["count"], ["count"], ["count", "slow"]]
    specs = load_probes(tmp_path, m.run_id)
    assert list(specs) == ["count", "slow"]
    assert specs["slow"]["schedule"] == "ExplicitSchedule(steps=(0, 9))"


def test_lc_at_several_radii_in_one_run(tmp_path, model, context):
    probes = [
        LocalComplexityProbe(radius=r, n_vertices=8, n_points=30, name=f"lc_r{r:g}")
        for r in (0.05, 0.5)
    ]
    with Monitor(model, probes, tmp_path, ExplicitSchedule([0]), context=context) as m:
        results = m.step(0)
    small, large = results["lc_r0.05"], results["lc_r0.5"]
    assert small.scalars["train_total"] <= large.scalars["train_total"]
    specs = load_probes(tmp_path, m.run_id)
    assert specs["lc_r0.05"]["kind"] == "lc" and specs["lc_r0.5"]["config"]["radius"] == 0.5
    assert any(s["headline"] for s in specs["lc_r0.5"]["outputs"]["scalars"])


def test_probes_get_only_what_they_declare(tmp_path, model, context):
    seen = {}

    class Peek(Count):
        name, needs = "peek", ("test",)

        def compute(self, model, ctx):
            seen.update(train=ctx.x_train, test=ctx.x_test, loss=ctx.loss_fn)
            return super().compute(model, ctx)

    with Monitor(model, [Peek()], tmp_path, EverySchedule(1), context=context) as m:
        m.step(0)
    assert seen["train"] is None and seen["loss"] is None and seen["test"] is context.x_test


def test_monitor_state_survives_a_resume(tmp_path, model, context):
    first = Monitor(model, [Boom(), Count()], tmp_path, EverySchedule(1), context=context)
    first.step(0)
    first.step(1)
    state = first.state_dict()
    first.close("interrupted")
    again = Monitor(
        model, [Boom(), Count()], tmp_path, EverySchedule(1), context=context, run_id=first.run_id
    )
    again.load_state_dict(state)
    assert again.errors == 2 and again.probe_errors == {"boom": 2}
    assert again.last_step == 1 and again.latest == {"count": {"n": 2.0}}
    other = Monitor(model, [Count()], tmp_path, EverySchedule(2), context=context)
    with pytest.raises(SplinescopeError, match="differ"):
        other.load_state_dict(state)
