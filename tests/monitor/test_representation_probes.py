"""Representation probes equal their measures called directly on the same points; the CKA
drift references survive a state_dict round trip (through JSON, as checkpoints store them)."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch
from monitor_helpers import tiny_context, tiny_mlp

from splinescope.errors import SplinescopeError
from splinescope.monitor import ExplicitSchedule, Monitor, check_probe
from splinescope.monitor.probe import subset
from splinescope.monitor.probes import (
    CalibrationProbe,
    CKADriftProbe,
    IntrinsicDimensionProbe,
    LayerCKAProbe,
    NeuralCollapseProbe,
)
from splinescope.representation import (
    calibration_error,
    cka,
    intrinsic_dimension,
    neural_collapse,
)

LAYERS = {"1": 2, "3": 4}  # activation module -> length of the prefix model[:k] it ends


def _train_points(ctx, n, seed):
    return subset(ctx.x_train, ctx.y_train, n, seed=seed)


def _nudge(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))


def test_layer_cka_matrix_is_the_unbiased_cka_of_each_pair_of_layers(model, context):
    probe = LayerCKAProbe(n_points=64, batch_size=64)  # one batch: minibatch CKA = full CKA
    result = check_probe(probe, model, context)
    x, _ = _train_points(context, 64, 0)
    assert list(result.arrays["layers"]) == list(LAYERS)
    with torch.no_grad():
        feats = [model[:k](x) for k in LAYERS.values()]
    want = np.array([[cka(a, b, estimator="unbiased").value for b in feats] for a in feats])
    np.testing.assert_allclose(result.arrays["matrix"], want, rtol=1e-5, atol=1e-6)
    assert result.scalars["mean_offdiag"] == pytest.approx(want[0, 1], rel=1e-5)


def test_layer_cka_names_layers_in_the_given_order_and_refuses_unknown_names(model, context):
    result = LayerCKAProbe(layers=("3", "0"), n_points=40, batch_size=20).compute(model, context)
    assert list(result.arrays["layers"]) == ["3", "0"]
    with pytest.raises(SplinescopeError, match=r"\['nope'\] match no module"):
        LayerCKAProbe(layers=("1", "nope")).compute(model, context)
    with pytest.raises(SplinescopeError, match="batch_size"):
        LayerCKAProbe(batch_size=2)


def test_cka_drift_compares_each_layer_with_the_first_and_previous_steps(model, context):
    probe = CKADriftProbe(n_points=50)
    x, _ = _train_points(context, 50, 0)
    snapshots, results = [], []
    for step in (0, 5, 9):
        if step:
            _nudge(model, step)
        snapshots.append(copy.deepcopy(model))
        results.append(probe.compute(model, _at(context, step)))
    first = results[0]
    assert first.scalars["init_step"] == first.scalars["prev_step"] == 0
    assert all(
        first.scalars[f"{w}/{layer}"] == pytest.approx(1.0)
        for w in ("init", "prev")
        for layer in LAYERS
    )
    for i in (1, 2):
        got = results[i].scalars
        assert got["init_step"] == 0 and got["prev_step"] == (0, 5)[i - 1]
        with torch.no_grad():
            for layer, k in LAYERS.items():
                now = snapshots[i][:k](x)
                for which, ref in (("init", snapshots[0]), ("prev", snapshots[i - 1])):
                    want = cka(ref[:k](x), now, estimator="unbiased").value
                    assert got[f"{which}/{layer}"] == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_cka_drift_measuring_a_step_twice_keeps_its_references(model, context):
    probe = CKADriftProbe(n_points=40)
    probe.compute(model, _at(context, 0))
    _nudge(model, 1)
    once = probe.compute(model, _at(context, 3))
    again = probe.compute(model, _at(context, 3))
    assert once == again and once.scalars["prev_step"] == 0
    with pytest.raises(SplinescopeError, match="before the last measured step 3"):
        probe.compute(model, _at(context, 2))


def test_cka_drift_resumed_from_its_state_gives_the_uninterrupted_values(tmp_path):
    context = tiny_context()

    def run(steps, model, monitor_state=None, run_id=None, store=None):
        probe = CKADriftProbe(n_points=60, estimator="biased")
        mon = Monitor(
            model,
            [probe],
            store or tmp_path / "runs",
            ExplicitSchedule((0, 4, 8, 12)),
            context=context,
            run_id=run_id,
        )
        if monitor_state is not None:
            mon.load_state_dict(json.loads(json.dumps(monitor_state)))
        out = {}
        for step in steps:
            if step:
                _nudge(model, step)
            res = mon.step(step)
            if res:
                out[step] = res["cka_drift"].scalars
        state = mon.state_dict()
        mon.close("interrupted")
        return out, state, mon.run_id

    whole, _, _ = run(range(13), tiny_mlp())
    model = tiny_mlp()
    first, state, run_id = run(range(7), model)
    rest, _, _ = run(range(7, 13), model, state, run_id)
    assert {**first, **rest} == whole
    assert rest[8]["prev_step"] == 4 and rest[12]["init_step"] == 0
    assert rest[8]["init/1"] < 1.0


def test_cka_drift_state_is_checked_on_load(model, context):
    probe = CKADriftProbe(n_points=40)
    probe.compute(model, _at(context, 0))
    state = probe.state_dict()
    assert json.loads(json.dumps(state)) == state
    with pytest.raises(SplinescopeError, match="n_points = 40, this probe has n_points = 30"):
        CKADriftProbe(n_points=30).load_state_dict(state)


def test_collapse_probe_is_neural_collapse_of_the_classifier_input(model, context):
    result = check_probe(NeuralCollapseProbe(n_points=100), model, context)
    x, y = _train_points(context, 100, 0)
    with torch.no_grad():
        nc = neural_collapse(model[:4](x), y, classifier=model[4])
    for key in ("nc1", "nc1_trace_ratio", "nc2_equinorm", "nc2_w_max_angle", "nc3", "nc4"):
        assert result.scalars[key] == pytest.approx(getattr(nc, key), rel=1e-9, abs=1e-12)
    named = NeuralCollapseProbe(classifier="4", n_points=100).compute(model, context)
    assert named.scalars == result.scalars
    with pytest.raises(SplinescopeError, match="module '1' is a ReLU, not an nn.Linear"):
        NeuralCollapseProbe(classifier="1").compute(model, context)
    with pytest.raises(SplinescopeError, match="'fc' matches no module"):
        NeuralCollapseProbe(classifier="fc").compute(model, context)


def test_intrinsic_dimension_probe_is_the_measure_on_each_layer(model, context):
    probe = IntrinsicDimensionProbe(n_points=100, method="mle", k=10)
    result = check_probe(probe, model, context)
    x, _ = _train_points(context, 100, 0)
    assert result.scalars["input"] == pytest.approx(
        intrinsic_dimension(x, method="mle", k=10).dimension
    )
    with torch.no_grad():
        for layer, k in LAYERS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                want = intrinsic_dimension(model[:k](x), method="mle", k=10)
            assert result.scalars[f"id/{layer}"] == pytest.approx(want.dimension, rel=1e-9)
            assert result.scalars[f"duplicates/{layer}"] == want.n_duplicates_removed


def test_calibration_probe_is_the_calibration_of_softmax_on_the_test_set(model, context):
    result = check_probe(CalibrationProbe(n_bins=10), model, context)
    with torch.no_grad():
        probs = torch.softmax(model(context.x_test).double(), dim=1)
    cal = calibration_error(probs, context.y_test, n_bins=10)
    assert result.scalars["error"] == pytest.approx(cal.error, rel=1e-12)
    assert result.scalars["nll"] == pytest.approx(cal.nll) and result.scalars[
        "brier"
    ] == pytest.approx(cal.brier)
    np.testing.assert_array_equal(result.arrays["bin_counts"], cal.counts.numpy())
    np.testing.assert_allclose(result.arrays["bin_accuracy"], cal.accuracy.numpy())
    assert result.arrays["bin_counts"].sum() == len(context.y_test)


def _at(context, step):
    from dataclasses import replace

    return replace(context, step=step)
