"""A PyTorch Lightning fit with the splinescope callback (extra ``splinescope[lightning]``).

    python examples/lightning_digits.py --steps 2000 --runs-dir runs
    splinescope report lightning-digits --runs-dir runs -o lightning.html

MLP 64-128-128-10 on scikit-learn's digits (embedded): local complexity and weight norm at
40 log-spaced optimizer steps, accuracy at every validation (every ``--val-every`` steps),
all in one stored run; scalars also go to the Trainer's loggers. ``--compare`` also fits
without the callback and prints the overhead.
"""

from __future__ import annotations

import argparse
import time

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from splinescope.data import load_dataset
from splinescope.integrations.lightning import SplinescopeCallback


class DigitsMLP(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, 128),
            torch.nn.ReLU(),
            torch.nn.Linear(128, 128),
            torch.nn.ReLU(),
            torch.nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def fit(steps: int, val_every: int, runs_dir: str | None) -> tuple[float, str | None]:
    pl.seed_everything(0, verbose=False)
    data = load_dataset("digits", seed=0)
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=128, shuffle=True)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=512)
    callbacks = (
        []
        if runs_dir is None
        else [SplinescopeCallback(runs_dir=runs_dir, name="lightning-digits")]
    )
    trainer = pl.Trainer(
        max_steps=steps,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    began = time.perf_counter()
    trainer.fit(DigitsMLP(), train, test)
    seconds = time.perf_counter() - began
    if callbacks:
        print(f"splinescope measured for {callbacks[0].seconds:.2f} s of the {seconds:.2f} s fit")
    return seconds, callbacks[0].run_id if callbacks else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--val-every", type=int, default=200)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--compare", action="store_true", help="also fit without; overhead")
    args = parser.parse_args(argv)
    watched, run_id = fit(args.steps, min(args.val_every, args.steps), args.runs_dir)
    print(f"run {run_id} in {args.runs_dir}: {args.steps} steps in {watched:.2f} s")
    if args.compare:
        plain, _ = fit(args.steps, min(args.val_every, args.steps), None)
        print(
            f"overhead of the callback: {watched - plain:.2f} s ({100 * (watched / plain - 1):.0f} %)"
        )


if __name__ == "__main__":
    main()
