"""TensorBoard export read back with TensorBoard's own EventAccumulator and compared with
the store: scalars by step under the store's names, config as hparams, arrays as files."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip(
    "tensorboard", reason="optional extra not installed: pip install 'splinescope[tensorboard]'"
)

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from splinescope import SplinescopeError  # noqa: E402
from splinescope.export import export_tensorboard  # noqa: E402
from splinescope.export._params import flat_params  # noqa: E402
from splinescope.export.commands import export_command  # noqa: E402
from splinescope.store import load_arrays, load_metrics, load_runs, resolve_run  # noqa: E402
from splinescope.store.rundata import RunData, load_run_data  # noqa: E402


@pytest.fixture(scope="module")
def exported(runs_dir, tmp_path_factory):
    dest = tmp_path_factory.mktemp("tb")
    export_command("grok-digits", runs_dir, "tensorboard", str(dest))
    (logdir,) = dest.iterdir()
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return logdir, acc


def test_scalars_have_the_store_names_steps_and_values(runs_dir, exported):
    logdir, acc = exported
    run_id = resolve_run(runs_dir, "grok-digits")
    assert logdir.name == f"grok-digits_{run_id[:8]}"
    metrics = load_metrics(runs_dir, run_id)
    expected_tags = set(metrics.probe + "/" + metrics.key)
    assert set(acc.Tags()["scalars"]) == expected_tags
    assert "lc/train/fc1" in expected_tags and "hessian/top_3" in expected_tags
    for (probe, key), group in metrics.groupby(["probe", "key"]):
        events = acc.Scalars(f"{probe}/{key}")
        assert [e.step for e in events] == group.step.tolist()
        np.testing.assert_allclose([e.value for e in events], group.value, rtol=1e-6)  # float32


def test_config_is_stored_as_hparams_and_text(runs_dir, exported):
    _, acc = exported
    row = load_runs(runs_dir).set_index("name").loc["grok-digits"]
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    got = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in hp.items()}
    expected = flat_params(row["config"])
    assert got.keys() == expected.keys() and "optim.lr" in got
    for k, v in expected.items():
        assert got[k] == (
            float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        )
    text = acc.Tensors("splinescope/config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n")) == row["config"]
    summary = acc.Tensors("splinescope/summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(summary.strip("`\n")) == row["summary"]


def test_arrays_are_files_and_pictures_are_images(runs_dir, exported):
    logdir, acc = exported
    arrays = load_arrays(runs_dir, "grok-digits")
    index = json.loads((logdir / "arrays" / "index.json").read_text())
    assert len(index) == len(arrays) > 0
    by_id = {(e["step"], e["probe"], e["key"]): e for e in index}
    for step, probe, key, array in arrays.itertuples(index=False):
        entry = by_id[(step, probe, key)]
        np.testing.assert_array_equal(np.load(logdir / "arrays" / entry["path"]), array)
        assert entry["shape"] == list(array.shape) and entry["dtype"] == str(array.dtype)
    images = acc.Images("partition/plane_png")
    stored = arrays[arrays.probe == "partition"]
    assert [im.step for im in images] == stored.step.tolist()
    import matplotlib.image as mpimg

    first = mpimg.imread(io.BytesIO(stored.array.iloc[0].tobytes()), format="png")
    assert (images[0].height, images[0].width) == first.shape[:2]


def test_live_run_exports_what_it_has_and_repeat_or_bad_dest_is_refused(runs_dir, tmp_path):
    run = load_run_data(runs_dir, "live-run")
    result = export_tensorboard(run, tmp_path)
    assert result.n_scalars == len(run.metrics) and result.arrays == ()
    with pytest.raises(SplinescopeError, match="already holds an export of run"):
        export_tensorboard(run, tmp_path)
    (tmp_path / "f").write_text("")
    with pytest.raises(SplinescopeError, match="dest .* is a file; give a folder"):
        export_tensorboard(run, tmp_path / "f")


def test_run_with_config_only_exports_its_hparams(tmp_path):
    run = RunData(
        "cfg00001", "fresh", "running", config={"lr": 0.1, "widths": [8, 8], "note": None}
    )
    result = export_tensorboard(run, tmp_path)
    assert (result.n_scalars, result.n_hparams, result.arrays) == (0, 3, ())
    acc = EventAccumulator(str(result.logdir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hp["lr"].number_value == 0.1 and hp["widths"].string_value == "[8, 8]"
    assert hp["note"].string_value == "null"
