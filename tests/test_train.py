import copy
import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cheap_probes import cheap
from splinescope.errors import SplinescopeError
from splinescope.presets import preset_config
from splinescope.store import load_metrics, load_runs
from splinescope.store.checkpoints import CHECKPOINT
from splinescope.train import (
    BatchSampler,
    TrainConfig,
    apply_overrides,
    load_config_file,
    mse_onehot,
    parse_assignment,
    train,
)

# A run small enough for a test: 120 digits, a narrow MLP, cheap probes.
TINY = {
    "name": "tiny",
    "n_train": 120,
    "width": 24,
    "init_scale": 2.0,
    "steps": 30,
    "batch_size": 40,
    "schedule": "every:10",
}


def tiny_config(**changes) -> TrainConfig:
    return cheap(TrainConfig(), **{**TINY, **changes})


def test_overrides_are_type_checked_against_the_fields():
    config = apply_overrides(TrainConfig(), {"lr": 1, "steps": 7, "probes": [{"kind": "accuracy"}]})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.steps == 7 and config.probes == ({"kind": "accuracy"},)
    with pytest.raises(
        SplinescopeError, match="'stpes' is unknown.*did you mean steps.*valid fields: name"
    ):
        apply_overrides(TrainConfig(), {"stpes": 3})
    with pytest.raises(SplinescopeError, match="'steps': expected an integer, got '3'"):
        apply_overrides(TrainConfig(), {"steps": "3"})
    with pytest.raises(SplinescopeError, match="'batchnorm': expected true or false"):
        apply_overrides(TrainConfig(), {"batchnorm": 1})
    with pytest.raises(
        SplinescopeError, match="'optimizer': expected one of 'adamw', 'adam', 'sgd'"
    ):
        apply_overrides(TrainConfig(), {"optimizer": "lion"})
    with pytest.raises(SplinescopeError, match="'activation': 'abs' is not allowed"):
        apply_overrides(TrainConfig(), {"activation": "abs"})
    with pytest.raises(
        SplinescopeError, match="probe kind 'curvature' is not registered; registered kinds: "
    ):
        apply_overrides(TrainConfig(), {"probes": [{"kind": "accuracy"}, {"kind": "curvature"}]})
    with pytest.raises(SplinescopeError, match="'lr': must be a finite number > 0"):
        apply_overrides(TrainConfig(), {"lr": -1.0})
    with pytest.raises(SplinescopeError, match="n_vertices: must be even"):
        apply_overrides(TrainConfig(), {"probes.lc.n_vertices": 7})
    with pytest.raises(
        SplinescopeError, match=r"probe 'lc' \(kind 'lc'\) field 'raduis' is unknown"
    ):
        apply_overrides(TrainConfig(), {"probes.lc.raduis": 0.1})
    with pytest.raises(SplinescopeError, match="names must be unique"):
        apply_overrides(TrainConfig(), {"probes": [{"kind": "lc"}, {"kind": "lc"}]})
    with pytest.raises(SplinescopeError, match="schedule"):
        apply_overrides(TrainConfig(), {"schedule": "sometimes"})


def test_probe_tables_set_add_and_remove_probes():
    config = TrainConfig()
    changed = apply_overrides(
        config,
        {
            "probes.lc.radius": parse_assignment("probes.lc.radius=0.1")[1],
            "probes.lc5.kind": "lc",
            "probes.lc5.radius": 5,
            "probes.hessian.kind": "hessian",
            "probes.hessian.schedule": "log:10",
            "probes.units": "off",
        },
    )
    tables = {t.name: t for t in changed.probe_tables()}
    assert tables["lc"].options["radius"] == 0.1 and tables["lc5"].options["radius"] == 5.0
    assert tables["hessian"].schedule == "log:10" and "units" not in tables
    with pytest.raises(SplinescopeError, match="no probe named 'nope'"):
        apply_overrides(config, {"probes.nope.radius": 1.0})
    with pytest.raises(SplinescopeError, match="expected a number"):
        apply_overrides(config, {"probes.lc.radius": parse_assignment("probes.lc.radius=big")[1]})


def test_each_probe_gets_its_schedule_and_the_runs_seed():
    from splinescope.train import make_probes

    config = apply_overrides(
        TrainConfig(steps=1000, seed=7),
        {"probes.hessian.kind": "hessian", "probes.hessian.schedule": "log:10"},
    )
    built = {probe.name: (probe, schedule) for probe, schedule in make_probes(config)}
    assert len(built["hessian"][1].steps_until(1000)) < len(built["accuracy"][1].steps_until(1000))
    assert built["lc"][0].seed == 7 and built["hessian"][0].seed == 7


def test_command_line_assignments_are_read_as_the_fields_type():
    def parsed(text):
        key, value = parse_assignment(text)
        return key, getattr(apply_overrides(TrainConfig(), {key: value}), key.split(".")[0])

    assert parsed("lr=3e-4") == ("lr", 3e-4)
    assert parsed("steps = 12") == ("steps", 12)
    assert parsed("batchnorm=true") == ("batchnorm", True)
    assert parsed("channels=8,16") == ("channels", (8, 16))
    assert parsed("data_options.p=11") == ("data_options.p", {"p": 11})
    with pytest.raises(SplinescopeError, match="'steps': expected an integer, got 'many'"):
        parsed("steps=many")
    with pytest.raises(SplinescopeError, match="unknown"):
        parse_assignment("nope=1")
    with pytest.raises(SplinescopeError, match="KEY=VALUE"):
        parse_assignment("steps")
    with pytest.raises(SplinescopeError, match="probes.NAME.FIELD"):
        parse_assignment("probes=accuracy,lc")


def test_set_probes_empty_list_turns_every_probe_off():
    for text in ("probes=[]", "probes = [ ]"):
        key, value = parse_assignment(text)
        assert apply_overrides(TrainConfig(), {key: value}).probes == ()
    with pytest.raises(SplinescopeError, match="probes=\\[\\]"):
        parse_assignment("probes=[accuracy]")


def test_toml_probe_tables(tmp_path):
    path = tmp_path / "two-radii.toml"
    path.write_text(
        'preset = "grok-digits"\nsteps = 50\n'
        '[[probes]]\nkind = "accuracy"\n'
        '[[probes]]\nkind = "lc"\nname = "lc_r005"\nradius = 0.05\n'
        '[[probes]]\nkind = "lc"\nname = "lc_r05"\nradius = 0.5\nschedule = "every:10"\n'
    )
    config = load_config_file(path, preset_config)
    names = [t.name for t in config.probe_tables()]
    assert names == ["accuracy", "lc_r005", "lc_r05"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[probes]]\nkind = "lc"\nradius = "wide"\n')
    with pytest.raises(SplinescopeError, match=r"bad.toml.*field 'radius': expected a number"):
        load_config_file(bad, preset_config)


def test_config_round_trips_through_its_dict():
    config = preset_config("grok-modular")
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert apply_overrides(config, {"data_options.p": 11}).data_options == {
        **config.data_options,
        "p": 11,
    }


def test_toml_config_with_a_preset_base(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('preset = "grok-digits"\nsteps = 5\nlr = 2e-3\n[data_options]\nn_test = 500\n')
    config = load_config_file(path, preset_config)
    assert config.steps == 5 and config.lr == 2e-3 and config.init_scale == 8.0
    assert config.data_options == {"n_test": 500} and config.name == "grok-digits"
    plain = tmp_path / "plain.toml"
    plain.write_text("width = 10\n")
    assert load_config_file(plain, preset_config).name == "plain"
    bad = tmp_path / "bad.toml"
    bad.write_text("wdith = 10\n")
    with pytest.raises(SplinescopeError, match="'wdith' is unknown.*did you mean width"):
        load_config_file(bad, preset_config)
    bad.write_text('preset = "grok-digts"\n')
    with pytest.raises(SplinescopeError, match="available presets: grok-digits"):
        load_config_file(bad, preset_config)
    with pytest.raises(SplinescopeError, match="not found"):
        load_config_file(tmp_path / "missing.toml", preset_config)


def test_batch_sampler_walks_permutations_and_resumes_exactly():
    sampler = BatchSampler(10, 4, seed=3)
    first_epoch = torch.cat([sampler.next(), sampler.next()])
    assert len(set(first_epoch.tolist())) == 8
    state = sampler.state_dict()
    ahead = [sampler.next() for _ in range(5)]
    other = BatchSampler(10, 4, seed=99)
    other.load_state_dict(state)
    assert all(torch.equal(a, other.next()) for a in ahead)
    assert torch.equal(BatchSampler(5, 0, seed=1).next().sort().values, torch.arange(5))


def test_mse_onehot_is_the_mean_over_all_entries():
    logits = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    expected = ((1 - 1) ** 2 + 0**2 + 0.5**2 + (0.5 - 1) ** 2) / 4
    assert float(mse_onehot(logits, torch.tensor([0, 1]))) == pytest.approx(expected)


def test_a_tiny_run_stores_metrics_checkpoint_and_summary(tmp_path):
    seen = []
    result = train(tiny_config(), runs_dir=tmp_path, on_progress=seen.append, progress_every=5)
    assert result.step == 30 and result.probe_errors == 0
    runs = load_runs(tmp_path)
    assert runs.iloc[0]["status"] == "finished" and runs.iloc[0]["config"]["width"] == 24
    metrics = load_metrics(tmp_path, result.run_id)
    assert sorted(set(metrics["step"])) == [0, 10, 20, 30]
    assert set(metrics["probe"]) == {"accuracy", "lc", "fgsm", "pgd", "weights", "units"}
    assert "interpolation_step" in result.summary and runs.iloc[0]["summary"] == result.summary
    assert (tmp_path / result.run_id / CHECKPOINT).exists()
    assert [p.step for p in seen if p.measured] == [0, 10, 20, 30]
    assert (
        seen[-1].latest["accuracy"]["train_acc"]
        == metrics.query("step == 30 and key == 'train_acc'")["value"].item()
    )


def _final_state(runs_dir, run_id):
    return torch.load(runs_dir / run_id / CHECKPOINT, weights_only=True)["model"]


def test_interrupt_then_resume_gives_the_uninterrupted_run(tmp_path):
    whole = train(tiny_config(), runs_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(), runs_dir=tmp_path / "b", stop_after=14)
    runs = load_runs(tmp_path / "b")
    run_id = runs.iloc[0]["run_id"]
    assert runs.iloc[0]["status"] == "interrupted"
    assert sorted(set(load_metrics(tmp_path / "b", run_id)["step"])) == [0, 10]  # data kept
    resumed = train(None, runs_dir=tmp_path / "b", resume="tiny")
    assert resumed.run_id == run_id and load_runs(tmp_path / "b").iloc[0]["status"] == "finished"
    a, b = _final_state(tmp_path / "a", whole.run_id), _final_state(tmp_path / "b", run_id)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma = load_metrics(tmp_path / "a", whole.run_id)
    mb = load_metrics(tmp_path / "b", run_id)
    assert ma[["step", "probe", "key"]].equals(mb[["step", "probe", "key"]])
    assert (ma["value"].to_numpy() == mb["value"].to_numpy()).all()
    with pytest.raises(SplinescopeError, match="finished"):
        train(None, runs_dir=tmp_path / "b", resume=run_id)


def test_an_unwritable_runs_directory_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SplinescopeError, match="runs_dir .* is not a writable directory"):
        train(tiny_config(), runs_dir=blocker / "runs")


def test_bad_data_options_name_the_option(tmp_path):
    with pytest.raises(
        SplinescopeError, match="unknown option.*'q'.*allowed: p, op, train_fraction"
    ):
        train(tiny_config(dataset="modular", data_options={"q": 3}), runs_dir=tmp_path)
    assert load_runs(tmp_path).empty  # nothing was created


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().steps = 3


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["mse", "cross_entropy"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    n=st.integers(1, 30),
    classes=st.integers(2, 7),
    batch=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_batch_loss_equals_the_loss_on_the_batch_labels(name, dtype, n, classes, batch, seed):
    from splinescope.train.build import BatchLoss, make_loss

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=g)
    index = torch.randint(n, (batch,), generator=g)
    logits = torch.randn(batch, classes, generator=g, dtype=dtype, requires_grad=True)
    batch_loss = BatchLoss(name, labels)
    for _ in range(2):  # the second call reads the targets built by the first
        ours = batch_loss(logits, index)
        (g_ours,) = torch.autograd.grad(ours, logits)
        plain = make_loss(name)(logits, labels[index])
        (g_plain,) = torch.autograd.grad(plain, logits)
        assert ours.dtype == plain.dtype and torch.equal(ours, plain)
        assert torch.equal(g_ours, g_plain)


def _first_non_finite(model):
    """The naive scan: every parameter, every value, in order."""
    for name, p in model.named_parameters():
        for v in p.detach().flatten().tolist():
            if not math.isfinite(v):
                return name, "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return None


@settings(max_examples=60, deadline=None)
@given(
    hits=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 10**6),
            st.sampled_from([math.nan, math.inf, -math.inf]),
        ),
        max_size=3,
    ),
    huge=st.booleans(),
)
def test_parameter_check_finds_what_a_scan_finds(hits, huge):
    from torch import nn

    from splinescope.train.divergence import ParameterCheck, check_parameters

    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    check = ParameterCheck(model)  # built before the values change, as in the loop
    params = list(model.parameters())
    with torch.no_grad():
        if huge:
            params[0].fill_(3e38)  # the norm overflows on finite values
        for i, position, value in hits:
            flat = params[i].view(-1)
            flat[position % flat.numel()] = value
    expected = _first_non_finite(model)
    for found in (check.check(9), check_parameters(9, model)):
        got = None if found is None else (found.tensor, found.value)
        assert got == expected and (found is None or found.step == 9)


def test_fused_adamw_follows_the_per_tensor_loop_within_rounding():
    from splinescope.train import load_data, make_model, make_optimizer
    from splinescope.train.build import BatchLoss

    config = preset_config("grok-digits")
    runs = []
    for fused in (True, False):
        torch.manual_seed(0)
        data = load_data(config)
        model = make_model(config, data)
        if fused:
            optimizer = make_optimizer(config, model)
            assert optimizer.param_groups[0]["fused"] is True
        else:
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        loss = BatchLoss("mse", data.y_train)
        sampler = BatchSampler(data.n_train, 200, seed=1)
        for _ in range(50):
            index = sampler.next()
            optimizer.zero_grad(set_to_none=True)
            loss(model(data.x_train[index]), index).backward()
            optimizer.step()
        runs.append([p.detach() for p in model.parameters()])
    # 50 steps of a x8-initialised MLP: the two roundings stay within 1e-5 of the weights'
    # scale (about 1 ulp of float32 per step); longer runs drift apart as any reordering does
    for a, b in zip(*runs):
        assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())


def test_an_optimizer_restored_from_a_per_tensor_state_keeps_stepping_per_tensor():
    from torch import nn

    from splinescope.train import make_optimizer

    def trained(optimizer_of):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
        optimizer = optimizer_of(model)
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(4))
        for _ in range(3):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
        return model, optimizer

    config = TrainConfig()
    # a checkpoint written before fused Adam(W): a per-tensor state, restored by the new code
    old_model, old = trained(lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3))
    new_model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    new_model.load_state_dict(old_model.state_dict())
    restored = make_optimizer(config, new_model)
    restored.load_state_dict(copy.deepcopy(old.state_dict()))  # as from a file
    assert not restored.param_groups[0]["fused"]
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(5))
    for model, optimizer in ((old_model, old), (new_model, restored)):
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    for a, b in zip(old_model.parameters(), new_model.parameters()):
        assert torch.equal(a, b)  # the run continues exactly as it began
