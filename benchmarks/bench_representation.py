"""Representation measures: splinescope vs torch-cka, scikit-dimension and torchmetrics.

Setup (the peers are not package dependencies; they live in their own environment)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0
    .venv-bench/bin/pip install -e . torchmetrics scikit-dimension torch-cka

Run::

    .venv-bench/bin/python benchmarks/bench_representation.py            # issue sizes
    .venv-bench/bin/python benchmarks/bench_representation.py --quick    # small sizes
    .venv-bench/bin/python benchmarks/bench_representation.py --only twonn calibration

Workloads (float32 inputs on CPU, ``--threads`` (1) threads, one run each):
  cka-linear   linear CKA of x, y [10000, 4096] (y = x W / 64 + noise). Ours: ``cka(x, y,
               estimator="unbiased")`` (feature-space form, no n x n Gram). torch-cka has no
               feature-level API; its per-batch path is run on the whole set as one batch:
               Grams with zeroed diagonals and its ``CKA._HSIC`` (unbiased, Song et al.).
  cka-matrix   12 x 12 layer CKA matrix of a small CNN (conv 3-16-16-32-32, 2 max-pools,
               fc 2048-128-10; the 12 named modules listed in forward order) on 5000 inputs
               3x32x32 in batches of 250. Ours: ``cka_matrix``; torch-cka: ``CKA(...).compare``.
               Ours is also run on a quarter of the inputs: the streamed form's peak memory
               should not grow with n. torch-cka computes in float32 and its HSIC terms cancel
               catastrophically on non-centred (post-ReLU) features; the "float64" row runs its
               same formula in float64 on a float64 copy of the model, for agreement.
  twonn        TwoNN of 10000 points in R^512 (an 8-dim Gaussian, linearly embedded, plus 1e-3
               noise), discard fraction 0.1, linear fit through 0. Ours: ``intrinsic_dimension``;
               scikit-dimension: ``skdim.id.TwoNN().fit``.
  svcca        SVCCA (keep 0.99) of x, y [5000, 512]. No peer installs from the package index
               (google/svcca and anatome are not published there); the reference row is scipy's
               ``subspace_angles`` on the SVD-reduced features (the definition, not a library).
  calibration  15-bin top-label ECE (l1) of 1,000,000 x 10 softmax outputs. torchmetrics:
               ``multiclass_calibration_error`` (its bins put a confidence of exactly 1.0 in an
               extra bin; none occurs here, so the values agree).

Each (workload, method) runs in its own subprocess; peak MB = the process's peak resident
memory during the call (VmHWM reset after the inputs are built) minus the resident memory
before it. Ratio = peer seconds / our seconds (and peer MB / our MB). Agreement: |ours - peer|
of the summary value (max over entries for the matrix).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    "conv1", "relu1", "conv2", "relu2", "pool1", "conv3",
    "relu3", "conv4", "relu4", "pool2", "fc1", "fc2",
]  # fmt: skip


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv3, self.relu3 = nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()
        self.conv4, self.relu4 = nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1, self.relu5 = nn.Linear(32 * 8 * 8, 128), nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool1(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        h = self.pool2(self.relu4(self.conv4(self.relu3(self.conv3(h)))))
        return self.fc2(self.relu5(self.fc1(self.flat(h))))


# --------------------------------------------------------------------------- memory
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- inputs
def _sizes(quick: bool) -> dict:
    if quick:
        return dict(cka_n=2000, cka_d=1024, mat_n=1000, tw_n=2000, sv_n=1000, cal_n=100_000)
    return dict(cka_n=10_000, cka_d=4096, mat_n=5000, tw_n=10_000, sv_n=5000, cal_n=1_000_000)


def build(work: str, size: dict, fraction: float):
    g = torch.Generator().manual_seed(0)
    if work == "cka-linear":
        n, d = size["cka_n"], size["cka_d"]
        x = torch.randn(n, d, generator=g)
        w = torch.randn(d, d, generator=g) / 64
        return x, x @ w + torch.randn(n, d, generator=g)
    if work == "cka-matrix":
        torch.manual_seed(0)
        model = SmallCNN().eval()
        n = int(size["mat_n"] * fraction)
        return model, torch.randn(n, 3, 32, 32, generator=g)
    if work == "twonn":
        n = size["tw_n"]
        z = torch.randn(n, 8, generator=g) @ torch.randn(8, 512, generator=g)
        return (z + 1e-3 * torch.randn(n, 512, generator=g),)
    if work == "svcca":
        n = size["sv_n"]
        x = torch.randn(n, 512, generator=g) * torch.linspace(3, 0.01, 512)
        return x, x @ torch.randn(512, 512, generator=g) + torch.randn(n, 512, generator=g)
    if work == "calibration":
        n = size["cal_n"]
        logits = 3 * torch.randn(n, 10, generator=g)
        labels = torch.multinomial(torch.softmax(0.5 * logits, 1), 1, generator=g).squeeze(1)
        return torch.softmax(logits, 1), labels
    raise ValueError(work)


# --------------------------------------------------------------------------- methods
def _batches(x: torch.Tensor, b: int):
    return [x[i : i + b] for i in range(0, x.shape[0], b)]


def run_method(work: str, method: str, data) -> object:
    if work == "cka-linear":
        x, y = data
        if method == "ours":
            from splinescope.representation import cka

            return cka(x, y, estimator="unbiased").value
        from types import SimpleNamespace

        from torch_cka import CKA

        k, l_ = x @ x.T, y @ y.T
        k.fill_diagonal_(0.0)
        l_.fill_diagonal_(0.0)
        me = SimpleNamespace(device="cpu")
        return CKA._HSIC(me, k, l_) / (CKA._HSIC(me, k, k) * CKA._HSIC(me, l_, l_)) ** 0.5
    if work == "cka-matrix":
        model, x = data
        if method == "ours":
            from splinescope.representation import cka_matrix

            return cka_matrix(model, model, _batches(x, 250), LAYERS, LAYERS).values.tolist()
        import warnings

        from torch.utils.data import DataLoader, TensorDataset
        from torch_cka import CKA

        if method == "torch-cka float64":
            # the same formula in float64 (its own _HSIC builds float32 ones vectors)
            def hsic64(self, k, l_):
                n = k.shape[0]
                ones = torch.ones(n, 1, dtype=k.dtype)
                r = (
                    torch.trace(k @ l_)
                    + (ones.t() @ k @ ones @ ones.t() @ l_ @ ones).item() / ((n - 1) * (n - 2))
                    - (ones.t() @ k @ l_ @ ones).item() * 2 / (n - 2)
                )
                return (r / (n * (n - 3))).item()

            CKA._HSIC = hsic64
            model, x = model.double(), x.double()
        loader = DataLoader(TensorDataset(x), batch_size=250)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = CKA(model, model, "a", "b", model1_layers=LAYERS, model2_layers=LAYERS)
            peer.compare(loader)
        return peer.export()["CKA"].double().tolist()
    if work == "twonn":
        (x,) = data
        if method == "ours":
            from splinescope.representation import intrinsic_dimension

            return intrinsic_dimension(x).dimension
        import skdim

        return float(skdim.id.TwoNN().fit(x.numpy()).dimension_)
    if work == "svcca":
        x, y = data
        if method == "ours":
            from splinescope.representation import svcca

            return svcca(x, y, keep=0.99).value
        import numpy as np
        from scipy.linalg import subspace_angles

        def reduce(a):
            ac = a - a.mean(0)
            _, s, vt = np.linalg.svd(ac, full_matrices=False)
            k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99) + 1)
            return ac @ vt[:k].T

        xs, ys = reduce(x.double().numpy()), reduce(y.double().numpy())
        return float(np.cos(subspace_angles(xs, ys)).mean())
    if work == "calibration":
        probs, labels = data
        if method == "ours":
            from splinescope.representation import calibration_error

            return calibration_error(probs, labels, n_bins=15).error
        from torchmetrics.functional.classification import multiclass_calibration_error

        return float(multiclass_calibration_error(probs, labels, num_classes=10, n_bins=15))
    raise ValueError(work)


PLAN = {
    "cka-linear": [("ours", 1.0), ("torch-cka", 1.0)],
    "cka-matrix": [("ours", 1.0), ("ours", 0.25), ("torch-cka", 1.0), ("torch-cka float64", 1.0)],
    "twonn": [("ours", 1.0), ("scikit-dimension", 1.0)],
    "svcca": [("ours", 1.0), ("scipy reference", 1.0)],
    "calibration": [("ours", 1.0), ("torchmetrics", 1.0)],
}
IMPORTS = {
    "torch-cka": "torch_cka",
    "torch-cka float64": "torch_cka",
    "scikit-dimension": "skdim",
    "torchmetrics": "torchmetrics",
}


def child(work: str, method: str, fraction: float, quick: bool, threads: int) -> None:
    torch.set_num_threads(threads)
    data = build(work, _sizes(quick), fraction)
    # imports are not timed
    __import__("splinescope.representation" if method == "ours" else IMPORTS.get(method, "scipy"))
    base = _rss_mb()
    exact_peak = _reset_peak()
    t0 = time.perf_counter()
    value = run_method(work, method, data)
    secs = time.perf_counter() - t0
    peak = _peak_mb()
    print(
        json.dumps(
            dict(seconds=secs, peak_mb=max(0.0, peak - base), value=value, exact_peak=exact_peak)
        )
    )


def _agreement(a, b) -> float:
    if isinstance(a, list):
        ta, tb = torch.tensor(a), torch.tensor(b)
        return float((ta - tb).abs().max())
    return abs(a - b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=list(PLAN))
    ap.add_argument("--child", nargs=3, metavar=("WORK", "METHOD", "FRACTION"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]), args.quick, args.threads)
        return
    size = _sizes(args.quick)
    print(f"sizes: {size}, threads {args.threads}, torch {torch.__version__}")
    rows = []
    for work in args.only:
        ours = None
        for method, fraction in PLAN[work]:
            module = IMPORTS.get(method)
            if module is not None:
                try:
                    __import__(module)
                except Exception as exc:  # noqa: BLE001 - a missing peer is skipped
                    print(f"skip {work}/{method}: {module} not importable ({exc})")
                    continue
            cmd = [
                sys.executable,
                __file__,
                "--threads",
                str(args.threads),
                "--child",
                work,
                method,
                str(fraction),
            ] + (["--quick"] if args.quick else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(f"skip {work}/{method}: failed\n{proc.stderr[-2000:]}")
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            label = method if fraction == 1.0 else f"{method} (n x {fraction:g})"
            row = dict(work=work, method=label, **res)
            if method == "ours" and fraction == 1.0:
                ours = res
            elif ours is not None and method != "ours":
                row["speed"] = res["seconds"] / ours["seconds"]
                row["mem"] = res["peak_mb"] / max(ours["peak_mb"], 1.0)
                row["agree"] = _agreement(ours["value"], res["value"])
            rows.append(row)
            print(f"  done {work}/{label}: {res['seconds']:.2f} s", flush=True)

    print(
        f"\n| {'workload':11} | {'method':22} | {'seconds':>8} | {'peak MB':>8} | "
        f"{'value':>10} | {'peer/ours s':>11} | {'peer/ours MB':>12} | {'|diff|':>8} |"
    )
    print("|" + "|".join("-" * w for w in (13, 24, 10, 10, 12, 13, 14, 10)) + "|")
    for r in rows:
        v = r["value"]
        shown = f"{v[0][1]:.6f}*" if isinstance(v, list) else f"{v:.6f}"
        sp = f"{r['speed']:.2f}" if "speed" in r else ""
        mm = f"{r['mem']:.2f}" if "mem" in r else ""
        ag = f"{r['agree']:.1e}" if "agree" in r else ""
        print(
            f"| {r['work']:11} | {r['method']:22} | {r['seconds']:8.2f} | {r['peak_mb']:8.0f} | "
            f"{shown:>10} | {sp:>11} | {mm:>12} | {ag:>8} |"
        )
    print("* matrix rows show entry [conv1, relu1]; |diff| is the max over all 144 entries")


if __name__ == "__main__":
    main()
