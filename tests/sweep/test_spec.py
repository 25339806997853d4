import pytest
from sweep_helpers import TINY_SET

from splinescope.errors import SplinescopeError
from splinescope.sweep import dry_run_rows, expand, format_value, load_spec, parse_spec
from splinescope.sweep.spec import shipped_specs


def _spec(**values):
    fixed = {k: v for k, v in TINY_SET.items() if k != "width"}
    return parse_spec({"name": "s", "base": "grok-digits", "set": fixed, **values})


def test_grid_is_the_product_last_axis_fastest_then_zips_then_seeds():
    spec = _spec(
        grid={"depth": [1, 2], "init_scale": [1.0, 8.0]},
        zip=[{"width": [8, 16, 32], "lr": [3e-3, 2e-3, 1e-3]}],
        seeds=[0, 5],
    )
    points = expand(spec)
    assert len(points) == 2 * 2 * 3 * 2
    assert spec.axis_names == ("depth", "init_scale", "width", "lr", "seed")
    # brute-force oracle: nested loops in the documented order
    want = [
        {"depth": d, "init_scale": s, "width": w, "lr": lr, "seed": seed}
        for d in (1, 2)
        for s in (1.0, 8.0)
        for w, lr in zip((8, 16, 32), (3e-3, 2e-3, 1e-3))
        for seed in (0, 5)
    ]
    assert [p.coords for p in points] == want
    assert [p.index for p in points] == list(range(len(want)))
    for p, coords in zip(points, want):
        assert (p.config.depth, p.config.init_scale, p.config.width) == (
            coords["depth"],
            coords["init_scale"],
            coords["width"],
        )
        assert (p.config.lr, p.config.seed, p.config.steps) == (coords["lr"], coords["seed"], 30)
        assert p.config.name == p.name
    assert points[0].name == "s/depth=1,init_scale=1,width=8,lr=0.003,seed=0"
    assert points[-1].name == "s/depth=2,init_scale=8,width=32,lr=0.001,seed=5"
    assert len({p.name for p in points}) == len(points)


def test_probe_fields_and_nested_tables_address_the_same_axis():
    flat = _spec(grid={"probes.lc.radius": [0.02, 0.05]})
    nested = _spec(grid={"probes": {"lc": {"radius": [0.02, 0.05]}}})
    assert [p.name for p in expand(flat)] == [p.name for p in expand(nested)]
    radii = [next(t for t in p.config.probes if t["kind"] == "lc")["radius"] for p in expand(flat)]
    assert radii == [0.02, 0.05]
    assert expand(flat)[1].name == "s/probes.lc.radius=0.05"


def test_no_axes_is_one_run_named_after_the_sweep():
    (point,) = expand(_spec())
    assert point.name == "s" and point.coords == {}


def test_bad_specs_name_the_axis_or_key():
    with pytest.raises(SplinescopeError, match="unknown key.*grdi"):
        _spec(grdi={"depth": [1]})
    with pytest.raises(SplinescopeError, match="'dpth' is unknown"):
        _spec(grid={"dpth": [1, 2]})
    with pytest.raises(SplinescopeError, match=r"point 's/depth=-1'.*'depth': must be"):
        _spec(grid={"depth": [-1, 2]})
    with pytest.raises(SplinescopeError, match="axis 'depth': expected a non-empty list"):
        _spec(grid={"depth": 3})
    with pytest.raises(SplinescopeError, match="zipped axes must have equal lengths"):
        _spec(zip=[{"width": [8, 16], "lr": [1e-3]}])
    with pytest.raises(SplinescopeError, match="seed given more than once"):
        _spec(grid={"seed": [1, 2]}, seeds=[0])
    with pytest.raises(SplinescopeError, match="width given more than once"):
        _spec(set={**TINY_SET, "width": 8}, grid={"width": [8, 16]})  # noqa: B905
    with pytest.raises(SplinescopeError, match="'base' is missing"):
        parse_spec({"grid": {"depth": [1]}})
    with pytest.raises(SplinescopeError, match="unknown preset 'grok-digit'"):
        parse_spec({"base": "grok-digit"})
    with pytest.raises(SplinescopeError, match=r"\[report\] x = 'width' is not an axis"):
        _spec(grid={"depth": [1, 2]}, report={"x": "width"})
    with pytest.raises(SplinescopeError, match="two points are both named"):
        _spec(grid={"init_scale": [1, 1.0]})


def test_values_in_names_round_trip():
    assert format_value(0.01) == "0.01" and format_value(8.0) == "8" and format_value(3) == "3"
    assert format_value(1e-4) == "0.0001" and format_value([16, 32]) == "16x32"
    assert format_value(True) == "true" and format_value(0.1 + 0.2) == "0.30000000000000004"


def test_spec_file_with_a_relative_base_file_and_dry_run_rows(tmp_path):
    (tmp_path / "base.toml").write_text('preset = "grok-digits"\nsteps = 30\nwidth = 16\n')
    (tmp_path / "my-sweep.toml").write_text(
        'base = "base.toml"\nseeds = [0, 1]\n[grid]\ndepth = [1, 2]\n'
    )
    spec = load_spec(tmp_path / "my-sweep.toml")
    assert spec.name == "my-sweep"
    rows = dry_run_rows(spec, expand(spec))
    assert rows[1] == {
        "#": 1,
        "run": "my-sweep/depth=1,seed=1",
        "depth": "1",
        "seed": "1",
        "steps": 30,
    }
    with pytest.raises(SplinescopeError, match="not a file nor a shipped spec"):
        load_spec(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", shipped_specs())
def test_shipped_specs_parse_and_expand(name):
    spec = load_spec(name)
    points = expand(spec)
    assert len(points) >= 4 and spec.report.get("x") in spec.axis_names
