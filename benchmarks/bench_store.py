"""The run store under load: a long run's size and read/report times, and many writers at once.

Run:  .venv/bin/python benchmarks/bench_store.py [--steps 2000] [--keys 50] [--array-steps 200]
          [--writers 8] [--seconds 60] [--skip-writers]

(1) Long run: ``--steps`` probe steps (0, 50, 100, ...) x ``--keys`` scalar keys (accuracy's four
    plus generic probes of 12 keys), a float32 32x32 array at ``--array-steps`` of them, each
    step one transaction. Printed: write time, store size, ``load_metrics`` time, the whole
    run's ``load_run_data`` time, the report's time and HTML size (curves of more than 1,000
    points are drawn from min-max buckets: splinescope.report._downsample; the stored data are
    untouched), the same report drawn from every point, for comparison; and the writer's open
    cost (``PRAGMA quick_check`` included) on that store.
(2) Concurrency: ``--writers`` processes each write their own run for ``--seconds`` (one
    committed transaction of 10 scalars per step, as fast as they can) while this process
    writes reports of those runs in a loop. Printed: rows acknowledged, stored, lost (must be
    0), values wrong (must be 0), writer and reader errors ("database is locked" or other;
    must be none), reports written and the slowest one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))

from workloads import concurrent_writers, file_mb, long_run  # noqa: E402

import splinescope.report._plotting as plotting  # noqa: E402
from splinescope.report import report_command  # noqa: E402
from splinescope.store import RunStore, load_metrics  # noqa: E402
from splinescope.store._db import db_path  # noqa: E402
from splinescope.store.rundata import load_run_data  # noqa: E402


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_long(root: Path, steps: int, keys: int, array_steps: int) -> dict:
    runs = root / "long"
    run_id, write_s = _timed(
        lambda: long_run(runs, n_steps=steps, n_keys=keys, n_array_steps=array_steps)
    )
    metrics, load_s = _timed(lambda: load_metrics(runs, run_id))
    _, run_data_s = _timed(lambda: load_run_data(runs, run_id))
    out, report_s = _timed(lambda: report_command([run_id], runs, root / "long.html"))
    limit = plotting.MAX_DRAWN
    plotting.MAX_DRAWN = 10**9  # every point drawn
    try:
        full, full_s = _timed(lambda: report_command([run_id], runs, root / "long-full.html"))
    finally:
        plotting.MAX_DRAWN = limit
    _, open_s = _timed(lambda: RunStore(runs).close())
    return {
        "probe_steps": steps,
        "scalar_keys": keys,
        "metric_rows": len(metrics),
        "array_steps": array_steps,
        "write_s": round(write_s, 2),
        "store_mb": round(file_mb(db_path(runs)), 2),
        "load_metrics_s": round(load_s, 3),
        "load_run_data_s": round(run_data_s, 3),
        "report_s": round(report_s, 2),
        "report_html_mb": round(file_mb(out), 2),
        "report_every_point_s": round(full_s, 2),
        "report_every_point_html_mb": round(file_mb(full), 2),
        "writer_open_s": round(open_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--array-steps", type=int, default=200)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--skip-writers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(json.dumps({"long_run": bench_long(root, args.steps, args.keys, args.array_steps)}))
        if not args.skip_writers:
            r = concurrent_writers(root / "load", n_writers=args.writers, seconds=args.seconds)
            print(
                json.dumps(
                    {
                        "concurrent_writers": {
                            "writers": r.writers,
                            "seconds": round(r.seconds, 1),
                            "rows_acknowledged": r.rows_acknowledged,
                            "rows_stored": r.rows_stored,
                            "rows_lost": r.rows_lost,
                            "values_wrong": r.rows_wrong,
                            "rows_per_s": round(r.rows_per_second),
                            "writer_errors": r.writer_errors[:5],
                            "reports_written": r.reports,
                            "report_errors": r.report_errors[:5],
                            "slowest_report_s": round(r.report_seconds_max, 2),
                        }
                    }
                )
            )


if __name__ == "__main__":
    main()
