"""Populations vs separate runs: 16 grok-digits-sized runs (MLP 64-200-200-10, batch 200,
AdamW, MSE; init_scale x weight_decay grid) as a sweep of separate runs on the spawn pool,
and as populations (stacked parameters, :mod:`splinescope.train.population`), side by side.

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_population.py [--steps 1500]
        [--jobs 2] [--probes light|sweep] [--sizes 4,8,16]

Rows: the pool with one process per run (``--no-population``); the same sweep with
populations (``jobs`` populations of 16/jobs side by side); one in-process population of K
at ``jobs`` threads for K in ``--sizes``. Their ms per member-step is wall x jobs /
(members x steps): core-milliseconds per step of one run, everything included (process
start, set-up, probes, checkpoints, summaries). Then the training step alone, one thread:
a separate run's step (forward, backward, AdamW), the stacked step and the stacked
forward+backward alone per member for K = 4, 8, 16, vmap(grad(functional_call)) for
comparison, and the matrix multiplies of one member's step (the floor).

``--probes light`` (default): accuracy and weights on the default log:60 schedule; ``sweep``:
the omnigrok-digits sweep's probes (LC on 200 points, PGD on 200 points, units), which cost
the same per run either way and so bound the speedup (Amdahl).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from splinescope.sweep import expand, parse_spec, run_sweep
from splinescope.sweep._worker import set_threads
from splinescope.sweep.executors import PoolExecutor

GRID = {"init_scale": [1.0, 2.0, 4.0, 8.0], "weight_decay": [0.0, 0.01, 0.03, 0.1]}
LIGHT = {"probes": [{"kind": "accuracy"}, {"kind": "weights"}]}
SWEEP_PROBES = {"probes.lc.n_points": 200, "probes.fgsm": "off", "probes.pgd.n_points": 200}


def make_spec(steps: int, probes: str, name: str = "bench-pop"):
    fixed = {"steps": steps, **(SWEEP_PROBES if probes == "sweep" else {})}
    table = {"name": name, "base": "grok-digits", "threads": 1, "set": fixed, "grid": GRID}
    spec = parse_spec(table)
    if probes == "light":
        # probes set as a whole table list (dotted [set] keys only edit one probe)
        base = replace(spec.base_config, probes=tuple(LIGHT["probes"]))
        spec = replace(spec, base_config=base)
    return spec


def _timed(fn, repeat: int) -> float:
    for _ in range(3):
        fn()
    began = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - began) / repeat


def floors(configs, k: int, repeat: int = 40) -> dict[str, float]:
    """Seconds per member-step on one thread: a separate run's step, the stacked step, the
    stacked forward+backward alone, and the bare matrix multiplies of one member's step."""
    from splinescope.train import BatchSampler, load_data, make_loss, make_model, make_optimizer
    from splinescope.train.build import BatchLoss
    from splinescope.train.population import StackedAdamW, StackedMLP, forward_backward

    threads = torch.get_num_threads()
    set_threads(1)
    try:
        data = load_data(configs[0])
        x, y = data.x_train, data.y_train
        loss_fn = make_loss(configs[0].loss)
        models = []
        for c in configs[:k]:
            torch.manual_seed(c.seed)
            models.append(make_model(c, data))
        model, opt = models[0], make_optimizer(configs[0], models[0])
        sampler = BatchSampler(data.n_train, configs[0].batch_size, seed=1)

        def separate() -> None:
            i = sampler.next()
            loss = loss_fn(model(x[i]), y[i])
            loss.item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        stack = StackedMLP(models)
        fused = bool(opt.param_groups[0].get("fused"))  # as the separate run's AdamW
        adam = StackedAdamW(stack.params, lr=[1e-3] * k, weight_decay=[0.01] * k, fused=fused)
        samplers = [BatchSampler(data.n_train, configs[0].batch_size, seed=s) for s in range(k)]

        batch_loss = BatchLoss(configs[0].loss, y)

        def fwd_bwd() -> None:
            index = torch.stack([s.next() for s in samplers])
            forward_backward(stack, x[index], index, batch_loss)

        def stacked() -> None:
            fwd_bwd()
            adam.step()

        def vmapped() -> None:
            from torch.func import functional_call, grad, stack_module_state, vmap

            params, _ = stack_module_state(models)
            index = torch.stack([s.next() for s in samplers])
            target = torch.nn.functional.one_hot(y[index], data.n_classes).float()

            def one(p, xb, tb):
                return torch.nn.functional.mse_loss(functional_call(models[0], p, (xb,)), tb)

            vmap(grad(one))(params, x[index], target)

        b, w = configs[0].batch_size, configs[0].width
        layers = [(x.shape[1], w), (w, w), (w, data.n_classes)]
        ws = [torch.randn(o, i) for i, o in layers]
        hs = [torch.randn(b, i) for i, _ in layers]
        gs = [torch.randn(b, o) for _, o in layers]

        def matmuls() -> None:
            for h, wt, g in zip(hs, ws, gs, strict=True):
                torch.mm(h, wt.t())  # forward
                torch.mm(g.t(), h)  # weight gradient
            for wt, g in zip(ws[1:], gs[1:], strict=True):
                torch.mm(g, wt)  # input gradient (none for the first layer)

        out = {
            "separate step (fwd+bwd+AdamW)": _timed(separate, repeat),
            f"stacked step (fwd+bwd+AdamW), K={k}": _timed(stacked, repeat) / k,
            f"stacked fwd+bwd alone (baddbmm), K={k}": _timed(fwd_bwd, repeat) / k,
            f"vmap(grad(functional_call)) fwd+bwd, K={k}": _timed(vmapped, max(5, repeat // 4)) / k,
            "matrix multiplies alone": _timed(matmuls, repeat),
        }
        return out
    finally:
        set_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--probes", choices=("light", "sweep"), default="light")
    parser.add_argument("--sizes", default="16", help="in-process population sizes, e.g. 4,8,16")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    spec = make_spec(args.steps, args.probes)
    points = expand(spec)
    n, steps = len(points), args.steps
    configs = [p.config for p in points]
    root = Path(tempfile.mkdtemp(prefix="bench-pop-"))
    rows: list[tuple[str, float, float]] = []  # label, wall s, core-ms per member-step
    try:
        for label, together in (("16 separate runs, pool", False), ("populations, pool", True)):
            executor = PoolExecutor(args.jobs, 1)
            began = time.perf_counter()
            result = run_sweep(
                spec, root / label.split()[0], executor=executor, population=together
            )
            executor.close()
            wall = time.perf_counter() - began
            assert result.counts == {"finished": n}, result.counts
            size = -(-n // args.jobs) if together else 1
            rows.append(
                (f"{label} (jobs {args.jobs}, K={size})", wall, wall * args.jobs / (n * steps))
            )
        from splinescope.train.population import train_population

        for k in (int(s) for s in args.sizes.split(",") if s):
            set_threads(args.jobs)
            began = time.perf_counter()
            results = train_population(configs[:k], runs_dir=root / f"inproc-{k}")
            wall = time.perf_counter() - began
            assert not any(isinstance(r, BaseException) for r in results)
            rows.append(
                (
                    f"one population K={k} in-process, {args.jobs} threads",
                    wall,
                    wall * args.jobs / (k * steps),
                )
            )
        floor = {k: floors(configs, k) for k in (4, 8, 16)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base_wall, base_step = rows[0][1], rows[0][2]
    print(
        f"{n} runs of grok-digits (MLP 64-200-200-10, batch 200), {steps} steps each, "
        f"probes {args.probes}, torch {torch.__version__}, {os.cpu_count()} cores"
    )
    print(f"{'what':<52} {'wall s':>8} {'ms/member-step':>15} {'speedup':>8}")
    for label, wall, per in rows:
        print(f"{label:<52} {wall:8.1f} {per * 1e3:15.3f} {base_step / per:7.2f}x")
    print(
        "training step alone, one thread, ms per member-step (the pool and the populations "
        f"run {args.jobs} such threads side by side):"
    )
    separate = floor[8]["separate step (fwd+bwd+AdamW)"]
    for label in (
        "separate step (fwd+bwd+AdamW)",
        "matrix multiplies alone",
    ):
        print(
            f"  {label:<50} {'':>8} {floor[8][label] * 1e3:15.3f} {separate / floor[8][label]:7.2f}x"
        )
    for k, row in floor.items():
        for label, seconds in row.items():
            if f"K={k}" in label:
                print(f"  {label:<50} {'':>8} {seconds * 1e3:15.3f} {separate / seconds:7.2f}x")
    half = -(-n // args.jobs) if -(-n // args.jobs) in floor else 8
    stacked = floor[half][f"stacked step (fwd+bwd+AdamW), K={half}"]
    print(
        f"  {n} x {steps} member-steps at the stacked step on {args.jobs} cores: "
        f"{stacked * n * steps / args.jobs:.1f} s of the populations' {rows[1][1]:.1f} s wall; "
        f"separate steps: {separate * n * steps / args.jobs:.1f} s of the pool's {base_wall:.1f} s"
    )


if __name__ == "__main__":
    main()
