"""Live sinks: what a Monitor streams equals what it stores; a failing sink is recorded and
the run goes on; TensorBoard and MLflow receive the scalars while the run is still open."""

from __future__ import annotations

import pytest
import torch

from splinescope.errors import SplinescopeError
from splinescope.export.sinks import CallbackSink, MlflowSink, TensorBoardSink
from splinescope.monitor import AccuracyProbe, EverySchedule, Monitor, WeightNormProbe
from splinescope.store import load_errors, load_metrics

from monitor.monitor_helpers import tiny_context, tiny_mlp  # isort: skip


def _run(tmp_path, sinks, steps=(0, 1, 2, 3, 4), close=True):
    model = tiny_mlp()
    monitor = Monitor(
        model,
        [AccuracyProbe(), WeightNormProbe()],
        tmp_path / "runs",
        EverySchedule(2),
        context=tiny_context(),
        name="sinks",
        config={"lr": 0.1},
        sinks=sinks,
    )
    for step in steps:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.9)
        monitor.step(step)
    if close:
        monitor.close()
    return monitor


def test_a_callback_sink_receives_exactly_the_stored_scalars(tmp_path):
    got: dict[tuple[str, int], float] = {}
    monitor = _run(
        tmp_path, [CallbackSink(lambda m, s: got.update({(k, s): v for k, v in m.items()}))]
    )
    stored = load_metrics(tmp_path / "runs", monitor.run_id)
    expected = {
        (f"splinescope/{p}/{k}", int(s)): v
        for p, k, s, v in zip(stored.probe, stored.key, stored.step, stored.value)
    }
    assert got == pytest.approx(expected)


def test_a_failing_sink_is_recorded_and_the_run_goes_on(tmp_path):
    def broken(metrics, step):
        raise RuntimeError("disk full")

    monitor = _run(tmp_path, [CallbackSink(broken, name="broken")])
    errors = load_errors(tmp_path / "runs", monitor.run_id)
    assert set(errors["probe"]) == {"sink:broken"} and "disk full" in errors.iloc[0]["message"]
    assert set(load_metrics(tmp_path / "runs", monitor.run_id)["step"]) == {0, 2, 4}


def test_something_that_is_not_a_sink_is_refused(tmp_path):
    with pytest.raises(SplinescopeError, match=r"sinks\[0\]: object has no open"):
        _run(tmp_path, [object()])


def test_tensorboard_sees_the_scalars_before_the_run_ends(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorBoardSink(tmp_path / "tb")
    monitor = _run(tmp_path, [sink], close=False)
    events = EventAccumulator(str(sink.folder))
    events.Reload()
    scalars = events.Scalars("weights/total_norm")
    stored = load_metrics(tmp_path / "runs", monitor.run_id).query("key == 'total_norm'")
    assert [e.step for e in scalars] == list(stored.step)
    assert [e.value for e in scalars] == pytest.approx(list(stored.value), rel=1e-6)
    assert sink.folder.name == f"sinks_{monitor.run_id[:8]}"
    monitor.close()


@pytest.mark.slow
def test_mlflow_gets_a_run_with_the_metrics_and_its_end_status(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sink = MlflowSink(uri)
    monitor = _run(tmp_path, [sink])
    run = MlflowClient(tracking_uri=uri).get_run(sink.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.1"
    assert run.data.tags["splinescope.run_id"] == monitor.run_id
    history = MlflowClient(tracking_uri=uri).get_metric_history(
        sink.mlflow_run_id, "accuracy/test_acc"
    )
    assert [m.step for m in history] == [0, 2, 4]
