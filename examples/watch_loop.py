"""A hand-written training loop watched by splinescope in one line.

    python examples/watch_loop.py --steps 2000 --runs-dir runs
    splinescope report watch-digits --runs-dir runs -o watch.html

Trains MLP 64-128-128-10 on scikit-learn's digits (embedded, no download) with Adam and
cross-entropy; ``splinescope.watch`` picks accuracy, local complexity and weight norm from the
model and data and measures them at 40 log-spaced steps. ``--compare`` also trains without
it and prints the overhead.
"""

from __future__ import annotations

import argparse
import time

import torch

import splinescope
from splinescope.data import load_dataset


def train(steps: int, runs_dir: str | None, seed: int = 0) -> tuple[torch.nn.Module, str | None]:
    data = load_dataset("digits", seed=seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    handle = None
    if runs_dir is not None:
        handle = splinescope.watch(model, data, runs_dir=runs_dir, steps=steps, name="watch-digits")
    for step in range(1, steps + 1):
        batch = torch.randint(0, data.n_train, (128,))
        loss = torch.nn.functional.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if handle is not None:
            handle.step(step)
    if handle is not None:
        handle.close()
        print(f"splinescope measured for {handle.seconds:.2f} s of the loop")
        print("measured:", ", ".join(f"{p}: {sorted(v)[:3]}" for p, v in handle.latest.items()))
    return model, None if handle is None else handle.run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--compare", action="store_true", help="also train without; overhead")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    _, run_id = train(args.steps, args.runs_dir)
    watched = time.perf_counter() - began
    print(f"run {run_id} in {args.runs_dir}: {args.steps} steps in {watched:.2f} s")
    if args.compare:
        began = time.perf_counter()
        train(args.steps, None)
        plain = time.perf_counter() - began
        print(f"overhead of watch: {watched - plain:.2f} s ({100 * (watched / plain - 1):.0f} %)")


if __name__ == "__main__":
    main()
