"""A population of K runs trained at once against its oracle, K separate ``train()`` runs of
the same configs: the same run rows and configs, metrics, arrays, probe specs, checkpoints,
snapshots and summaries.

Tolerance: none. The batched AdamW repeats torch's single-tensor AdamW op by op, and
``baddbmm``/``bmm`` per batch element equal ``addmm``/``mm`` bit for bit with this build's MKL
on these shapes, so the stored values are compared for equality (accuracy-type metrics and
everything else). The optimizer alone is also checked bit for bit against torch's AdamW on
random gradients (``test_stacked_adamw_is_k_torch_adamws``), independent of the BLAS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinescope.errors import SplinescopeError
from splinescope.store import get_run, load_arrays, load_metrics, load_probes, load_runs
from splinescope.store.checkpoints import checkpoint_path, load_snapshot, snapshot_steps
from splinescope.train import TrainConfig, train
from splinescope.train.population import (
    StackedAdamW,
    check_population,
    population_key,
    train_population,
)
from splinescope.train.signals import Interrupted

PROBES = (
    {"kind": "accuracy"},
    {"kind": "lc", "radius": 0.05, "n_points": 30, "n_vertices": 8},
    {"kind": "weights"},
    {"kind": "units"},
)
BASE = TrainConfig(
    name="pop",
    dataset="digits",
    n_train=120,
    width=24,
    depth=2,
    init_scale=4.0,
    batch_size=40,
    steps=40,
    schedule="every:10",
    n_random=40,
    probes=PROBES,
)
MEMBERS = (
    {"seed": 0, "init_scale": 1.0, "weight_decay": 0.0, "lr": 1e-3},
    {"seed": 1, "init_scale": 8.0, "weight_decay": 0.1, "lr": 3e-3},
    {"seed": 2, "init_scale": 4.0, "weight_decay": 0.01, "lr": 1e-2},
)


def _configs(base: TrainConfig = BASE, members=MEMBERS) -> list[TrainConfig]:
    from dataclasses import replace

    return [replace(base, name=f"pop/{i}", **m) for i, m in enumerate(members)]


def _strip(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in ("run_id", "wall_time") if c in frame]).reset_index(
        drop=True
    )


def _assert_same_run(dir_a, id_a, dir_b, id_b) -> None:
    """Everything the store holds of run a equals run b's (ids and clocks aside)."""
    a, b = get_run(dir_a, id_a), get_run(dir_b, id_b)
    for key in ("name", "status", "config", "summary", "divergence", "last_step"):
        assert a[key] == b[key], key
    pd.testing.assert_frame_equal(
        _strip(load_metrics(dir_a, id_a)), _strip(load_metrics(dir_b, id_b))
    )
    arrays_a, arrays_b = load_arrays(dir_a, id_a), load_arrays(dir_b, id_b)
    cols = ["step", "probe", "key"]
    assert arrays_a[cols].values.tolist() == arrays_b[cols].values.tolist()
    assert len(arrays_a) > 0
    for x, y in zip(arrays_a["array"], arrays_b["array"], strict=True):
        np.testing.assert_array_equal(x, y)
    assert load_probes(dir_a, id_a) == load_probes(dir_b, id_b)
    assert snapshot_steps(dir_a, id_a) == snapshot_steps(dir_b, id_b)
    for step in snapshot_steps(dir_a, id_a):
        sa, sb = load_snapshot(dir_a, id_a, step), load_snapshot(dir_b, id_b, step)
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (step, k)
    ca = torch.load(checkpoint_path(dir_a, id_a), weights_only=True)
    cb = torch.load(checkpoint_path(dir_b, id_b), weights_only=True)
    _assert_same_checkpoint(ca, cb)


def _assert_same_checkpoint(ca: dict, cb: dict) -> None:
    assert ca["step"] == cb["step"] and ca["monitor"] == cb["monitor"]
    assert torch.equal(ca["torch_rng"], cb["torch_rng"])
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    assert ca["optimizer"]["param_groups"] == cb["optimizer"]["param_groups"]
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[i][k], sb[i][k]), (i, k)
    assert ca["sampler"]["position"] == cb["sampler"]["position"]
    assert torch.equal(ca["sampler"]["order"], cb["sampler"]["order"])
    assert torch.equal(ca["sampler"]["generator"], cb["sampler"]["generator"])


@pytest.fixture(scope="module")
def separate(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("separate")
    return runs_dir, [train(c, runs_dir=runs_dir).run_id for c in _configs()]


def test_a_population_stores_exactly_what_separate_runs_store(separate, tmp_path):
    sep_dir, sep_ids = separate
    results = train_population(_configs(), runs_dir=tmp_path)
    assert all(not isinstance(r, BaseException) for r in results), results
    runs = load_runs(tmp_path)
    assert list(runs["name"]) == [c.name for c in _configs()]
    for result, sep_id in zip(results, sep_ids, strict=True):
        _assert_same_run(tmp_path, result.run_id, sep_dir, sep_id)
        assert result.step == BASE.steps
    # the members really differ (their own seeds, scales and decays)
    m0, m1 = (load_metrics(tmp_path, r.run_id) for r in results[:2])
    assert not m0["value"].equals(m1["value"])


def test_a_stopped_population_resumes_from_its_members_checkpoints(separate, tmp_path):
    sep_dir, sep_ids = separate
    started: list[str] = []
    with pytest.raises(Interrupted):
        train_population(
            _configs(), runs_dir=tmp_path, stop_after=17, on_start=lambda k, r: started.append(r)
        )
    assert len(started) == 3
    assert set(load_runs(tmp_path)["status"]) == {"interrupted"}
    for run_id in started:
        assert torch.load(checkpoint_path(tmp_path, run_id), weights_only=True)["step"] == 17
    results = train_population([None] * 3, runs_dir=tmp_path, resume=started)
    assert [r.run_id for r in results] == started
    assert len(load_runs(tmp_path)) == 3  # nothing run twice
    for run_id, sep_id in zip(started, sep_ids, strict=True):
        _assert_same_run(tmp_path, run_id, sep_dir, sep_id)


def test_a_separate_run_resumes_a_members_checkpoint(separate, tmp_path):
    """A member's checkpoint is a separate run's: train(resume=...) continues it exactly."""
    sep_dir, sep_ids = separate
    started: list[str] = []
    with pytest.raises(Interrupted):
        train_population(
            _configs(), runs_dir=tmp_path, stop_after=23, on_start=lambda k, r: started.append(r)
        )
    train(None, runs_dir=tmp_path, resume=started[1])
    _assert_same_run(tmp_path, started[1], sep_dir, sep_ids[1])


def test_members_at_different_steps_resume_as_one_population_per_step(separate, tmp_path):
    sep_dir, sep_ids = separate
    configs = _configs()
    ids = []
    for config, stop in zip(configs, (9, 27, 9), strict=True):
        started: list[str] = []
        with pytest.raises(Interrupted):
            train(config, runs_dir=tmp_path, stop_after=stop, on_start=started.append)
        ids.append(started[0])
    results = train_population([None] * 3, runs_dir=tmp_path, resume=ids)
    assert [r.run_id for r in results] == ids
    for run_id, sep_id in zip(ids, sep_ids, strict=True):
        _assert_same_run(tmp_path, run_id, sep_dir, sep_id)


def test_divergence_of_one_member_is_that_members_alone(tmp_path):
    from dataclasses import replace

    base = replace(BASE, steps=30, probes=({"kind": "accuracy"}, {"kind": "weights"}))
    members = ({"seed": 0, "lr": 1e-3}, {"seed": 1, "lr": 1e30, "init_scale": 8.0})
    configs = _configs(base, members)
    sep = tmp_path / "sep"
    sep_ids = [train(c, runs_dir=sep).run_id for c in configs]
    results = train_population(configs, runs_dir=tmp_path / "pop")
    assert results[1].divergence is not None and results[0].divergence is None
    assert results[1].divergence == train(configs[1], runs_dir=tmp_path / "x").divergence
    for result, sep_id in zip(results, sep_ids, strict=True):
        a, b = get_run(tmp_path / "pop", result.run_id), get_run(sep, sep_id)
        assert (a["status"], a["divergence"], a["summary"]) == (
            b["status"],
            b["divergence"],
            b["summary"],
        )
        pd.testing.assert_frame_equal(
            _strip(load_metrics(tmp_path / "pop", result.run_id)), _strip(load_metrics(sep, sep_id))
        )


def test_a_failing_member_fails_alone(tmp_path):
    results = train_population(
        [None, _configs()[0]], runs_dir=tmp_path, resume=["no-such-run", None]
    )
    assert isinstance(results[0], SplinescopeError)
    assert not isinstance(results[1], BaseException)
    assert list(load_runs(tmp_path)["status"]) == ["finished"]


def test_which_configs_share_a_population():
    a, b, c = _configs()
    assert population_key(a) == population_key(b) == population_key(c)
    from dataclasses import replace

    for change in ({"width": 25}, {"steps": 41}, {"batch_size": 0}, {"loss": "cross_entropy"}):
        assert population_key(replace(a, **change)) != population_key(a)
    assert population_key(replace(a, optimizer="sgd")) is None
    assert population_key(replace(a, model="cnn")) is None
    with pytest.raises(SplinescopeError, match="width"):
        check_population([a, replace(b, width=25)])
    with pytest.raises(SplinescopeError, match="sgd"):
        check_population([replace(a, optimizer="sgd")])


@pytest.mark.parametrize("fused", [False, True], ids=["single-tensor", "fused"])
@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 4),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    lrs=st.lists(st.sampled_from([1e-4, 1e-3, 3e-3, 0.1]), min_size=4, max_size=4),
    wds=st.lists(st.sampled_from([0.0, 1e-2, 0.1, 1.0]), min_size=4, max_size=4),
)
def test_stacked_adamw_is_k_torch_adamws(fused, k, steps, seed, lrs, wds):
    """The oracle: K torch.optim.AdamW (the same implementation: the per-tensor loop, or the
    fused kernel) on the members' slices, same gradients: bit-equal."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(5, 3), (5,), (2, 5), (40, 17)]  # odd sizes: the kernels' scalar tails
    stacked = [torch.randn(k, *s, generator=gen) for s in shapes]
    separate = [[t[i].clone().requires_grad_() for t in stacked] for i in range(k)]
    opts = [
        torch.optim.AdamW(separate[i], lr=lrs[i], weight_decay=wds[i], fused=fused or None)
        for i in range(k)
    ]
    adam = StackedAdamW(stacked, lr=lrs[:k], weight_decay=wds[:k], fused=fused)
    for _ in range(steps):
        grads = [torch.randn(k, *s, generator=gen) * 10 for s in shapes]
        for p, g in zip(stacked, grads, strict=True):
            p.grad = g
        adam.step()
        for i in range(k):
            for p, g in zip(separate[i], grads, strict=True):
                p.grad = g[i].clone()
            opts[i].step()
    for i in range(k):
        for j, p in enumerate(separate[i]):
            assert torch.equal(p.detach(), stacked[j][i])
            assert torch.equal(opts[i].state[p]["exp_avg"], adam.exp_avg[j][i])
            assert torch.equal(opts[i].state[p]["exp_avg_sq"], adam.exp_avg_sq[j][i])
