import pytest
import torch

from cheap_probes import cheap
from splinescope.errors import SplinescopeError
from splinescope.monitor import ProbeContext, check_probe
from splinescope.presets import PRESETS, get_preset, preset_config
from splinescope.train import load_data, make_loss, make_model, make_probes, train


def test_the_presets_exist_with_one_line_summaries():
    assert list(PRESETS) == [
        "grok-digits",
        "lc-phases-mnist",
        "grok-mnist",
        "grok-mnist1d",
        "grok-modular",
        "robust-cnn-digits",
    ]
    for name, preset in PRESETS.items():
        assert preset.config.name == name and "\n" not in preset.summary
        assert {t.kind for t in preset.config.probe_tables()} >= {"accuracy", "lc", "adversarial"}


@pytest.mark.parametrize("name, init", [("lc-phases-mnist", 1.0), ("grok-mnist", 8.0)])
def test_paper_presets_are_the_published_mnist_setup(name, init):
    c = preset_config(name)
    assert (c.dataset, c.n_train, c.model, c.width, c.depth, c.activation) == (
        "mnist",
        1000,
        "mlp",
        200,
        3,  # hidden layers: four nn.Linear with the logits
        "relu",
    )
    assert (c.init_scale, c.optimizer, c.lr, c.weight_decay, c.loss, c.batch_size) == (
        init,
        "adamw",
        1e-3,
        0.01,
        "mse",
        200,
    )
    tables = {t.name: t for t in c.probe_tables()}
    lcs = [t for t in tables.values() if t.kind == "lc"]
    assert sorted(t.options["radius"] for t in lcs) == [0.05, 0.5, 5.0]
    assert all(t.options["units"] == "linear_outputs" for t in lcs)
    assert all(t.options["n_points"] == 1000 for t in lcs)
    pgd = tables["pgd"].options
    assert pgd["eps"] == pytest.approx([e / 255 for e in (16, 24.5, 33, 41.5, 50)])
    assert (pgd["steps"], pgd["step_size"], pgd["n_points"]) == (10, 4 / 255, 500)
    assert {"boundary_lc", "migration", "accuracy"} <= {t.kind for t in tables.values()}


def test_grok_digits_measures_lc_the_published_way_at_a_scaled_radius():
    lc = {t.name: t for t in preset_config("grok-digits").probe_tables()}["lc"].options
    assert lc["units"] == "linear_outputs" and lc["radius"] == pytest.approx(0.02)


def test_grok_digits_is_omnigroks_recipe():
    c = preset_config("grok-digits")
    assert (c.dataset, c.model, c.width, c.depth, c.init_scale) == ("digits", "mlp", 200, 2, 8.0)
    assert (c.optimizer, c.lr, c.weight_decay, c.loss, c.batch_size) == (
        "adamw",
        1e-3,
        0.01,
        "mse",
        200,
    )


def test_unknown_preset_lists_the_presets():
    with pytest.raises(
        SplinescopeError,
        match="unknown preset 'grok'.*available presets: grok-digits, lc-phases-mnist, grok-mnist, grok-mnist1d, grok-modular, robust-cnn-digits",
    ):
        get_preset("grok")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_its_probes_pass_the_conformance_check(name):
    config = cheap(preset_config(name))
    data = load_data(config)
    torch.manual_seed(config.seed)
    model = make_model(config, data)
    ctx = ProbeContext.from_data(data, loss_fn=make_loss(config.loss), n_random=30)
    for probe, _ in make_probes(config):
        result = check_probe(probe, model, ctx)
        assert result.scalars


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_a_few_steps_without_probe_errors(name, tmp_path):
    config = cheap(preset_config(name), steps=3)
    result = train(config, runs_dir=tmp_path)
    assert result.probe_errors == 0 and result.step == 3
    assert {t.name for t in config.probe_tables()} == set(result.latest)
