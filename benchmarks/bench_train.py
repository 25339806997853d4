"""The training loop against a hand-written PyTorch loop doing the same work, and what makes
both faster on CPU.

Run (each section alone keeps a locked run short; all three by default):

    OMP_WAIT_POLICY=PASSIVE flock /tmp/bench.lock .venv/bin/python benchmarks/bench_train.py \
        [--section loop,wall,options] [--steps 3000] [--repeats 3] [--wall-steps 6000]

The workload is ``splinescope run grok-digits --set probes=[]``: MLP 64-200-200-10 at init x8,
AdamW lr 1e-3 wd 0.01, MSE on one-hot targets, batches of 200 of the 1,000 digits.

- ``loop``: the training loop itself, in this process. A is :func:`splinescope.train.train`
  (steps 1..N timed from its progress callbacks at step 0 and step N, so setup, the store's
  run row and the final summary are outside); B is the minimal loop below, on the same data,
  the same model built from the same seed, the same batches in the same order. A and B
  alternate, ``--repeats`` times each; min and median; ratio A/B (target ≤ 1.05). The losses
  A reports every 100 steps must equal B's bit for bit (asserted: the same work was done).
- ``wall``: whole-command wall time: ``splinescope run grok-digits --set probes=[] --quiet``
  against ``python bench_train.py --hand N`` (imports, data, the loop with A's fused AdamW),
  alternating.
- ``options``: variants of B: AdamW's for-loop (PyTorch's CPU default) / foreach / fused
  implementation, one-hot targets built per step vs once, 1 vs 2 threads, batches indexed from
  the preloaded tensor vs a DataLoader over the same batches, ``torch.compile`` of the
  forward/backward (its compile time shown apart). Each row: median time, ratio to the
  baseline, and the largest difference of the final parameters from the baseline's.

Physical floor: the forward and backward matmuls of one step are ≈ 66 MFLOP (≈ 0.35 ms at
≈ 190 GFLOP/s on 2 threads, FINDINGS.md); the rest of a step is PyTorch's per-op overhead
(≈ 30 small ops for 6 parameter tensors) and AdamW's update of 53k parameters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PRESET = "grok-digits"
#: The AdamW implementation :func:`splinescope.train.make_optimizer` picks on CPU.
FRAMEWORK_ADAMW = "fused"
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the hand loop


def hand_setup(seed: int = 0):
    """Data, model and optimizer exactly as a plain PyTorch script would make them."""
    from splinescope.data import load_dataset

    torch.manual_seed(seed)
    data = load_dataset("digits", seed=0)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 200),
        nn.ReLU(),
        nn.Linear(200, 200),
        nn.ReLU(),
        nn.Linear(200, 10),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)
    return data, model


def hand_loop(
    steps: int,
    *,
    seed: int = 0,
    adamw: str = "for-loop",
    onehot: str = "once",
    batches: str = "index",
    compiled: bool = False,
    losses: dict[int, float] | None = None,
) -> tuple[float, float, list[torch.Tensor]]:
    """Train ``steps`` steps; returns (seconds for steps 1..N, compile seconds, parameters).

    ``losses`` (if given) receives the loss every 100 steps, as the framework reports it."""
    data, model = hand_setup(seed)
    kwargs = {"foreach": adamw == "foreach", "fused": adamw == "fused" or None}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, **kwargs)
    x, y = data.x_train, data.y_train
    n, bs = x.shape[0], 200
    target = F.one_hot(y, 10).to(x.dtype)
    g = torch.Generator().manual_seed(seed + 1)
    order = torch.randperm(n, generator=g)

    def batch_indices():
        nonlocal order
        position = 0
        while True:
            if position + bs > n:
                order = torch.randperm(n, generator=g)
                position = 0
            yield order[position : position + bs]
            position += bs

    if batches == "dataloader":
        dataset = torch.utils.data.TensorDataset(x, target if onehot == "once" else y)
        index_stream = batch_indices()
        loader = iter(
            torch.utils.data.DataLoader(
                dataset, batch_sampler=(next(index_stream).tolist() for _ in range(steps))
            )
        )

        def next_batch():
            xb, tb = next(loader)
            return xb, tb
    else:
        stream = batch_indices()

        def next_batch():
            i = next(stream)
            return x[i], (target[i] if onehot == "once" else y[i])

    def forward_backward(xb, tb):
        out = model(xb)
        if onehot == "step":
            tb = F.one_hot(tb, 10).to(out.dtype)
        loss = F.mse_loss(out, tb)
        loss.backward()
        return loss

    step_fn: Callable = forward_backward
    compile_s = 0.0
    if compiled:
        step_fn = torch.compile(forward_backward)
        began = time.perf_counter()
        saved = [p.detach().clone() for p in model.parameters()]
        xb, tb = next_batch()  # warm-up on a copy of the start: compile, then restore
        step_fn(xb, tb)
        with torch.no_grad():
            for p, s in zip(model.parameters(), saved):
                p.copy_(s)
                p.grad = None
        compile_s = time.perf_counter() - began
        # restart the batch stream so the batches are the same as the baseline's
        g.manual_seed(seed + 1)
        order = torch.randperm(n, generator=g)
        stream = batch_indices()

    model.train()
    began = time.perf_counter()
    for step in range(1, steps + 1):
        xb, tb = next_batch()
        opt.zero_grad(set_to_none=True)
        loss = step_fn(xb, tb)
        value = loss.item()
        opt.step()
        if losses is not None and step % 100 == 0:
            losses[step] = value
    seconds = time.perf_counter() - began
    return seconds, compile_s, [p.detach().clone() for p in model.parameters()]


# --------------------------------------------------------------------------- the framework


def framework_loop(steps: int, runs_dir: str, losses: dict[int, float] | None = None) -> float:
    """Seconds of :func:`train`'s steps 1..N for grok-digits without probes."""
    from splinescope.presets import preset_config
    from splinescope.train import apply_overrides, train
    from splinescope.train.config import parse_assignment

    config = apply_overrides(
        preset_config(PRESET), dict([parse_assignment("probes=[]"), ("steps", steps)])
    )
    marks: dict[int, float] = {}

    def on_progress(info) -> None:
        marks[info.step] = time.perf_counter()
        if losses is not None and info.step > 0:
            losses[info.step] = info.loss

    train(config, runs_dir=runs_dir, on_progress=on_progress, progress_every=100)
    return marks[steps] - marks[0]


def _stats(xs: list[float]) -> tuple[float, float]:
    return min(xs), statistics.median(xs)


def section_loop(steps: int, repeats: int) -> None:
    if steps % 100:
        raise SystemExit("--steps must be a multiple of 100 (losses are compared every 100)")
    a, b, c = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            la: dict[int, float] = {}
            lb: dict[int, float] = {}
            a.append(framework_loop(steps, os.path.join(tmp, f"a{r}"), la))
            b.append(hand_loop(steps, adamw=FRAMEWORK_ADAMW, losses=lb)[0])
            c.append(hand_loop(steps)[0])
            assert la == lb, "the framework and the hand loop did different work"
    (amin, amed), (bmin, bmed), (cmin, cmed) = _stats(a), _stats(b), _stats(c)
    print(f"\nloop: {PRESET} without probes, steps 1..{steps:,}, {repeats} repeats alternating")
    print(f"  {'':34s} {'min s':>7s} {'median s':>9s} {'ms/step':>8s}")
    for label, lo, med in (
        ("A framework train()", amin, amed),
        (f"B hand loop, {FRAMEWORK_ADAMW} AdamW (= A's)", bmin, bmed),
        ("C hand loop, torch's default AdamW", cmin, cmed),
    ):
        print(f"  {label:34s} {lo:7.2f} {med:9.2f} {1e3 * med / steps:8.3f}")
    print(
        f"  ratio A/B: min {amin / bmin:.3f}, median {amed / bmed:.3f} (target ≤ 1.05); "
        f"losses every 100 steps identical"
    )
    print(f"  ratio A/C: min {amin / cmin:.3f}, median {amed / cmed:.3f}")


def section_wall(steps: int, repeats: int) -> None:
    exe = str(Path(sys.executable).with_name("splinescope"))
    a, b = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            cmd_a = [exe, "run", PRESET, "--set", "probes=[]", "--steps", str(steps), "--quiet"]
            cmd_a += ["--runs-dir", os.path.join(tmp, f"w{r}")]
            cmd_b = [sys.executable, __file__, "--hand", str(steps)]
            for cmd, out in ((cmd_a, a), (cmd_b, b)):
                began = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
                out.append(time.perf_counter() - began)
    (amin, amed), (bmin, bmed) = _stats(a), _stats(b)
    print(f"\nwall: whole command, {steps:,} steps, {repeats} repeats alternating")
    print(f"  A splinescope run {PRESET} --set probes=[] --steps {steps} --quiet")
    print(f"     min {amin:.2f} s, median {amed:.2f} s")
    print(f"  B python benchmarks/bench_train.py --hand {steps}")
    print(f"     min {bmin:.2f} s, median {bmed:.2f} s")
    print(
        f"  ratio A/B: min {amin / bmin:.3f}, median {amed / bmed:.3f}; difference "
        f"{amed - bmed:+.2f} s (imports, store, summary: fixed, not per step)"
    )


OPTIONS: tuple[tuple[str, dict], ...] = (
    ("baseline (for-loop AdamW)", {}),
    ("foreach AdamW", {"adamw": "foreach"}),
    ("fused AdamW", {"adamw": "fused"}),
    ("one-hot built per step", {"onehot": "step"}),
    ("DataLoader batches", {"batches": "dataloader"}),
    ("1 thread", {"threads": 1}),
    ("2 threads", {"threads": 2}),
    ("fused AdamW, 1 thread", {"adamw": "fused", "threads": 1}),
    ("torch.compile fwd+bwd", {"compiled": True}),
)


def section_options(steps: int, repeats: int, names: list[str] | None) -> None:
    threads = torch.get_num_threads()
    rows = [(label, opts) for label, opts in OPTIONS if names is None or label in names]
    times: dict[str, list[float]] = {label: [] for label, _ in rows}
    compile_s: dict[str, float] = {}
    params: dict[str, list[torch.Tensor]] = {}
    for r in range(repeats):
        for label, opts in rows:
            if r and opts.get("compiled"):
                continue  # compiling again would only repeat the compile time
            opts = dict(opts)
            torch.set_num_threads(opts.pop("threads", threads))
            try:
                seconds, comp, final = hand_loop(steps, **opts)
            finally:
                torch.set_num_threads(threads)
            times[label].append(seconds)
            compile_s[label] = max(compile_s.get(label, 0.0), comp)
            params[label] = final
    base_label = rows[0][0]
    base = statistics.median(times[base_label])
    print(
        f"\noptions: hand loop variants, {steps:,} steps, {repeats} repeats interleaved "
        f"(torch.compile once), {threads} threads unless stated"
    )
    print(f"  {'option':32s} {'median s':>9s} {'ratio':>7s} {'compile s':>10s} {'max |dp|':>10s}")
    for label, _ in rows:
        med = statistics.median(times[label])
        diff = max(float((p - q).abs().max()) for p, q in zip(params[label], params[base_label]))
        comp = f"{compile_s[label]:10.1f}" if compile_s[label] else f"{'':10s}"
        print(f"  {label:32s} {med:9.2f} {med / base:7.3f} {comp} {diff:10.2e}")
    print("  (ratio < 1: faster than the baseline; max |dp|: final parameters vs the baseline's)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", default="loop,wall,options")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--wall-steps", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--options", default=None, help="comma-separated option labels")
    parser.add_argument("--hand", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hand is not None:  # the whole-command baseline: a plain script's work
        hand_loop(args.hand, adamw=FRAMEWORK_ADAMW)
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}"
    )
    sections = args.section.split(",")
    if "loop" in sections:
        section_loop(args.steps, args.repeats)
    if "wall" in sections:
        section_wall(args.wall_steps, min(3, max(2, args.repeats - 1)))
    if "options" in sections:
        names = args.options.split(",") if args.options else None
        section_options(args.steps, max(2, args.repeats - 1), names)


if __name__ == "__main__":
    main()
