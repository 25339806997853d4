"""A one-minute look at local complexity: a small MLP trained on scikit-learn's digits.

``python -m splinescope.quickstart`` trains MLP 64-200-200-10 with Adam for a few hundred
steps and prints local complexity per layer on training, test and uniformly random points.
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from splinescope.data import load_dataset
from splinescope.geometry.complexity import LocalComplexity, local_complexity
from splinescope.models import MLP


def train_digits_mlp(steps: int = 600, seed: int = 0) -> tuple[torch.nn.Module, object]:
    """Train MLP 64-200-200-10 (cross-entropy, Adam lr 1e-3, batch 128) on digits."""
    data = load_dataset("digits", seed=seed)
    torch.manual_seed(seed)
    model = MLP(64, data.n_classes, width=200, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, data.n_train, (128,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, data


def lc_table(results: dict[str, LocalComplexity]) -> Table:
    """A rich table: one row per layer (and the total), one column per point set."""
    first = next(iter(results.values()))
    table = Table(
        title=f"Local complexity (r = {first.radius}, {first.n_vertices} vertices, {first.neighborhood} frame)"
    )
    table.add_column("layer")
    table.add_column("units", justify="right")
    for name in results:
        table.add_column(f"{name} mean ± sem", justify="right")
    summaries = {name: result.summary().set_index("layer") for name, result in results.items()}
    for layer in [*first.layer_names, "total"]:
        row = [layer, str(int(summaries[next(iter(summaries))].loc[layer, "units"]))]
        for summary in summaries.values():
            row.append(f"{summary.loc[layer, 'mean']:.2f} ± {summary.loc[layer, 'sem']:.2f}")
        table.add_row(*row)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--radius", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console()
    with console.status("training MLP 64-200-200-10 on digits"):
        model, data = train_digits_mlp(args.steps, args.seed)
    model.eval()
    with torch.no_grad():
        acc = {
            "train": (model(data.x_train).argmax(1) == data.y_train).float().mean().item(),
            "test": (model(data.x_test).argmax(1) == data.y_test).float().mean().item(),
        }
    console.print(
        f"after {args.steps} steps: train accuracy {acc['train']:.3f}, test accuracy {acc['test']:.3f}"
    )
    generator = torch.Generator().manual_seed(args.seed)
    lo, hi = data.domain
    random_points = lo + (hi - lo) * torch.rand(500, *data.input_shape, generator=generator)
    sets = {"train": data.x_train[:500], "test": data.x_test[:500], "random": random_points}
    results = {
        name: local_complexity(model, x, radius=args.radius, seed=args.seed)
        for name, x in sets.items()
    }
    console.print(lc_table(results))


if __name__ == "__main__":
    main()
