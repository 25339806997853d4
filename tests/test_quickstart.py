from rich.console import Console

from splinescope.geometry.complexity import local_complexity
from splinescope.quickstart import lc_table, main, train_digits_mlp


def test_quickstart_table_rows_match_results():
    model, data = train_digits_mlp(steps=5)
    results = {"train": local_complexity(model, data.x_train[:20], radius=0.5, n_vertices=10)}
    console = Console(width=200, record=True)
    console.print(lc_table(results))
    text = console.export_text()
    mean = results["train"].mean_total
    assert f"{mean:.2f}" in text and "act1" in text and "total" in text


def test_quickstart_main_runs(capsys):
    main(["--steps", "3", "--radius", "0.2"])
    out = capsys.readouterr().out
    assert "train accuracy" in out and "random mean" in out
