"""The Lightning callback: training unchanged, stored values equal the probes run directly on
the fit's checkpoints, steps deduplicated under gradient accumulation, resume, refusals."""

from __future__ import annotations

import pytest

pytest.importorskip("lightning")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from integration_helpers import datasets, mlp, parameters_equal  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from splinescope.errors import SplinescopeError  # noqa: E402
from splinescope.export.sinks import CallbackSink  # noqa: E402
from splinescope.integrations.lightning import SplinescopeCallback  # noqa: E402
from splinescope.monitor import EverySchedule, LocalComplexityProbe, ProbeContext  # noqa: E402
from splinescope.monitor.probe import random_points  # noqa: E402
from splinescope.store import get_run, load_metrics, load_runs  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def fit(callbacks, tmp_path, max_steps=24, ckpt_path=None, accumulate=1, **trainer_args):
    pl.seed_everything(0, verbose=False)
    train, test = datasets()
    module = Module()
    trainer = pl.Trainer(
        max_steps=max_steps,
        callbacks=callbacks,
        logger=trainer_args.pop("logger", False),
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        val_check_interval=6 * accumulate,
        check_val_every_n_epoch=None,
        accumulate_grad_batches=accumulate,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
        **trainer_args,
    )
    trainer.fit(
        module,
        DataLoader(train, batch_size=16, shuffle=True),
        DataLoader(test, batch_size=32),
        ckpt_path=ckpt_path,
    )
    return module, trainer


def test_training_is_bit_identical_with_and_without_the_callback(tmp_path):
    plain, _ = fit([], tmp_path, accumulate=2)
    callback = SplinescopeCallback(runs_dir=tmp_path / "runs", schedule="every:3")
    watched, _ = fit([callback], tmp_path, accumulate=2)
    assert parameters_equal(plain, watched)
    assert load_runs(tmp_path / "runs").iloc[0]["status"] == "finished"


def test_stored_values_equal_the_probes_run_on_the_checkpoints(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    lc = LocalComplexityProbe(radius=0.05, n_points=40, n_vertices=8, splits=("train", "random"))
    callback = SplinescopeCallback(
        [lc, {"kind": "accuracy"}, {"kind": "weights"}],
        runs_dir=tmp_path / "runs",
        schedule="every:4",
        n_train=50,
        n_random=30,
    )
    fit([callback, ckpt], tmp_path, accumulate=2)
    metrics = load_metrics(tmp_path / "runs", callback.run_id)
    lc_steps = sorted(set(metrics.loc[metrics.probe == "lc", "step"]))
    assert lc_steps == [0, 4, 8, 12, 16, 20, 24]  # once per optimizer step, micro-batches aside
    acc_steps = sorted(set(metrics.loc[metrics.probe == "accuracy", "step"]))
    assert acc_steps == [6, 12, 18, 24]  # validation ends (no sanity check)

    train, test = datasets()
    x_train, _ = train.tensors
    context = ProbeContext(
        x_train=x_train[:50],
        y_train=train.tensors[1][:50],
        x_random=random_points(x_train[:50], 30, seed=0),
    )
    value = metrics.set_index(["probe", "key", "step"])["value"]
    for step in (8, 12, 24):
        module = Module()
        state = torch.load(tmp_path / "ckpt" / f"epoch={(step * 2 - 1) // 6}-step={step}.ckpt")
        module.load_state_dict(state["state_dict"])
        direct = lc.compute(module, context.restricted(lc.needs)).scalars
        for key, expected in direct.items():
            assert value["lc", key, step] == pytest.approx(expected, rel=1e-6), key
        norm = torch.cat([p.detach().flatten() for p in module.parameters()]).norm().item()
        assert value["weights", "total_norm", step] == pytest.approx(norm, rel=1e-5)
        if step in acc_steps:
            x_test, y_test = test.tensors
            with torch.no_grad():
                acc = (module(x_test).argmax(1) == y_test).double().mean().item()
            assert value["accuracy", "test_acc", step] == pytest.approx(acc, abs=1e-12)


def test_resuming_a_fit_continues_the_same_run(tmp_path):
    calls: list[int] = []

    def callback():
        return SplinescopeCallback(
            [{"kind": "weights"}],
            runs_dir=tmp_path / "runs",
            schedule=EverySchedule(5),
            sinks=[CallbackSink(lambda metrics, step: calls.append(step))],
        )

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1)
    first = callback()
    fit([first, ckpt], tmp_path, max_steps=10)
    path = next((tmp_path / "ckpt").glob("*step=10.ckpt"))
    second = callback()
    fit([second], tmp_path, max_steps=20, ckpt_path=str(path))
    assert second.run_id == first.run_id
    runs = load_runs(tmp_path / "runs")
    assert len(runs) == 1 and get_run(tmp_path / "runs", first.run_id)["status"] == "finished"
    assert sorted(set(load_metrics(tmp_path / "runs", first.run_id)["step"])) == [0, 5, 10, 15, 20]
    assert calls == [0, 5, 10, 15, 20]  # step 10 is not measured again on resuming


def test_scalars_go_to_the_trainers_loggers(tmp_path):
    logger = CSVLogger(tmp_path / "logs", name="t")
    callback = SplinescopeCallback(
        [{"kind": "weights"}], runs_dir=tmp_path / "r", schedule="every:8"
    )
    fit([callback], tmp_path, logger=logger)
    text = (tmp_path / "logs" / "t" / "version_0" / "metrics.csv").read_text()
    assert "splinescope/weights/total_norm" in text


def test_two_instances_have_two_state_keys():
    a, b = SplinescopeCallback(name="a"), SplinescopeCallback(name="b")
    assert a.state_key != b.state_key


class _Stub:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_sharded_strategies_are_refused():
    strategy = type("FSDPStrategy", (), {})()
    with pytest.raises(SplinescopeError, match="FSDPStrategy shards the model"):
        SplinescopeCallback().setup(_Stub(strategy=strategy), Module(), "fit")


def test_only_global_rank_zero_measures(tmp_path):
    callback = SplinescopeCallback(runs_dir=tmp_path / "r")
    callback.on_train_start(_Stub(is_global_zero=False), Module())
    callback.on_train_batch_end(_Stub(global_step=1), Module(), None, None, 0)
    assert callback.attachment is None and not (tmp_path / "r").exists()


def test_held_out_probes_without_validation_are_an_error(tmp_path):
    callback = SplinescopeCallback([{"kind": "accuracy"}], runs_dir=tmp_path / "r")
    with pytest.raises(SplinescopeError, match=r"\['accuracy'\] need test points"):
        fit([callback], tmp_path, max_steps=2, limit_val_batches=0)
