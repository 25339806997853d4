import pytest
import torch

from cheap_probes import cheap
from splinescope.errors import SplinescopeError
from splinescope.monitor import ProbeContext, check_probe
from splinescope.presets import PRESETS, get_preset, preset_config
from splinescope.train import load_data, make_loss, make_model, make_probes, train


def test_the_four_presets_exist_with_one_line_summaries():
    assert list(PRESETS) == ["grok-digits", "grok-mnist1d", "grok-modular", "robust-cnn-digits"]
    for name, preset in PRESETS.items():
        assert preset.config.name == name and "\n" not in preset.summary
        assert {t.kind for t in preset.config.probe_tables()} >= {"accuracy", "lc", "adversarial"}


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
        match="unknown preset 'grok'.*available presets: grok-digits, grok-mnist1d, grok-modular, robust-cnn-digits",
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
    assert {"accuracy", "lc", "fgsm"} <= set(result.latest)
