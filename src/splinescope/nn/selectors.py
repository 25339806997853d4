"""Named unit selections that depend on the model, resolved to module names for ``describe``.

``"activations"`` is every partition unit (``layers=None``: the inputs of ReLU-family and
smooth activations, max-pool argmaxes). ``"linear_outputs"`` is the output of every
``nn.Linear`` module, the logits included — the layers the published local-complexity code
hooks on an MLP (Humayun et al., grok-adversarial ``train_mlp_mnist.py``). With ReLU
activations the two differ exactly by the logit layer: ``relu`` reads its input, which is the
preceding Linear's output.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from splinescope.errors import SplinescopeError

Units = Literal["activations", "linear_outputs"]
UNITS: tuple[str, ...] = ("activations", "linear_outputs")


def linear_output_names(model: nn.Module) -> list[str]:
    """Names of every ``nn.Linear`` module of ``model`` (definition order; ``describe`` puts
    them in execution order and reads every call's output).

    Raises:
        SplinescopeError: the model has no ``nn.Linear`` module.
    """
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and name]
    if not names:
        kinds = sorted({type(m).__name__ for m in model.modules()})
        raise SplinescopeError(
            f"units: 'linear_outputs' needs nn.Linear modules; model {type(model).__name__} "
            f"has none (its module types: {kinds})"
        )
    return names


def resolve_units(
    model: nn.Module, units: str, layers: tuple[str, ...] | list[str] | None
) -> list[str] | None:
    """The ``layers`` selection for ``describe``: ``layers`` as given for ``"activations"``
    (``None``: every partition unit), the Linear module names for ``"linear_outputs"``.

    Raises:
        SplinescopeError: an unknown ``units``, or ``layers`` given with ``"linear_outputs"``.
    """
    if units not in UNITS:
        raise SplinescopeError(f"units: expected one of {UNITS}, got {units!r}")
    if units == "activations":
        return None if layers is None else list(layers)
    if layers is not None:
        raise SplinescopeError(
            f"units: 'linear_outputs' selects its layers itself; leave layers unset (got "
            f"{list(layers)!r})"
        )
    return linear_output_names(model)
