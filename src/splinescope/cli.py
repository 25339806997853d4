"""The ``splinescope`` command line: a thin layer over :mod:`splinescope.train`,
:mod:`splinescope.presets` and :mod:`splinescope.store`.

    splinescope run grok-digits            # train with the monitor attached, live progress
    splinescope presets                    # what can be run, one line each
    splinescope probes                     # the registered probe kinds, fields and defaults
    splinescope runs                       # the runs of a runs directory
    splinescope show grok-digits           # config, summary and phenomena of a run
    splinescope report grok-digits -o r.html   # self-contained HTML report
    splinescope export grok-digits DIR --to tensorboard
    splinescope partition grok-digits --step 1000 --plane train:0,1,2 -o fig.png
    splinescope sweep omnigrok-digits --jobs 2     # a grid of runs; --backend ray, --dry-run
    splinescope report omnigrok-digits         # a sweep's phase charts
    splinescope merge other/runs runs          # bring runs from another machine
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from splinescope.errors import SplinescopeError

app = typer.Typer(
    name="splinescope",
    help="A microscope for deep networks in training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_RUNS_DIR = "runs"
RunsDir = Annotated[
    Path,
    typer.Option(
        "--runs-dir", "-d", envvar="SPLINESCOPE_RUNS_DIR", help="Directory of the run store."
    ),
]


def _console(stderr: bool = False) -> Console:
    """A console sized at call time (``COLUMNS`` honoured), so tests and pipes get wide tables."""
    return Console(stderr=stderr)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` to stderr; return the Exit to raise."""
    _console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _status_line(progress: Any) -> str:
    """The loss, then every probe's declared headline values (labels from the registry)."""
    parts = [f"loss {progress.loss:.4g}" if math.isfinite(progress.loss) else "loss -"]
    parts += [f"{label} {value:.3g}" for label, value in progress.headline]
    return " | ".join(parts)


def summary_table(summary: dict[str, Any], title: str = "phenomena") -> Table:
    """The run summary as a two-column table (phenomena first, then the criteria used)."""
    from splinescope.report.phenomena import summary_items

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for item in summary_items(summary):
        style = "" if item.reached else "dim"
        table.add_row(item.label, f"[{style}]{item.text}[/]" if style else item.text)
    return table


@app.command()
def run(
    target: Annotated[
        str | None, typer.Argument(help="A preset name or a CONFIG.toml file.")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Training steps (overrides the config).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of init, batches and probes.")] = None,
    runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR),
    resume: Annotated[
        str | None, typer.Option(help="Continue this run (id, id prefix or name).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: KEY=VALUE (repeatable)."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Stop on the first probe error.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar or progress lines.")] = False,
    log_every: Annotated[
        int,
        typer.Option(
            min=0,
            help="Outside a terminal: also a progress line every N steps (0: probe steps only).",
        ),
    ] = 0,
) -> None:
    """Train a preset or a TOML config with the monitor attached; store and print phenomena.

    In a terminal a live progress bar; otherwise (a file, a pipe, CI) one plain line per
    probe step: step, elapsed time, ETA, loss and the probes' headline values."""
    from splinescope.presets import preset_config
    from splinescope.train import apply_overrides, load_config_file, parse_assignment, train

    try:
        if resume is not None:
            if target is not None or steps is not None or seed is not None or set_:
                raise SplinescopeError(
                    "--resume continues a stored run with its stored config; give no preset, "
                    "config file, --steps, --seed or --set with it"
                )
            config = None
            label = f"resuming {resume}"
        else:
            if target is None:
                raise SplinescopeError(
                    "give a preset name or a CONFIG.toml file (see `splinescope presets`), "
                    "or --resume RUN"
                )
            if target.endswith(".toml") or Path(target).is_file():
                config = load_config_file(target, preset_config)
            else:
                config = preset_config(target)
            overrides = dict(parse_assignment(text) for text in set_ or ())
            if steps is not None:
                overrides["steps"] = steps
            if seed is not None:
                overrides["seed"] = seed
            config = apply_overrides(config, overrides)
            label = config.name
    except SplinescopeError as exc:
        raise fail(str(exc)) from None

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=16),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    console = _console()
    plain = not console.is_terminal
    progress = Progress(*columns, console=console, disable=quiet or plain, transient=False)
    task = progress.add_task(label, total=config.steps if config else None, status="")
    run_id: list[str] = []
    if plain and not quiet:
        import sys

        from splinescope.plainlog import PlainLog

        print(f"{label}: training, runs in {runs_dir}", flush=True)
        on_progress: Any = PlainLog(sys.stdout, _status_line, log_every=log_every)
    else:

        def on_progress(info: Any) -> None:
            progress.update(task, completed=info.step, total=info.total, status=_status_line(info))

    try:
        with progress:
            result = train(
                config,
                runs_dir=runs_dir,
                resume=resume,
                on_progress=on_progress,
                progress_every=min(100, log_every) if log_every else 100,
                strict=strict,
                on_start=run_id.append,
            )
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt as exc:
        # SIGINT, SIGTERM, SIGHUP: the conventional exit code 128 + signal number.
        rid = run_id[0] if run_id else "?"
        _console(stderr=True).print(
            f"[yellow]interrupted[/] ({exc or 'SIGINT'}): run {rid} is marked interrupted; its "
            f"data are kept. Continue it with: splinescope run --resume {rid} "
            f"--runs-dir {runs_dir}"
        )
        raise typer.Exit(getattr(exc, "exit_code", 130)) from None
    if result.divergence is not None:
        _console(stderr=True).print(
            f"[red]diverged:[/] run {result.run_id}: {result.divergence.message()}; every "
            "step recorded before it is kept",
            highlight=False,
        )
    console.print(
        f"run [bold]{result.run_id}[/] "
        f"{'diverged' if result.divergence is not None else 'finished'}: "
        f"step {result.step:,} in {result.seconds:.0f} s"
        + (f", {result.probe_errors} probe error(s) recorded" if result.probe_errors else "")
    )
    console.print(summary_table(result.summary))


@app.command()
def presets() -> None:
    """List the presets, one line each."""
    console = _console()
    from splinescope.presets import PRESETS

    width = max(len(name) for name in PRESETS)
    for preset in PRESETS.values():
        console.print(
            f"[bold]{preset.name:<{width}}[/]  {preset.summary} "
            f"[dim]({preset.config.steps:,} steps)[/]",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def probes() -> None:
    """List every registered probe kind with its fields and defaults."""
    from splinescope.monitor.registry import kinds, skipped_plugins

    console = _console()
    for name, kind in kinds().items():
        origin = f"{kind.config.__module__}.{kind.config.__qualname__}"
        console.print(f"[bold]{name}[/]  {kind.description} [dim]({origin})[/]", soft_wrap=True)
        table = Table(show_header=True, box=None, pad_edge=False, padding=(0, 2))
        for column in ("field", "type", "default"):
            table.add_column(column, style="dim" if column == "type" else "")
        table.add_row("schedule", "text", "the run's schedule")
        for field_name, type_text, default in kind.fields():
            table.add_row(field_name, type_text, _fmt(default) if default is not None else "none")
        console.print(table)
    for name, reason in skipped_plugins().items():
        console.print(f"[red]not loaded:[/] {name}: {reason}", soft_wrap=True, highlight=False)


@app.command()
def runs(runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR)) -> None:
    """List the runs of a runs directory in a table."""
    console = _console()
    import datetime

    from splinescope.store import load_runs

    if not runs_dir.exists():
        raise fail(f"runs directory {str(runs_dir)!r} does not exist")
    try:
        frame = load_runs(runs_dir)
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    if frame.empty:
        console.print(f"no runs in {runs_dir}")
        return
    table = Table(title=f"runs in {runs_dir}", title_justify="left")
    for column, width in (("id", 12), ("name", 8), ("status", 11), ("created (UTC)", 16)):
        table.add_column(column, no_wrap=True, min_width=width)
    table.add_column("last step", justify="right")
    table.add_column("grokking gap", justify="right")
    colours = {
        "finished": "green",
        "running": "cyan",
        "crashed": "red",
        "interrupted": "yellow",
        "diverged": "magenta",
    }
    for row in frame.itertuples():
        created = datetime.datetime.fromtimestamp(row.created_at, datetime.timezone.utc)
        last = (
            "-" if row.last_step is None or str(row.last_step) == "<NA>" else f"{row.last_step:,}"
        )
        gap = (row.summary or {}).get("grokking_gap", "-")
        colour = colours.get(row.status, "white")
        table.add_row(
            row.run_id,
            str(row.name),
            f"[{colour}]{row.status}[/]",
            created.strftime("%Y-%m-%d %H:%M"),
            last,
            _fmt(gap),
        )
    console.print(table)


@app.command()
def show(
    run_name: Annotated[str, typer.Argument(metavar="RUN", help="Run id, id prefix or name.")],
    runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR),
) -> None:
    """Print a run's config, status, environment, summary and phenomena."""
    console = _console()
    from splinescope.store import get_run, load_errors

    if not runs_dir.exists():
        raise fail(f"runs directory {str(runs_dir)!r} does not exist")
    try:
        row = get_run(runs_dir, run_name)
        errors = load_errors(runs_dir, row["run_id"])
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"run [bold]{row['run_id']}[/] ({row['name']}): {row['status']}, last step "
        f"{_fmt(row['last_step']) if str(row['last_step']) != '<NA>' else '-'}",
        highlight=False,
    )
    config = Table(title="config", show_header=False, title_justify="left")
    config.add_column("field", style="bold")
    config.add_column("value")
    for key, value in (row["config"] or {}).items():
        config.add_row(key, _fmt(value))
    console.print(config)
    env = row["env"] or {}
    if env:
        console.print(
            "environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), highlight=False
        )
    summary = row["summary"] or {}
    if summary:
        console.print(summary_table(summary, title="summary and phenomena"))
    else:
        console.print("no summary yet (the run has not finished)")
    if not errors.empty:
        console.print(f"[red]{len(errors)} probe error(s)[/]; first: {errors.iloc[0]['message']}")


@app.command()
def report(
    run_names: Annotated[
        list[str], typer.Argument(metavar="RUN...", help="Run ids, id prefixes or names.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR),
) -> None:
    """Write one self-contained HTML report of one run, a comparison of several, or the
    phase charts of a sweep (give the sweep's name)."""
    from splinescope.report.commands import report_command

    try:
        from splinescope.store.sweeps import sweep_names

        if len(run_names) == 1 and run_names[0] in sweep_names(runs_dir):
            from splinescope.report.sweep_page import write_sweep_report

            path = write_sweep_report(runs_dir, run_names[0], output)
        else:
            path = report_command(run_names, runs_dir, output)
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    _console().print(f"report written to {path}", highlight=False, soft_wrap=True)


@app.command()
def export(
    run_name: Annotated[str, typer.Argument(metavar="RUN", help="Run id, id prefix or name.")],
    dest: Annotated[
        str, typer.Argument(metavar="DEST", help="TensorBoard log dir, or an MLflow URI.")
    ],
    to: Annotated[str, typer.Option("--to", help="tensorboard or mlflow.")],
    runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR),
) -> None:
    """Export a run's scalars, config and arrays to TensorBoard or MLflow."""
    from splinescope.export.commands import export_command

    try:
        export_command(run_name, runs_dir, to, dest)
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    _console().print(f"run {run_name} exported to {to} at {dest}", highlight=False, soft_wrap=True)


@app.command()
def partition(
    run_name: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="Run id, id prefix or name.")
    ] = None,
    step: Annotated[
        int | None, typer.Option(help="Probe step whose model to draw (default: the last).")
    ] = None,
    plane: Annotated[
        str, typer.Option(help="Plane through three samples: SPLIT:I,J,K (train or test).")
    ] = "train:0,1,2",
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file.")] = Path(
        "partition.png"
    ),
    model: Annotated[
        Path | None, typer.Option("--model", help="A saved model (.pt) instead of a snapshot.")
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Let --model FILE unpickle a whole nn.Module: this runs any code the file "
            "holds, so use it only for files you made. Without it, FILE is read as weights.",
        ),
    ] = False,
    data: Annotated[
        str | None, typer.Option("--data", help="Embedded dataset for --model without RUN.")
    ] = None,
    runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR),
) -> None:
    """Draw the exact linear regions of a 2-D slice through three samples (SplineCam-style)."""
    from splinescope.report.partition_command import partition_command

    try:
        path = partition_command(
            run_name,
            runs_dir,
            plane=plane,
            output=output,
            step=step,
            model_file=model,
            dataset=data,
            trust_pickle=trust_pickle,
        )
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    _console().print(f"partition written to {path}", highlight=False, soft_wrap=True)


@app.command()
def sweep(
    spec: Annotated[
        str, typer.Argument(metavar="SPEC", help="A SPEC.toml file or a shipped spec's name.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the runs; run none.")] = False,
    table: Annotated[
        bool,
        typer.Option(
            "--table",
            help="Print the stored results per point (the report's quantities); run none.",
        ),
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Runs at once (default: cores / threads).")
    ] = None,
    backend: Annotated[str, typer.Option(help="pool (local processes) or ray.")] = "pool",
    address: Annotated[
        str | None, typer.Option(help="A Ray cluster's address (--backend ray).")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run points that used up their retries again.")
    ] = False,
    no_population: Annotated[
        bool,
        typer.Option(
            "--no-population",
            help="Train every point alone (default: points that differ only in seed, "
            "init_scale, weight_decay, lr train together as stacked populations).",
        ),
    ] = False,
    runs_dir: RunsDir = Path(DEFAULT_RUNS_DIR),
) -> None:
    """Run a sweep (a grid of runs) into one store; run it again to resume after a kill."""
    from splinescope.sweep.commands import sweep_command

    try:
        code = sweep_command(
            spec,
            runs_dir,
            dry_run=dry_run,
            jobs=jobs,
            backend=backend,
            address=address,
            retry_failed=retry_failed,
            console=_console(),
            table_only=table,
            population=False if no_population else None,
        )
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        _console(stderr=True).print(
            "[yellow]interrupted:[/] the sweep's runs are marked interrupted; run the same "
            "command again to resume"
        )
        raise typer.Exit(130) from None
    if code:
        raise typer.Exit(code)


@app.command()
def merge(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="Runs directory to merge from.")],
    dest: Annotated[Path, typer.Argument(metavar="DEST", help="Runs directory to merge into.")],
) -> None:
    """Bring SRC's runs (ids kept) and sweep records into DEST; refuses conflicting ids."""
    from splinescope.sweep.commands import merge_command

    try:
        merge_command(src, dest, _console())
    except SplinescopeError as exc:
        raise fail(str(exc)) from None
