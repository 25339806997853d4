"""A Hugging Face ``Trainer`` run with the splinescope callback (extra
``splinescope[transformers]``); the model is built from a config, nothing is downloaded.

    python examples/hf_trainer_digits.py --steps 2000 --runs-dir runs
    splinescope report hf-digits --runs-dir runs -o hf.html

A small ``PreTrainedModel`` (MLP 64-128-128-10 whose main input is ``pixels``) on
scikit-learn's digits: local complexity and weight norm at 40 log-spaced optimizer steps,
accuracy at every evaluation. ``--compare`` also trains without the callback and prints the
overhead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    PretrainedConfig,
    PreTrainedModel,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)
from transformers.modeling_outputs import SequenceClassifierOutput  # noqa: E402

from splinescope.data import load_dataset  # noqa: E402
from splinescope.integrations.transformers import SplinescopeTrainerCallback  # noqa: E402


class MLPConfig(PretrainedConfig):
    model_type = "digits-mlp"

    def __init__(self, n_features: int = 64, width: int = 128, num_labels: int = 10, **kw):
        self.n_features, self.width = n_features, width
        super().__init__(num_labels=num_labels, **kw)


class MLPClassifier(PreTrainedModel):
    config_class = MLPConfig
    main_input_name = "pixels"

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(config.n_features, config.width),
            torch.nn.ReLU(),
            torch.nn.Linear(config.width, config.width),
            torch.nn.ReLU(),
            torch.nn.Linear(config.width, config.num_labels),
        )
        self.post_init()

    def forward(self, pixels=None, labels=None, **kwargs):
        logits = self.net(pixels)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def items(x: torch.Tensor, y: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    return [{"pixels": xi, "labels": yi} for xi, yi in zip(x, y, strict=True)]


def run(steps: int, eval_every: int, runs_dir: str | None) -> tuple[float, str | None]:
    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    callbacks = (
        []
        if runs_dir is None
        else [SplinescopeTrainerCallback(runs_dir=runs_dir, name="hf-digits")]
    )
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=steps,
            per_device_train_batch_size=128,
            per_device_eval_batch_size=512,
            learning_rate=1e-3,
            eval_strategy="steps",
            eval_steps=eval_every,
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
        )
        trainer = Trainer(
            model=MLPClassifier(MLPConfig()),
            args=args,
            train_dataset=items(data.x_train, data.y_train),
            eval_dataset=items(data.x_test, data.y_test),
            callbacks=callbacks,
        )
        trainer.remove_callback(PrinterCallback)  # no metrics dict per evaluation
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
    if callbacks:
        print(f"splinescope measured for {callbacks[0].seconds:.2f} s of the {seconds:.2f} s run")
    return seconds, callbacks[0].run_id if callbacks else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--compare", action="store_true", help="also train without; overhead")
    args = parser.parse_args(argv)
    watched, run_id = run(args.steps, min(args.eval_every, args.steps), args.runs_dir)
    print(f"run {run_id} in {args.runs_dir}: {args.steps} steps in {watched:.2f} s")
    if args.compare:
        plain, _ = run(args.steps, min(args.eval_every, args.steps), None)
        print(
            f"overhead of the callback: {watched - plain:.2f} s ({100 * (watched / plain - 1):.0f} %)"
        )


if __name__ == "__main__":
    main()
