"""MLflow export read back with MlflowClient and compared with the store: metrics by step
under the store's names, config as params, env and summary as tags, arrays as artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from splinescope import SplinescopeError
from splinescope.export.to_mlflow import export_mlflow

pytest.importorskip(
    "mlflow", reason="optional extra not installed: pip install 'splinescope[mlflow]'"
)

from mlflow.tracking import MlflowClient  # noqa: E402

from splinescope.export._params import flat_params  # noqa: E402
from splinescope.store import load_arrays, load_metrics  # noqa: E402
from splinescope.store.rundata import load_run_data  # noqa: E402


def _check_against_store(client, mlflow_run_id, runs_dir, tmp_path):
    run = load_run_data(runs_dir, "grok-digits")
    got = client.get_run(mlflow_run_id)
    assert got.info.run_name == "grok-digits" and got.info.status == "FINISHED"
    assert got.data.params == {k: str(v) for k, v in flat_params(run.config).items()}
    tags = got.data.tags
    assert tags["splinescope.run_id"] == run.run_id and tags["splinescope.status"] == "finished"
    assert len(run.summary) > 8 and "grokking_gap" in run.summary
    for key, value in flat_params(run.summary).items():  # per-curve phases flattened
        assert tags[f"summary.{key}"] == str(value)
    assert tags["env.python"] == run.env["python"]
    metrics = load_metrics(runs_dir, run.run_id)
    assert set(got.data.metrics) == set(metrics.probe + "/" + metrics.key)
    for (probe, key), group in metrics.groupby(["probe", "key"]):
        history = sorted(
            client.get_metric_history(mlflow_run_id, f"{probe}/{key}"), key=lambda m: m.step
        )
        assert [m.step for m in history] == group.step.tolist()
        assert [m.value for m in history] == group.value.tolist()  # float64 kept exactly
    local = client.download_artifacts(mlflow_run_id, "arrays", str(tmp_path))
    index = json.loads((tmp_path / "arrays" / "index.json").read_text())
    arrays = load_arrays(runs_dir, run.run_id)
    assert len(index) == len(arrays) > 0
    by_id = {(e["step"], e["probe"], e["key"]): e for e in index}
    for step, probe, key, array in arrays.itertuples(index=False):
        np.testing.assert_array_equal(
            np.load(f"{local}/{by_id[(step, probe, key)]['path']}"), array
        )
    pngs = [e for e in index if e["png"]]
    assert pngs and (tmp_path / "arrays" / pngs[0]["png"]).read_bytes()[:4] == b"\x89PNG"


def test_export_to_a_file_store_reads_back_equal(runs_dir, tmp_path, monkeypatch):
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = export_mlflow(load_run_data(runs_dir, "grok-digits"), uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads file stores only so
    client = MlflowClient(tracking_uri=uri)
    (exp,) = [e for e in client.search_experiments() if e.name == "splinescope"]
    assert exp.experiment_id == result.experiment_id
    _check_against_store(client, result.mlflow_run_id, runs_dir, tmp_path / "dl")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SQLAlchemy's, inside MLflow
def test_export_to_sqlite_reads_back_equal_and_keeps_artifacts_beside_the_db(runs_dir, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = export_mlflow(load_run_data(runs_dir, "grok-digits"), uri)
    client = MlflowClient(tracking_uri=uri)
    _check_against_store(client, result.mlflow_run_id, runs_dir, tmp_path / "dl")
    assert (tmp_path / "mlflow-artifacts").is_dir()
    live = export_mlflow(load_run_data(runs_dir, "live-run"), uri)
    assert live.experiment_id == result.experiment_id  # same experiment, a second run
    assert client.get_run(live.mlflow_run_id).info.status == "RUNNING"


def test_only_local_tracking_uris_are_accepted(runs_dir):
    run = load_run_data(runs_dir, "live-run")
    for uri in ("http://localhost:5000", "databricks", "./mlruns"):
        with pytest.raises(
            SplinescopeError, match=rf"dest '{uri}': MLflow export takes a local tracking URI"
        ):
            export_mlflow(run, uri)
