"""weight_norms() against the norm of each layer's flattened parameters."""

import math

import torch
from torch import nn

from splinescope.nn.weights import weight_norms


def test_weight_norms_equal_the_norm_of_each_layers_flattened_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )
    norms = weight_norms(model)
    layers = [m for m in model if isinstance(m, nn.Linear)]
    assert list(norms.per_module) == ["0", "2", "4"]
    for name, layer in zip(norms.per_module, layers):
        flat = torch.cat([layer.weight.flatten(), layer.bias.flatten()]).detach().double()
        assert math.isclose(
            norms.per_module[name], float(torch.linalg.vector_norm(flat)), rel_tol=1e-12
        )
    everything = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
    assert math.isclose(norms.total, float(everything.norm()), rel_tol=1e-12)


def test_weight_norms_name_root_parameters():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor([3.0, 4.0]))

    norms = weight_norms(Bare())
    assert norms.per_module == {"(root)": 5.0} and norms.total == 5.0
