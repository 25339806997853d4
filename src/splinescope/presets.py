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


#: Omnigrok's recipe (Liu et al., ICLR 2023), shared by the MLP presets: AdamW lr 1e-3 with
#: weight decay 0.01, MSE on one-hot targets, mini-batches of 200.
OMNIGROK = {
    "model": "mlp",
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 0.01,
    "loss": "mse",
    "batch_size": 200,
}


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


#: LC the published way: on the output of every ``nn.Linear``, logits included (FINDINGS.md).
PUBLISHED_LC = {"units": "linear_outputs"}
#: r = 0.05 on MNIST (mean norm ≈ 9.25) is ≈ 0.5 % of the data's scale; digits' norm is ≈ 0.42x
#: MNIST's (≈ 3.9), so the same relative neighbourhood there is r ≈ 0.02.
DIGITS_LC_RADIUS = 0.02
#: PGD budgets of the paper's MNIST figure, in pixel units of [0, 1].
PAPER_EPS = tuple(e / 255 for e in (16, 24.5, 33, 41.5, 50))


def _paper_probes(lc_schedule: str = "log:60", migration_schedule: str = "log:12") -> tuple:
    """Probes of the paper's MNIST figures: LC at r in {0.05, 0.5, 5} on 1,000 train / test /
    random points on every Linear output (three instances), PGD l_inf (10 steps of 4/255 from a
    random start, cross-entropy, clipped to [0, 1]) at the five budgets on 500 test points,
    accuracy, LC at decision-boundary points, region migration in one plane (its own, sparser
    schedule: an exact partition of a 784-D net's plane costs ≈ 5-10 s), weight norms."""
    lc = [
        {
            "kind": "lc",
            "name": name,
            "radius": radius,
            "n_points": 1000,
            "units": "linear_outputs",
            "per_class": False,
            "store_counts": False,
            "schedule": lc_schedule,
        }
        for name, radius in (("lc_r005", 0.05), ("lc_r05", 0.5), ("lc_r5", 5.0))
    ]
    return (
        {"kind": "accuracy", "schedule": lc_schedule},
        *lc,
        {
            "kind": "adversarial",
            "name": "pgd",
            "attack": "pgd",
            "norm": "linf",
            "eps": list(PAPER_EPS),
            "steps": 10,
            "step_size": 4 / 255,
            "random_start": True,
            "splits": ["test"],
            "n_points": 500,
            "schedule": lc_schedule,
        },
        {
            "kind": "boundary_lc",
            "radius": 0.05,
            "n_points": 1000,
            "units": "linear_outputs",
            "schedule": lc_schedule,
        },
        {"kind": "migration", "resolution": 128, "schedule": migration_schedule},
        {"kind": "weights", "schedule": lc_schedule},
    )


def _paper_mnist(name: str, description: str, *, init_scale: float, steps: int) -> TrainConfig:
    """The grok-adversarial MNIST setup: 1,000 train points, MLP with four nn.Linear
    (784-200-200-200-10; ``depth`` counts the hidden layers), ReLU, AdamW lr 1e-3 wd 0.01, MSE
    on one-hot targets, batch 200, 1,000 uniform random points.

    ReLU, not the authors' config default GeLU: LC counts sign changes, which are the region
    boundaries only for a piecewise-linear net, and the exact partitions behind the migration
    probe exist only for one (``--set activation=gelu --set probes.migration=off`` runs GeLU).
    """
    return TrainConfig(
        name=name,
        description=description,
        **OMNIGROK,
        dataset="mnist",
        n_train=1000,
        width=200,
        depth=3,
        activation="relu",
        init_scale=init_scale,
        steps=steps,
        n_random=1000,
        probes=_paper_probes(),
    )


_PRESETS = (
    Preset(
        "grok-digits",
        "grokking on sklearn digits: MLP 64-200-200-10, init x8, AdamW wd 0.01, MSE (Omnigrok's MNIST setup)",
        TrainConfig(
            name="grok-digits",
            description="Omnigrok's MNIST recipe on scikit-learn's digits (1000 train / 797 test)",
            **OMNIGROK,
            dataset="digits",
            width=200,
            depth=2,
            init_scale=8.0,
            steps=150_000,
            probes=_probes(lc_radius=DIGITS_LC_RADIUS, adv_eps=0.05, lc=PUBLISHED_LC),
        ),
    ),
    Preset(
        "lc-phases-mnist",
        "the three phases of local complexity and delayed robustness on MNIST: MLP 784-200x3-10, "
        "default init, AdamW wd 0.01, MSE (Humayun et al.'s MNIST figure)",
        _paper_mnist(
            "lc-phases-mnist",
            "Humayun et al.'s MNIST setup at the default initialisation: LC near the data falls, "
            "rises, and falls again; PGD accuracy recovers late (delayed robustness)",
            init_scale=1.0,
            steps=100_000,
        ),
    ),
    Preset(
        "grok-mnist",
        "grokking on MNIST with LC and region migration: MLP 784-200x3-10, init x8, AdamW wd 0.01, "
        "MSE (Humayun et al.'s Omnigrok-style MNIST figure)",
        _paper_mnist(
            "grok-mnist",
            "Humayun et al.'s MNIST setup at init x8 (Omnigrok): test accuracy and test LC rise "
            "long after the training set is fitted; depth and activation settable",
            init_scale=8.0,
            steps=100_000,
        ),
    ),
    Preset(
        "grok-mnist1d",
        "grokking on MNIST-1D: MLP 40-200-200-10, init x8, AdamW wd 0.01, MSE, 1000 train signals",
        TrainConfig(
            name="grok-mnist1d",
            description="the grok-digits recipe on MNIST-1D (1000 of its 4000 training signals)",
            **OMNIGROK,
            dataset="mnist1d",
            n_train=1000,
            width=200,
            depth=2,
            init_scale=8.0,
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
            **{**OMNIGROK, "model": "cnn"},
            channels=(16, 32),
            init_scale=4.0,
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
