"""Named runs that show a phenomenon on a laptop CPU in minutes (``splinescope presets``).

Each preset is a :class:`~splinescope.train.TrainConfig` whose probes are written as
``[[probes]]`` tables; nothing in a preset encodes its outcome — the phenomena are detected
afterwards on the stored curves.
"""

from __future__ import annotations

from dataclasses import dataclass

from splinescope.errors import SplinescopeError
from splinescope.train.config import DEFAULT_PROBES, TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named config and one line saying what it shows."""

    name: str
    summary: str
    config: TrainConfig


def _probes(*, lc_radius: float, adv_eps: float, **extra: dict) -> tuple[dict, ...]:
    """The default probes with this preset's LC radius and attack budget; ``extra`` replaces
    (a table) or removes (``None``) probes by name."""
    tables = []
    for table in DEFAULT_PROBES:
        name = table.get("name", table["kind"])
        if table["kind"] == "lc":
            table = {**table, "radius": lc_radius}
        elif table["kind"] == "adversarial":
            table = {**table, "eps": [adv_eps]}
        if name in extra:
            if extra[name] is None:
                continue
            table = {**table, **extra[name]}
        tables.append(table)
    return tuple(tables)


_PRESETS = (
    Preset(
        "grok-digits",
        "grokking on sklearn digits: MLP 64-200-200-10, init x8, AdamW wd 0.01, MSE (Omnigrok's MNIST setup)",
        TrainConfig(
            name="grok-digits",
            description="Omnigrok's MNIST recipe on scikit-learn's digits (1000 train / 797 test)",
            dataset="digits",
            model="mlp",
            width=200,
            depth=2,
            init_scale=8.0,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=0.01,
            loss="mse",
            batch_size=200,
            steps=150_000,
            probes=_probes(lc_radius=0.05, adv_eps=0.05),
        ),
    ),
    Preset(
        "grok-mnist1d",
        "grokking on MNIST-1D: MLP 40-200-200-10, init x8, AdamW wd 0.01, MSE, 1000 train signals",
        TrainConfig(
            name="grok-mnist1d",
            description="the grok-digits recipe on MNIST-1D (1000 of its 4000 training signals)",
            dataset="mnist1d",
            n_train=1000,
            model="mlp",
            width=200,
            depth=2,
            init_scale=8.0,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=0.01,
            loss="mse",
            batch_size=200,
            steps=100_000,
            probes=_probes(lc_radius=0.1, adv_eps=0.1),
        ),
    ),
    Preset(
        "grok-modular",
        "grokking on (a + b) mod 97: MLP on one-hot pairs, 40% of pairs for training, AdamW wd 1",
        TrainConfig(
            name="grok-modular",
            description="modular addition mod 97, one-hot pairs, full-batch AdamW with strong decay",
            dataset="modular",
            data_options={"p": 97, "op": "+", "train_fraction": 0.4},
            model="mlp",
            width=256,
            depth=1,
            init_scale=1.0,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=1.0,
            loss="cross_entropy",
            batch_size=0,
            steps=16_000,
            probes=_probes(lc_radius=0.1, adv_eps=0.1, pgd=None),
        ),
    ),
    Preset(
        "robust-cnn-digits",
        "robustness on digits: small CNN 16-32, init x4, AdamW wd 0.01, MSE; FGSM/PGD l-inf and l2 accuracy",
        TrainConfig(
            name="robust-cnn-digits",
            description="a small CNN on 8x8 digits with a large init: clean vs adversarial accuracy over training",
            dataset="digits",
            model="cnn",
            channels=(16, 32),
            init_scale=4.0,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=0.01,
            loss="mse",
            batch_size=200,
            steps=20_000,
            n_random=200,
            probes=(
                *_probes(
                    lc_radius=0.05,
                    adv_eps=0.05,
                    lc={"n_points": 200},
                    fgsm={"n_points": 200},
                    pgd={"n_points": 200},
                ),
                {
                    "kind": "adversarial",
                    "name": "pgd_l2",
                    "attack": "pgd",
                    "norm": "l2",
                    "eps": [0.5],
                    "splits": ["test", "train"],
                    "n_points": 200,
                },
            ),
        ),
    ),
)


PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name raises with the list of presets."""
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SplinescopeError(
            f"unknown preset {name!r}{hint}; available presets: {', '.join(PRESETS)}"
        )
    return PRESETS[name]


def preset_config(name: str) -> TrainConfig:
    """The config of preset ``name``."""
    return get_preset(name).config
