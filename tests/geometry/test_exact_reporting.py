"""Nothing is dropped silently by the exact engine: what it cannot honour is an error that
names it or a ``skipped`` entry with its reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.exact import regions_in_plane, regions_on_segment
from splinescope.geometry.partition import Partition
from splinescope.geometry.plane import PlanePartition
from splinescope.geometry.segment import SegmentPartition

E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2))

    def forward(self, x):
        h = self.body(x)
        return h, h.relu()


class ConstantBranch(nn.Module):
    """A ReLU applied to a parameter, not to anything that depends on the input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.offset = nn.Parameter(torch.tensor([0.5, -0.5, 1.0]))
        self.act = nn.ReLU()

    def forward(self, x):
        return torch.relu(self.fc(x)) + self.act(self.offset)


def test_extra_outputs_are_listed_as_skipped():
    torch.manual_seed(0)
    part = regions_in_plane(TwoOutputs(), torch.zeros(2), E1, E2, 1.0)
    assert ("output[1:2]", "the model returns 2 values; affine maps use the first") in part.skipped
    seg = regions_on_segment(TwoOutputs(), -torch.ones(2), torch.ones(2))
    assert any(what == "output[1:2]" for what, _ in seg.skipped)


def test_activation_of_a_constant_is_listed_as_skipped():
    torch.manual_seed(0)
    part = regions_in_plane(ConstantBranch(), torch.zeros(2), E1, E2, 1.0)
    assert ("act", "applied to a value that does not depend on the input") in part.skipped
    assert part.layer_names == ("relu",)


def test_whole_region_ties_of_the_outputs_are_listed_for_the_decision_boundary():
    """Two ReLU outputs: on the region where both are dead they tie everywhere."""
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        layer.bias.zero_()
    part = regions_in_plane(nn.Sequential(layer, nn.ReLU()), torch.zeros(2), E1, E2, 1.0)
    dead = int(np.nonzero(~part.bits().any(axis=1))[0][0])
    entries = [why for what, why in part.skipped if what == "decision_boundary"]
    assert len(entries) == 1 and f"[{dead}]" in entries[0] and "outputs 0 and 1" in entries[0]
    single = nn.Sequential(nn.Linear(2, 1, bias=False), nn.ReLU())
    part = regions_in_plane(single, torch.zeros(2), E1, E2, 1.0)
    assert [what for what, _ in part.skipped] == ["decision_boundary"]


def test_a_model_without_partition_layers_has_one_region_with_an_empty_code():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 1.0)
    assert part.n_regions == 1 and part.codes.shape == (1, 0) and part.bits().shape == (1, 0)
    seg = regions_on_segment(model, torch.zeros(2), torch.ones(2))
    assert seg.n_regions == 1 and seg.codes.shape == (1, 0)


@pytest.mark.parametrize("rtol", [0.0, 1e-17, 0.1, float("nan"), "x"])
def test_rtol_out_of_range_is_an_error_naming_it(rtol):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with pytest.raises(SplinescopeError, match="rtol"):
        regions_in_plane(model, torch.zeros(2), E1, E2, 1.0, rtol=rtol)
    with pytest.raises(SplinescopeError, match="rtol"):
        regions_on_segment(model, torch.zeros(2), torch.ones(2), rtol=rtol)


def test_partitions_share_one_frozen_base():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    plane = regions_in_plane(model, torch.zeros(2), E1, E2, 1.0)
    seg = regions_on_segment(model, torch.zeros(2), torch.ones(2))
    for part, cls in ((plane, PlanePartition), (seg, SegmentPartition)):
        assert isinstance(part, Partition) and type(part) is cls
        assert part.n_regions == len(part.codes) == part.bits().shape[0]
        with pytest.raises(AttributeError):
            part.rtol = 1.0
    assert not hasattr(plane, "area_rtol") and not hasattr(seg, "ttol")


def test_segment_pieces_at_the_vertex_tolerance():
    """Two units of one layer crossing 2e-10 apart give their own piece (rtol = 1e-10, the
    vertex tolerance is 1.5e-10 here); crossing exactly together they give one breakpoint."""
    layer = nn.Linear(1, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.copy_(torch.tensor([-0.5, -0.5 - 2e-10, -0.5], dtype=torch.float64))
    part = regions_on_segment(nn.Sequential(layer, nn.ReLU()), torch.zeros(1), torch.ones(1))
    assert part.n_regions == 3
    assert np.diff(part.breakpoints)[0] == pytest.approx(2e-10, rel=1e-5)
