"""The graph runner's in-place and reused-buffer modes against its plain run."""

from __future__ import annotations

import torch
from torch import nn

from splinescope.nn import describe


class FunctionalNet(nn.Module):
    """Linear -> F.relu -> Linear -> .relu() -> a Linear whose output is also used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        h = torch.relu(self.a(x))
        h = self.b(h).relu()
        g = self.c(h)
        return torch.relu(g) + g  # g has two users: never overwritten


def _seen(runner, x, **kwargs):
    seen: dict[int, torch.Tensor] = {}

    def keep(index, tensor):
        seen[index] = tensor.clone()

    runner.run(x, keep, need_output=False, **kwargs)
    return seen


def test_inplace_and_workspace_give_the_plain_run_values_bit_for_bit():
    torch.manual_seed(0)
    for model in (
        nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)),
        FunctionalNet(),
    ):
        units = describe(model, torch.randn(1, 6))
        workspace: dict = {}
        for rows in (17, 17, 5):  # the buffers are reused, then a smaller batch
            x = torch.randn(rows, 6)
            with torch.no_grad():
                plain = _seen(units.runner, x)
                fast = _seen(units.runner, x, inplace=True, workspace=workspace)
            assert plain.keys() == fast.keys() == set(range(len(units.layers)))
            for index in plain:
                assert torch.equal(plain[index], fast[index])
        assert workspace  # Linear outputs went into buffers


def test_inplace_leaves_the_input_and_the_model_output_alone():
    torch.manual_seed(1)
    model = FunctionalNet()
    units = describe(model, torch.randn(1, 6))
    x = torch.randn(4, 6)
    before = x.clone()
    with torch.no_grad():
        expected = model(x)
        out = units.runner.run(x, lambda i, t: None, inplace=True, workspace={})
    assert torch.equal(x, before)
    assert torch.equal(out, expected)


def test_hooks_switch_inplace_off():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    units = describe(model, torch.randn(1, 6))
    kept = []
    handle = model[0].register_forward_hook(lambda m, i, o: kept.append(o))
    try:
        with torch.no_grad():
            units.runner.run(torch.randn(3, 6), lambda i, t: None, inplace=True, workspace={})
    finally:
        handle.remove()
    assert (kept[0] < 0).any()  # the hooked output was not overwritten by the ReLU
