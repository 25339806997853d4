"""What the CLI's ``sweep`` and ``merge`` commands do, as plain functions that print."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from splinescope.sweep.run import SweepEvent, run_sweep
from splinescope.sweep.spec import dry_run_rows, expand, load_spec

_STYLES = {
    "finished": "green",
    "failed": "red",
    "retry": "yellow",
    "interrupted": "yellow",
    "gave-up": "red",
    "busy": "cyan",
}


def print_sweep_table(runs_dir: Path, sweep: str, console: Console) -> None:
    """Print one row per point of stored sweep ``sweep``: its coordinates, state and the
    spec's ``[report]`` quantities (seeds averaged as in the phase charts; "×" = not reached)."""
    from splinescope.report.phase import cell, chosen_quantities, sweep_table

    table = sweep_table(runs_dir, sweep)
    quantities = chosen_quantities(table)
    seedless = [a for a in table.axes if a != "seed"]
    groups = table.points.groupby(seedless, sort=False) if seedless else [((), table.points)]
    out = Table(title=f"sweep {sweep}", title_justify="left")
    for column in [*seedless, "runs", *quantities]:
        out.add_column(column, justify="left" if column in seedless else "right")
    for key, rows in groups:
        key = key if isinstance(key, tuple) else (key,)
        finished = int((rows["run_status"] == "finished").sum())
        cells = [cell(table, list(rows["point"]), q).text for q in quantities]
        out.add_row(*(str(k) for k in key), f"{finished}/{len(rows)}", *cells)
    console.print(out)


def sweep_command(
    target: str,
    runs_dir: Path,
    *,
    dry_run: bool,
    jobs: int | None,
    backend: str,
    address: str | None,
    retry_failed: bool,
    console: Console,
    table_only: bool = False,
    population: bool | None = None,
) -> int:
    """Print the table of runs (``dry_run``), the stored results (``table_only``), or run the
    sweep and print its results; return the exit code (0 when every point finished, 1 when
    some failed)."""
    spec = load_spec(target)
    if table_only:
        print_sweep_table(runs_dir, spec.name, console)
        return 0
    points = expand(spec)
    if dry_run:
        rows = dry_run_rows(spec, points)
        table = Table(title=f"sweep {spec.name}: {len(rows)} runs", title_justify="left")
        for column in rows[0]:
            table.add_column(column, justify="right" if column in ("#", "steps") else "left")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
        return 0

    def on_event(event: SweepEvent) -> None:
        if event.kind == "busy":
            return
        style = _STYLES.get(event.kind, "")
        what = f"[{style}]{event.kind}[/]" if style else event.kind
        run = f" run {event.run_id}" if event.run_id else ""
        note = f": {event.message}" if event.message and event.kind != "finished" else ""
        console.print(f"{what} {event.point}{run}{note}", highlight=False, soft_wrap=True)

    result = run_sweep(
        spec,
        runs_dir,
        backend=backend,
        jobs=jobs,
        address=address,
        retry_failed=retry_failed,
        on_event=on_event,
        population=population,
    )
    counts = result.counts
    print_sweep_table(runs_dir, spec.name, console)
    console.print(
        f"sweep [bold]{spec.name}[/]: "
        + ", ".join(f"{n} {state}" for state, n in counts.items())
        + f" in {result.seconds:.0f} s; report: splinescope report {spec.name} "
        f"--runs-dir {runs_dir}",
        highlight=False,
        soft_wrap=True,
    )
    if counts.get("failed"):
        console.print(
            "[red]some points failed[/] (see `splinescope show RUN`); run again with "
            "--retry-failed to try them again",
            soft_wrap=True,
        )
        return 1
    return 0


def merge_command(src: Path, dest: Path, console: Console) -> None:
    """Merge SRC's store into DEST's and print what moved."""
    from splinescope.store.merge import merge_stores

    result = merge_stores(src, dest)
    console.print(
        f"merged {src} into {dest}: {len(result.added)} run(s) added, {len(result.updated)} "
        f"updated, {len(result.unchanged)} unchanged, {result.files} file(s) copied"
        + (f"; sweeps added {', '.join(result.sweeps_added)}" if result.sweeps_added else "")
        + (f"; sweeps updated {', '.join(result.sweeps_updated)}" if result.sweeps_updated else ""),
        highlight=False,
        soft_wrap=True,
    )
