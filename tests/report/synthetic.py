"""Synthetic grokking-like runs in the store's naming convention, for report and export tests."""

from __future__ import annotations

import functools
import io

import numpy as np
import pandas as pd

LAYERS = ("fc1", "fc2", "fc3")
N_CLASSES = 4
# The shape of analysis.phenomena.detect_phenomena's output: phenomena (steps, gap ratios or
# "not reached") followed by the criteria used.
SUMMARY = {
    "interpolation_step": 600,
    "generalization_step": 8000,
    "grokking_gap": 8000 / 600,
    "robust_interpolation_step": 2000,
    "robust_generalization_step": "not reached",
    "robustness_gap": "not reached",
    "lc_peak_step": 1000,
    "lc_descent_step": 1500,
    "interpolation_threshold": 0.99,
    "generalization_tolerance": 0.01,
    "plateau_fraction": 0.1,
    "test_plateau": 0.93,
    "adversarial_key": "pgd_linf_acc",
    "lc_key": "train_total",
}
DETECT = "detect"  # store_run: compute the summary with analysis.phenomena.detect_phenomena


def steps(last: int = 20000, n: int = 24) -> np.ndarray:
    """Step 0 then log-spaced integer steps up to ``last``, int64 [<= n]."""
    return np.unique(np.concatenate([[0], np.geomspace(1, last, n - 1).round()])).astype(np.int64)


def _sig(s: np.ndarray, mid: float, width: float = 0.35) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(np.log10(s + 1) - np.log10(mid)) / width))


def scalar_rows(seed: int = 0, last: int = 20000) -> list[tuple[int, str, dict[str, float]]]:
    """(step, probe, values) records of one synthetic run, as a monitor would log them."""
    rng = np.random.default_rng(seed)
    out = []
    for s in steps(last):
        s = int(s)
        train = 0.1 + 0.9 * _sig(s, 200, 0.15)
        test = 0.1 + 0.85 * _sig(s, 3000, 0.15)
        lc = 40 + 120 * _sig(s, 300) * (1 - 0.7 * _sig(s, 3000))
        acc = {
            "train_acc": train,
            "test_acc": test,
            "train_loss": 1.2 * (1 - train) + 1e-3,
            "test_loss": 1.3 * (1 - test) + 0.05,
        }
        lc_vals = {"train_total": lc, "test_total": 0.9 * lc + 5, "random_total": 0.5 * lc + 20}
        for split in ("train", "test", "random"):
            lc_vals[f"{split}_total_sem"] = 0.02 * lc_vals[f"{split}_total"]
        for i, layer in enumerate(LAYERS):
            for split, total in (("train", lc), ("test", 0.9 * lc + 5), ("random", 0.5 * lc + 20)):
                lc_vals[f"{split}/{layer}"] = total * (0.5 - 0.15 * i) + rng.normal(0, 0.1)
        for c in range(N_CLASSES):
            lc_vals[f"class_{c}_total"] = lc * (1 + 0.1 * c)
        out.append((s, "accuracy", acc))
        out.append((s, "lc", lc_vals))
        out.append(
            (
                s,
                "adversarial",
                {
                    "pgd_linf_acc": 0.8 * _sig(s, 2500, 0.15),
                    "fgsm_linf_acc": 0.85 * _sig(s, 9000),
                    "train_pgd_linf_acc": _sig(s, 800, 0.15),
                },
            )
        )
        norms = {f"norm/{layer}": 30 - 5 * i - 8 * _sig(s, 5000) for i, layer in enumerate(LAYERS)}
        out.append(
            (
                s,
                "weights",
                {"total_norm": float(np.sqrt(sum(v * v for v in norms.values()))), **norms},
            )
        )
        units = {"dead_frac": 0.02 + 0.1 * _sig(s, 2000), "always_on_frac": 0.05}
        for i, layer in enumerate(LAYERS):
            units[f"dead/{layer}"] = units["dead_frac"] * (0.5 + 0.5 * i)
            units[f"always_on/{layer}"] = 0.05 * (1 + i) / 2
        out.append((s, "units", units))
        top = [50 * _sig(s, 200) / (k + 1) + 1 for k in range(3)]
        out.append(
            (
                s,
                "hessian",
                {
                    "top_1": top[0],
                    "top_2": top[1],
                    "top_3": top[2],
                    "trace": 3 * top[0],
                    "trace_se": 0.1 * top[0],
                    "n_outliers": 3.0,
                },
            )
        )
        out.append(
            (s, "codes", {"redundancy_ratio": 1 + 3 * (1 - _sig(s, 1000)), "knn_acc_test": test})
        )
    return out


@functools.lru_cache(maxsize=64)
def _partition_png(step: int, size: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(step)
    xx, yy = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size))
    w = rng.normal(size=(8, 2))
    b = rng.normal(size=8) * 0.3
    code = ((xx[..., None] * w[:, 0] + yy[..., None] * w[:, 1] + b) > 0).astype(int) @ (
        2 ** np.arange(8)
    )
    fig, ax = plt.subplots(figsize=(2, 2), dpi=60)
    ax.imshow(code % 17, cmap="tab20")
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def partition_png(step: int, size: int = 120) -> np.ndarray:
    """A PNG (as a uint8 byte array) of a toy partition picture that changes with ``step``."""
    return np.frombuffer(_partition_png(step, size), dtype=np.uint8).copy()


def array_rows(last: int = 20000) -> list[tuple[int, str, str, np.ndarray]]:
    """(step, probe, key, array) records: spectral densities, eigenvalues, partition PNGs."""
    out = []
    grid = np.linspace(-1.0, 60.0, 200)
    for s in steps(last)[::4]:
        s = int(s)
        top = 50 * _sig(s, 200) + 1
        density = np.exp(-0.5 * (grid / 0.4) ** 2) + 0.01 * np.exp(-0.5 * ((grid - top) / 1.0) ** 2)
        out.append((s, "hessian", "density_grid", grid.copy()))
        out.append((s, "hessian", "density", density))
        out.append((s, "hessian", "eigenvalues", np.array([top, top / 2, top / 3])))
        out.append((s, "partition", "plane_png", partition_png(s)))
    return out


def metrics_frame(seed: int = 0, last: int = 20000) -> pd.DataFrame:
    """The synthetic scalars as the store's load_metrics returns them (step, probe, key, value)."""
    recs = [(s, p, k, float(v)) for s, p, vals in scalar_rows(seed, last) for k, v in vals.items()]
    return pd.DataFrame(recs, columns=["step", "probe", "key", "value"])


def arrays_frame(last: int = 20000) -> pd.DataFrame:
    """The synthetic arrays as the store's load_arrays returns them (step, probe, key, array)."""
    return pd.DataFrame(array_rows(last), columns=["step", "probe", "key", "array"])


def store_run(
    runs_dir,
    name: str = "grok-digits",
    *,
    last: int = 20000,
    seed: int = 0,
    status: str | None = "finished",
    summary: dict | str | None = DETECT,
    with_arrays: bool = True,
    config: dict | None = None,
) -> str:
    """Log a synthetic run into the RunStore at ``runs_dir`` the way a monitor would; return
    its id. ``status`` None leaves it "running" (live while this process lives); ``summary``
    DETECT computes it with analysis.phenomena.detect_phenomena, as the monitor does."""
    from splinescope.store import RunStore

    store = RunStore(runs_dir)
    try:
        cfg = (
            config
            if config is not None
            else {
                "preset": "grok-digits",
                "model": {"widths": [64, 200, 200, 10], "init_scale": 8.0},
                "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01},
                "steps": last,
            }
        )
        run_id = store.create_run(name, cfg, seed=seed)
        with store.batch():
            for step, probe, values in scalar_rows(seed, last):
                store.log_scalars(run_id, step, probe, values)
            if with_arrays:
                for step, probe, key, array in array_rows(last):
                    store.log_array(run_id, step, probe, key, array)
        if summary == DETECT:
            from splinescope.analysis.phenomena import detect_phenomena
            from splinescope.store import load_metrics

            summary = detect_phenomena(load_metrics(runs_dir, run_id))
        if summary is not None:
            store.set_summary(run_id, summary)
        if status is not None:
            store.set_status(run_id, status)
    finally:
        store.close()
    return run_id
