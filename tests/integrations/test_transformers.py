"""The Hugging Face Trainer callback: training unchanged, stored values equal the probes run
directly on the saved checkpoints, held-out probes at evaluations, resume continues the run."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")
os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402
from integration_helpers import blobs, parameters_equal  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

from splinescope.export.sinks import CallbackSink  # noqa: E402
from splinescope.integrations.transformers import (  # noqa: E402
    LogitsOf,
    SplinescopeTrainerCallback,
)
from splinescope.monitor import LocalComplexityProbe, ProbeContext  # noqa: E402
from splinescope.monitor.probe import random_points  # noqa: E402
from splinescope.store import get_run, load_metrics, load_runs  # noqa: E402

from hf_tiny import DictDataset, TinyClassifier, TinyConfig  # noqa: E402  # isort: skip

TRAIN = blobs(96, seed=1)
TEST = blobs(64, seed=2)


def train(tmp_path, callbacks, max_steps=12, resume=None, save_steps=None, **kw):
    torch.manual_seed(0)
    model = TinyClassifier(TinyConfig())
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=max_steps,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=1e-2,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **kw,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=DictDataset(*TRAIN),
        eval_dataset=DictDataset(*TEST),
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=resume)
    return model


def test_training_is_bit_identical_and_values_equal_the_probes_on_the_checkpoints(tmp_path):
    plain = train(tmp_path / "a", [], gradient_accumulation_steps=2)
    lc = LocalComplexityProbe(radius=0.05, n_points=40, n_vertices=8, splits=("train", "random"))
    callback = SplinescopeTrainerCallback(
        [lc, {"kind": "accuracy"}, {"kind": "weights"}],
        runs_dir=tmp_path / "runs",
        schedule="every:4",
        n_train=50,
        n_random=30,
    )
    watched = train(tmp_path / "b", [callback], save_steps=4, gradient_accumulation_steps=2)
    assert parameters_equal(plain, watched)
    run = get_run(tmp_path / "runs", callback.run_id)
    assert run["status"] == "finished" and run["config"]["trainer"] == "transformers"
    metrics = load_metrics(tmp_path / "runs", callback.run_id)
    by_probe = metrics.groupby("probe")["step"].unique()
    assert list(by_probe["lc"]) == [0, 4, 8, 12] and list(by_probe["accuracy"]) == [4, 8, 12]

    x_train, y_train = TRAIN
    context = ProbeContext(x_train=x_train[:50], x_random=random_points(x_train[:50], 30, seed=0))
    value = metrics.set_index(["probe", "key", "step"])["value"]
    for step in (4, 8, 12):
        model = TinyClassifier.from_pretrained(tmp_path / "b" / "out" / f"checkpoint-{step}")
        direct = lc.compute(LogitsOf(model, "features"), context.restricted(lc.needs)).scalars
        for key, expected in direct.items():
            assert value["lc", key, step] == pytest.approx(expected, rel=1e-6), key
        with torch.no_grad():
            acc = (model(TEST[0]).logits.argmax(1) == TEST[1]).double().mean().item()
        assert value["accuracy", "test_acc", step] == pytest.approx(acc, abs=1e-12)
        norm = torch.cat([p.detach().flatten() for p in model.parameters()]).norm().item()
        assert value["weights", "total_norm", step] == pytest.approx(norm, rel=1e-5)


@pytest.mark.parametrize("rebuilt", [False, True], ids=["kept", "rebuilt-from-state"])
def test_resuming_from_a_checkpoint_continues_the_same_run(tmp_path, rebuilt):
    calls: list[int] = []

    def callback():
        return SplinescopeTrainerCallback(
            [{"kind": "weights"}],
            runs_dir=tmp_path / "runs",
            schedule="every:4",
            sinks=[CallbackSink(lambda metrics, step: calls.append(step))],
        )

    first = callback()
    train(tmp_path, [first], max_steps=12, save_steps=8)
    train(
        tmp_path,
        [callback()],
        max_steps=12,
        resume=str(tmp_path / "out" / "checkpoint-8"),
        restore_callback_states_from_checkpoint=rebuilt,
    )
    runs = load_runs(tmp_path / "runs")
    assert len(runs) == 1 and runs.iloc[0]["status"] == "finished"
    assert calls == [0, 4, 8, 12, 12]  # the resumed run goes on from step 8: only 12 again


def test_a_token_model_gets_the_defaults_that_do_not_move_inputs(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=40,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 40, (48, 8), generator=g)
    labels = (tokens[:, 0] > 20).long()
    items = [{"input_ids": t, "labels": y} for t, y in zip(tokens, labels)]
    callback = SplinescopeTrainerCallback(runs_dir=tmp_path / "runs", schedule="every:2")
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=16,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(
        model=model, args=args, train_dataset=items, eval_dataset=items, callbacks=[callback]
    ).train()
    assert "not points of a real input space" in callback.skipped["lc"]
    steps = load_metrics(tmp_path / "runs", callback.run_id).groupby("probe")["step"].unique()
    assert list(steps["accuracy"]) == [2, 4] and list(steps["weights"]) == [0, 2, 4]
