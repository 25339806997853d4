"""Hessian spectrum: splinescope vs PyHessian vs hessian-eigenthings, side by side in one run.

Setup (the peers are not package dependencies; they live in their own environment)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0 numpy scipy pyhessian hessian-eigenthings -e .

Run::

    .venv-bench/bin/python benchmarks/bench_hessian.py                 # issue sizes, both workloads
    .venv-bench/bin/python benchmarks/bench_hessian.py --workloads mlp --seeds 3
    .venv-bench/bin/python benchmarks/bench_hessian.py --workloads cnn --cnn-n 128 --seeds 1
    .venv-bench/bin/python benchmarks/bench_hessian.py --hvp-only      # only the HVP-cost table
    .venv-bench/bin/python benchmarks/bench_hessian.py --trace-only --repeats 1 --trace-seeds 9
    # the trace at matched budgets, one CNN seed per run, the rows accumulated in a file:
    .venv-bench/bin/python benchmarks/bench_hessian.py --workloads cnn --cnn-n 128 --trace-only \
        --repeats 1 --trace-seeds 1 --trace-seed0 S --trace-methods stratified --no-rtol-row \
        --matched-json /tmp/cnn-matched.json

Workloads (issue #5), float32 on CPU, inputs Gaussian, labels from a random linear teacher,
``--train-steps`` full-batch SGD steps (lr 0.05, momentum 0.9) from the seed-0 initialisation:
  mlp  MLP 784-256-256-256-10 ReLU, a fixed batch of ``--mlp-n`` (1024) inputs, cross-entropy
  cnn  conv3x3 3-32-64-64 (ReLU, 2x2 max-pool after each) + Linear(1024, 10) on ``--cnn-n``
       (512) inputs of 3x32x32, cross-entropy

Rows (HVPs counted by wrapping each library's product; wall time includes its setup):
  top-1 / top-5   ours: ``hessian_eigenvalues(k, tol=1e-4)`` (Lanczos, full re-orth.);
                  PyHessian ``eigenvalues(top_n=k)`` defaults (power iteration + deflation,
                  maxIter 100, tol 1e-3); hessian-eigenthings ``deflated_power_iteration(k)``
                  defaults (max_iter 100, tol 1e-4) and its ``lanczos(k, which="LA")`` defaults
                  (2k steps). Error: max over the k of |lambda - ref| / |ref|.
  trace           PyHessian ``trace()`` defaults (Hutchinson, tol 1e-3, stops on the running
                  mean) and ours (``--trace-methods``) at the HVPs it used (``max_hvp``), and
                  ours with its own stopping rule (``rtol=1e-2``). Error: |t - tr H| / |tr H|;
                  the note counts seeds within 1.96 and 3 reported SE.
  matched budgets a second table, per budget of ``--trace-budgets`` (30, 99): PyHessian
                  ``trace(maxIter=B, tol=-inf)`` (its rule never fires: exactly B
                  products), hessian-eigenthings ``hutch_plus_plus(num_matvecs=B)`` (3 (B // 3)
                  products) and ours ``max_hvp=B``; HVPs counted, median [max] error over the
                  seeds, and ours / the better peer's median error.
  density         PyHessian ``density(iter=100, n_v=1)``; hessian-eigenthings
                  ``spectral_density(num_runs=1, lanczos_steps=100)`` (its default 10 x 80 is
                  8x the budget); ours ``n_starts=2, n_steps=50`` (the same 100 HVPs). Errors:
                  the trace implied by the density (n * first moment) vs tr H, and the largest
                  Ritz value vs the reference lambda_max.

References (cached per workload in ``--cache``): the top eigenvalues from a long Lanczos run (tol 1e-7, up to 300 steps; its
residual norms are printed), and the exact trace: both nets are piecewise linear in each
single parameter (ReLU, max-pool, no BN), so tr(H) = tr(GGN) = sum over samples of
tr(H_out J J^T), computed from per-sample Jacobians (``torch.func.vmap(jacrev)``) in chunks.
Errors are medians over ``--seeds`` (``--trace-seeds`` for the trace rows) seeds of the random
vectors; PyHessian uses the global RNG, which is seeded to the same value.

HVP cost table: seconds per product vs one gradient (forward + backward) of the same batch,
best of ``--repeats``: ours double-backward (gradient graph kept), ours double-backward
recomputing, ours ``torch.func`` forward-over-reverse, PyHessian's product, and
hessian-eigenthings' ``HessianOperator.matvec``.

Threads: ``--threads`` (default 1). On a shared 2-core machine two OpenMP threads wait on
each other whenever the other core is busy, which makes timings erratic; one thread is steady.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from splinescope.landscape import (
    CurvatureOperator,
    hessian_density,
    hessian_eigenvalues,
    hessian_trace,
)

CE = nn.CrossEntropyLoss()


# --------------------------------------------------------------------------- workloads
def make_workload(name: str, args: argparse.Namespace):
    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
        shape, n = (784,), args.mlp_n
    else:
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 10),
        )
        shape, n = (3, 32, 32), args.cnn_n
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, *shape, generator=g)
    teacher = torch.randn(math.prod(shape), 10, generator=g)
    y = (x.reshape(n, -1) @ teacher).argmax(dim=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(args.train_steps):
        opt.zero_grad()
        CE(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    return model, x, y


def exact_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> float:
    """tr(GGN) = (1/N) sum_n tr(H_out,n J_n J_n^T); equals tr(H) for these nets."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def out_one(p, xi):
        return functional_call(model, p, (xi[None],))[0]

    total = 0.0
    with torch.no_grad():
        logits = model(x)
    for s in range(0, len(x), chunk):
        xs = x[s : s + chunk]
        jac = vmap(jacrev(out_one), in_dims=(None, 0))(params, xs)  # name -> (b, C, *shape)
        gram = sum(
            j.reshape(j.shape[0], j.shape[1], -1)
            @ j.reshape(j.shape[0], j.shape[1], -1).transpose(1, 2)
            for j in jac.values()
        )  # (b, C, C): J J^T
        p = logits[s : s + chunk].double().softmax(dim=1)
        h_out = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        total += float((h_out * gram.double()).sum())
    return total / len(x)


# --------------------------------------------------------------------------- helpers
class Counter:
    def __init__(self) -> None:
        self.n = 0


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def rel_err(values, ref) -> float:
    v = sorted((float(a) for a in values), reverse=True)
    r = sorted((float(a) for a in ref), reverse=True)[: len(v)]
    return max(abs(a - b) / abs(b) for a, b in zip(v, r, strict=True))


def pyhessian_obj(model, x, y, counter: Counter):
    import sys

    import pyhessian  # noqa: F401  (the package's __init__ shadows the module name)

    ph = sys.modules["pyhessian.hessian"]

    if not getattr(ph, "_counted", False):
        original = ph.hessian_vector_product

        def counted(gradsH, params, v):
            ph._counter.n += 1
            return original(gradsH, params, v)

        ph.hessian_vector_product = counted
        ph._counted = True
    ph._counter = counter
    model.zero_grad(set_to_none=True)  # PyHessian accumulates into .grad
    obj = ph.hessian(model, CE, data=(x, y), cuda=False)
    return obj


def he_operator(model, x, y, counter: Counter):
    import hessian_eigenthings as he

    op = he.HessianOperator(model, [(x, y)], he.supervised_loss(CE))
    matvec = op.matvec

    def counted(v):
        counter.n += 1
        return matvec(v)

    op.matvec = counted
    return op


# --------------------------------------------------------------------------- HVP cost
def hvp_cost(model, x, y, repeats: int) -> list[tuple[str, float]]:
    params = [p for p in model.parameters()]
    n = sum(p.numel() for p in params)
    v = torch.randn(n, generator=torch.Generator().manual_seed(0))
    fns: dict[str, Callable[[], Any]] = {
        "gradient (forward+backward)": lambda: torch.autograd.grad(CE(model(x), y), params)
    }
    for label, backend, keep in (
        ("ours: double-backward, graph kept (default)", "double-backward", True),
        ("ours: double-backward, recomputed", "double-backward", False),
        ("ours: forward-over-reverse (torch.func)", "forward-over-reverse", None),
    ):
        op = CurvatureOperator(model, CE, (x, y), backend=backend, keep_graph=keep)
        fns[label] = lambda op=op: op.matvec(v)
    try:
        from pyhessian.utils import hessian_vector_product

        obj = pyhessian_obj(model, x, y, Counter())
        vs = list(torch.split(v, [p.numel() for p in params]))
        vs = [a.view(p.shape) for a, p in zip(vs, params, strict=True)]
        fns["PyHessian hessian_vector_product"] = lambda: hessian_vector_product(
            obj.gradsH, obj.params, vs
        )
        op = he_operator(model, x, y, Counter())
        fns["hessian-eigenthings HessianOperator.matvec"] = lambda: op.matvec(v)
    except ImportError:
        pass
    best = {k: math.inf for k in fns}
    for f in fns.values():
        f()
    for _ in range(repeats):
        for k, f in fns.items():
            _, t = timed(f)
            best[k] = min(best[k], t)
    model.zero_grad(set_to_none=True)
    return [(k, t) for k, t in best.items()]


# --------------------------------------------------------------------------- one workload
def run_workload(name: str, args: argparse.Namespace) -> None:
    import hessian_eigenthings as he

    model, x, y = make_workload(name, args)
    n = sum(p.numel() for p in model.parameters())
    print(
        f"\n## {name}: {n} parameters, {len(x)} inputs, {args.train_steps} SGD steps, "
        f"{torch.get_num_threads()} thread(s)"
    )

    cost = hvp_cost(model, x, y, args.repeats)
    grad_t = cost[0][1]
    print(f"\nHVP cost (best of {args.repeats})")
    print(f"| {'product':46s} | {'seconds':>8s} | {'x gradient':>10s} |")
    for k, t in cost:
        print(f"| {k:46s} | {t:8.3f} | {t / grad_t:10.2f} |")
    if args.hvp_only:
        return

    key = f"{name}-n{len(x)}-steps{args.train_steps}-torch{torch.__version__}"
    cache = pathlib.Path(args.cache) / f"hessian-ref-{key}.json" if args.cache else None
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        ref_vals, tr_exact = saved["top5"], saved["trace"]
        print(f"\nreferences read from {cache}: top-5 {[f'{v:.6g}' for v in ref_vals]}")
    else:
        ref, t_ref = timed(
            lambda: hessian_eigenvalues(model, CE, (x, y), k=5, tol=1e-7, max_iter=300, seed=12345)
        )
        ref_vals = ref.eigenvalues.tolist()
        tr_exact, t_tr = timed(lambda: exact_trace(model, x, y, args.jac_chunk))
        print(
            f"\nreference top-5 {[f'{v:.6g}' for v in ref_vals]} in {ref.n_hvp} HVPs "
            f"({t_ref:.0f} s), residuals {[f'{r:.1e}' for r in ref.residual_norms.tolist()]}"
        )
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"top5": ref_vals, "trace": tr_exact}))
    print(f"exact trace (tr GGN) {tr_exact:.6g}")

    rows: dict[tuple[str, str], list[tuple[int, float, float, str]]] = {}

    def add(task: str, method: str, hvp: int, secs: float, err: float, extra: str = "") -> None:
        rows.setdefault((task, method), []).append((hvp, secs, err, extra))

    for seed in range(0 if args.trace_only else args.seeds):
        for k, task in ((1, "top-1"), (5, "top-5")):
            res, t = timed(
                lambda k=k, s=seed: hessian_eigenvalues(model, CE, (x, y), k=k, tol=1e-4, seed=s)
            )
            add(
                task,
                "ours: Lanczos full re-orth, tol 1e-4",
                res.n_hvp,
                t,
                rel_err(res.eigenvalues, ref_vals),
            )

            c = Counter()
            torch.manual_seed(seed)
            (vals, _), t = timed(
                lambda k=k, c=c, s=seed: pyhessian_obj(model, x, y, c).eigenvalues(top_n=k)
            )
            add(task, "PyHessian power+deflation", c.n, t, rel_err(vals, ref_vals))

            if not args.skip_he_power:
                c = Counter()
                r, t = timed(
                    lambda k=k, c=c, s=seed: he.deflated_power_iteration(
                        he_operator(model, x, y, c), k=k, seed=s
                    )
                )
                add(task, "h-eigenthings deflated power", c.n, t, rel_err(r.eigenvalues, ref_vals))
            c = Counter()
            r, t = timed(
                lambda k=k, c=c, s=seed: he.lanczos(
                    he_operator(model, x, y, c), k=k, which="LA", seed=s
                )
            )
            add(task, "h-eigenthings lanczos (2k steps)", c.n, t, rel_err(r.eigenvalues, ref_vals))

        # density
        c = Counter()
        torch.manual_seed(seed)
        start = time.perf_counter()
        try:  # PyHessian 0.1 calls torch.eig, removed from torch since 1.9
            eig, wts = pyhessian_obj(model, x, y, c).density(iter=100, n_v=1)
        except RuntimeError as exc:
            add(
                "density",
                "PyHessian SLQ 1x100",
                c.n,
                time.perf_counter() - start,
                math.nan,
                f"fails after its Lanczos: {str(exc).splitlines()[0][:60]}",
            )
        else:
            nodes = torch.tensor(eig[0], dtype=torch.float64)
            w = torch.tensor(wts[0], dtype=torch.float64)
            add(
                "density",
                "PyHessian SLQ 1x100",
                c.n,
                time.perf_counter() - start,
                abs(n * float((nodes * w).sum()) - tr_exact) / abs(tr_exact),
                f"top node err {abs(float(nodes.max()) - ref_vals[0]) / ref_vals[0]:.1e}",
            )
        c = Counter()
        r, t = timed(
            lambda c=c, s=seed: he.spectral_density(
                he_operator(model, x, y, c), num_runs=1, lanczos_steps=100, seed=s
            )
        )
        first = _he_first_moment(r)
        add(
            "density",
            "h-eigenthings SLQ 1x100",
            c.n,
            t,
            abs(n * first[0] - tr_exact) / abs(tr_exact),
            f"top node err {abs(first[1] - ref_vals[0]) / ref_vals[0]:.1e}",
        )
        res, t = timed(
            lambda s=seed: hessian_density(model, CE, (x, y), n_starts=2, n_steps=50, seed=s)
        )
        add(
            "density",
            "ours: SLQ 2x50",
            res.n_hvp,
            t,
            abs(n * float(res.moments(1)[0]) - tr_exact) / abs(tr_exact),
            f"top node err {abs(float(res.nodes.max()) - ref_vals[0]) / ref_vals[0]:.1e}, "
            f"{res.n_outliers} outliers",
        )
        model.zero_grad(set_to_none=True)

    matched: dict[tuple[int, str], list[tuple[int, float]]] = {}
    budgets = [int(b) for b in args.trace_budgets.split(",") if b.strip()]
    methods = [m.strip() for m in args.trace_methods.split(",") if m.strip()]
    first = args.trace_seed0
    for seed in range(first, first + (args.trace_seeds or args.seeds)):
        # trace: PyHessian with its own stopping rule, ours at the HVPs it used
        c = Counter()
        torch.manual_seed(seed)
        samples, t = timed(lambda c=c, s=seed: pyhessian_obj(model, x, y, c).trace())
        ph_hvp = c.n
        add(
            "trace",
            "PyHessian Hutchinson tol 1e-3",
            c.n,
            t,
            abs(statistics.mean(samples) - tr_exact) / abs(tr_exact),
        )
        for method in methods:
            res, t = timed(
                lambda s=seed, m=method, b=ph_hvp: hessian_trace(
                    model, CE, (x, y), method=m, rtol=1e-12, max_hvp=b, min_samples=2, seed=s
                )
            )
            add(
                "trace",
                f"ours {method} at PyHessian's HVPs",
                res.n_hvp,
                t,
                abs(res.trace - tr_exact) / abs(tr_exact),
                f"{abs(res.trace - tr_exact) / res.standard_error:.1f} SE",
            )
        # matched budgets: every method spends exactly the same number of products
        for budget in budgets:
            c = Counter()
            torch.manual_seed(seed)
            samples = pyhessian_obj(model, x, y, c).trace(maxIter=budget, tol=-math.inf)
            matched.setdefault((budget, "PyHessian Hutchinson (maxIter=B)"), []).append(
                (c.n, abs(statistics.mean(samples) - tr_exact) / abs(tr_exact))
            )
            c = Counter()
            r = he.hutch_plus_plus(he_operator(model, x, y, c), num_matvecs=budget, seed=seed)
            matched.setdefault((budget, "h-eigenthings hutch_plus_plus"), []).append(
                (c.n, abs(float(r.estimate) - tr_exact) / abs(tr_exact))
            )
            for method in methods:
                res = hessian_trace(
                    model,
                    CE,
                    (x, y),
                    method=method,
                    rtol=1e-12,
                    max_hvp=budget,
                    min_samples=2,
                    seed=seed,
                )
                matched.setdefault((budget, f"ours {method}"), []).append(
                    (res.n_hvp, abs(res.trace - tr_exact) / abs(tr_exact))
                )
        model.zero_grad(set_to_none=True)
        if args.no_rtol_row:
            continue
        res, t = timed(lambda s=seed: hessian_trace(model, CE, (x, y), rtol=1e-2, seed=s))
        add(
            "trace",
            "ours: stratified stop at rel. SE 1e-2",
            res.n_hvp,
            t,
            abs(res.trace - tr_exact) / abs(tr_exact),
            f"{abs(res.trace - tr_exact) / res.standard_error:.1f} SE",
        )

        model.zero_grad(set_to_none=True)

    print(
        f"\nResults, median over {args.seeds} seed(s), trace rows over "
        f"{args.trace_seeds or args.seeds} (max error in brackets)"
    )
    print(
        f"| {'task':7s} | {'method':38s} | {'HVPs':>5s} | {'wall s':>7s} | {'rel. error':>20s} | note"
    )
    for (task, method), vals in rows.items():
        hvp = statistics.median(v[0] for v in vals)
        secs = statistics.median(v[1] for v in vals)
        errs = [v[2] for v in vals]
        err = f"{statistics.median(errs):.2e} [{max(errs):.1e}]"
        note = vals[0][3]
        if note.endswith(" SE"):  # |error| / reported SE per seed: how often within 1.96 SE
            z = [float(v[3].split()[0]) for v in vals]
            note = (
                f"|err| <= 1.96 / 3 SE in {sum(q <= 1.96 for q in z)} / "
                f"{sum(q <= 3 for q in z)} of {len(z)} seeds"
            )
        print(f"| {task:7s} | {method:38s} | {hvp:5.0f} | {secs:7.1f} | {err:>20s} | {note}")

    if matched and args.matched_json:  # accumulate seeds over several runs
        path = pathlib.Path(args.matched_json)
        saved = json.loads(path.read_text()) if path.exists() else []
        saved += [[b, m, h, e] for (b, m), vals in matched.items() for h, e in vals]
        path.write_text(json.dumps(saved))
        matched = {}
        for b, m, h, e in saved:
            matched.setdefault((b, m), []).append((h, e))
    if matched:
        print_matched(matched, len(next(iter(matched.values()))))
    if args.trace_only:
        return

    def med(task: str, method: str, i: int) -> float:
        return statistics.median(v[i] for v in rows[(task, method)])

    ours5, ph5 = (
        ("top-5", "ours: Lanczos full re-orth, tol 1e-4"),
        ("top-5", "PyHessian power+deflation"),
    )
    print(
        f"\ntop-5: ours/PyHessian HVPs {med(*ours5, 0) / med(*ph5, 0):.2f} (target <= 0.33), "
        f"wall {med(*ours5, 1) / med(*ph5, 1):.2f} (target <= 0.5); "
        f"HVP/gradient {cost[1][1] / grad_t:.2f} (target <= 2.5)"
    )


def print_matched(matched: dict[tuple[int, str], list[tuple[int, float]]], seeds: int) -> None:
    """The trace at matched budgets: median [max] relative error per budget and method, and
    ours / the best peer (the lower of the two peers' median errors at that budget)."""
    print(f"\nTrace at matched budgets, {seeds} seed(s): median [max] relative error")
    print(
        f"| {'budget':>6s} | {'method':38s} | {'HVPs':>5s} | {'rel. error':>20s} | ours/best peer"
    )
    for budget in sorted({b for b, _ in matched}):
        peers = [
            statistics.median(e for _, e in v)
            for (b, m), v in matched.items()
            if b == budget and not m.startswith("ours")
        ]
        best = min(peers) if peers else math.nan
        for (b, method), vals in matched.items():
            if b != budget:
                continue
            errs = [e for _, e in vals]
            med = statistics.median(errs)
            ratio = f"{med / best:.3f}" if method.startswith("ours") else ""
            print(
                f"| {b:6d} | {method:38s} | {statistics.median(h for h, _ in vals):5.0f} | "
                f"{f'{med:.2e} [{max(errs):.1e}]':>20s} | {ratio}"
            )


def _he_first_moment(r) -> tuple[float, float]:
    """(first moment, largest node) of a hessian-eigenthings SpectralDensityResult."""
    nodes, weights = r.raw_eigenvalues.double(), r.raw_weights.double()
    first = float((nodes * weights).sum(dim=1).mean() / weights.sum(dim=1).mean())
    return first, float(nodes[weights > 0].max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="mlp,cnn")
    ap.add_argument("--mlp-n", type=int, default=1024)
    ap.add_argument("--cnn-n", type=int, default=512)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--trace-seeds",
        type=int,
        default=0,
        help="seeds for the trace rows (cheap, noisy: default --seeds)",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jac-chunk", type=int, default=16)
    ap.add_argument("--hvp-only", action="store_true")
    ap.add_argument(
        "--trace-only", action="store_true", help="only the trace rows (no top-k, no density)"
    )
    ap.add_argument(
        "--trace-methods", default="stratified,hutch++", help="our methods at the peers' budgets"
    )
    ap.add_argument(
        "--trace-budgets",
        default="30,99",
        help="HVP budgets at which every trace method is compared ('' to skip)",
    )
    ap.add_argument("--trace-seed0", type=int, default=0, help="first seed of the trace rows")
    ap.add_argument(
        "--matched-json",
        default="",
        help="file that accumulates the matched-budget rows over runs (seeds split over runs)",
    )
    ap.add_argument("--no-rtol-row", action="store_true", help="skip ours with rtol=1e-2")
    ap.add_argument(
        "--cache",
        default="/tmp/splinescope-bench-cache",
        help="folder for the reference top-5 and exact trace per workload ('' to recompute)",
    )
    ap.add_argument(
        "--skip-he-power",
        action="store_true",
        help="skip hessian-eigenthings' deflated power iteration (hundreds of HVPs)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.workloads.split(","):
        run_workload(name.strip(), args)


if __name__ == "__main__":
    main()
