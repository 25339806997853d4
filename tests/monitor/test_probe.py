import numpy as np
import pytest
import torch

from splinescope.errors import SplinescopeError
from splinescope.monitor import (
    AccuracyProbe,
    Outputs,
    ProbeContext,
    ProbeResult,
    ScalarKey,
    check_probe,
    kinds,
    random_points,
)
from splinescope.monitor.probe import subset

# Cheap settings for the conformance run on a tiny model (every other field at its default).
CHEAP = {
    "lc": {"n_vertices": 8, "n_points": 40},
    "adversarial": {"n_points": 30, "steps": 3, "splits": ("test", "train")},
    "hessian": {"k": 2, "n_points": 32},
    "codes": {"n_points": 60},
    "partition": {"dpi": 30},
    "boundary_lc": {"n_vertices": 8, "n_points": 40},
    "migration": {"resolution": 32, "dpi": 20},
}


# Kinds that emit their measure only where the model has a decision boundary among the points
# (an untrained tiny MLP predicts one class on them): checked on the MLP fitted for a few steps.
NEEDS_A_BOUNDARY = {"boundary_lc", "migration"}


def _fitted(model, context):
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(context.x_train), context.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model


@pytest.mark.parametrize("kind", sorted(kinds()))
def test_every_registered_kind_passes_the_conformance_check(kind, model, context):
    if kind in NEEDS_A_BOUNDARY:
        model = _fitted(model, context)
    probe = kinds()[kind].build(CHEAP.get(kind, {}))
    result = check_probe(probe, model, context)
    assert result.scalars and all(np.isfinite(v) for v in result.scalars.values())


class _Rogue:
    """Probes that break one promise each."""

    def __init__(self, what):
        self.name, self.needs, self.what = f"rogue-{what}", (), what

    def outputs(self):
        if self.what == "undeclared":
            return Outputs((ScalarKey("b", "b"),))
        if self.what == "unemitted":
            return Outputs((ScalarKey("a", "a"), ScalarKey("c", "c")))
        return Outputs((ScalarKey("a", "a"),))

    def compute(self, model, ctx):
        if self.what == "rng":
            torch.rand(3)
        elif self.what == "numpy_rng":
            np.random.rand()
        elif self.what == "mode":
            model.eval()
        elif self.what == "grad":
            model(torch.rand(2, 6)).sum().backward()
        elif self.what == "params":
            with torch.no_grad():
                next(model.parameters()).add_(1e-6)
        elif self.what == "hook":
            model.register_forward_hook(lambda *a: None)
        elif self.what == "result":
            return {"a": 1.0}
        elif self.what == "nan":
            return ProbeResult(scalars={"a": float("nan")})
        elif self.what == "python_rng":
            import random

            random.random()
        elif self.what == "undeclared_need":
            return ProbeResult(scalars={"a": float(ctx.x_test.sum())})
        elif self.what == "random":
            return ProbeResult(scalars={"a": float(np.random.default_rng().random())})
        return ProbeResult(scalars={"a": 1.0})


@pytest.mark.parametrize(
    "what, message",
    [
        ("rng", r"RNG state \(torch\)"),
        ("numpy_rng", r"RNG state \(numpy\)"),
        ("python_rng", r"RNG state \(python\)"),
        ("mode", "modes"),
        ("grad", r"\.grad of 0\.weight"),
        ("params", "parameter 0.weight"),
        ("hook", "hooks"),
        ("result", "ProbeResult"),
        ("nan", "not finite"),
        ("undeclared", r"undeclared key\(s\) \['a'\]"),
        ("unemitted", r"did not emit: \['c'\]"),
        ("undeclared_need", "NoneType"),
        ("random", "not deterministic"),
    ],
)
def test_conformance_check_catches_each_broken_promise(what, message, model, context):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SplinescopeError, match=message):
        check_probe(_Rogue(what), model, context)
    # the check restores a model whose parameters the probe changed
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_conformance_check_reports_missing_needs(model):
    with pytest.raises(SplinescopeError, match="lacks test"):
        check_probe(
            AccuracyProbe(),
            model,
            ProbeContext(x_train=torch.rand(4, 6), y_train=torch.zeros(4, dtype=torch.long)),
        )


def test_random_points_lie_in_the_bounding_box_and_leave_the_global_rng():
    x = torch.rand(50, 3, 4) * torch.tensor([1.0, 5.0, 0.1, 2.0]) - 1.0
    state = torch.get_rng_state()
    pts = random_points(x, 2000, seed=7)
    assert torch.equal(state, torch.get_rng_state())
    assert pts.shape == (2000, 3, 4)
    lo, hi = x.amin(0), x.amax(0)
    assert bool((pts >= lo).all() and (pts <= hi).all())
    # they fill the box: per-feature extremes come close to the box's edges
    span = hi - lo
    assert bool(((pts.amin(0) - lo) < 0.01 * span + 1e-6).all())
    assert torch.equal(pts, random_points(x, 2000, seed=7))
    assert not torch.equal(pts, random_points(x, 2000, seed=8))


def test_subset_is_the_same_rows_each_time_and_keeps_pairs():
    x = torch.arange(100.0).unsqueeze(1)
    y = torch.arange(100)
    a, ya = subset(x, y, 10, seed=3)
    b, yb = subset(x, y, 10, seed=3)
    assert torch.equal(a, b) and torch.equal(a[:, 0].long(), ya)
    assert len(set(ya.tolist())) == 10
    same, _ = subset(x, y, None, seed=0)
    assert same is x


def test_probe_result_rejects_non_numbers_and_non_arrays():
    with pytest.raises(SplinescopeError, match="scalars"):
        ProbeResult(scalars={"a": "x"})
    with pytest.raises(SplinescopeError, match="arrays"):
        ProbeResult(arrays={"a": [1, 2]})


def test_context_from_data_draws_random_points_in_the_training_box():
    from splinescope.data import load_dataset

    data = load_dataset("moons", n_samples=200, n_test=50)
    ctx = ProbeContext.from_data(data, n_random=300, seed=1)
    assert ctx.x_random.shape == (300, 2)
    assert bool((ctx.x_random >= data.x_train.amin(0)).all())
    assert ctx.domain == data.domain and ctx.n_classes == 2
    assert ctx.missing(("train", "test", "random", "loss_fn")) == ["loss_fn"]
