"""Activation codes: the on/off pattern of all partition units as a hash of the input's region.

Following "Neural networks behave as hash encoders" (He, Lei, Ji, Tao): the code of an input
is the binary state of every partition-defining unit; *determinism* asks how often two
training samples share a code (they almost never do in trained networks), *categorisation*
asks how well simple classifiers on codes recover the labels.

Bit layout (the same as :class:`splinescope.geometry.plane.PlanePartition` for ReLU-family
units): 1 where the unit's pre-activation is > 0 (a two-hinge neuron gives one bit per
threshold; a smooth unit's sign is used, as :func:`splinescope.nn.record_states` does); a
max-pool window contributes the 16-bit binary expansion of its argmax index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn import describe, record_states
from splinescope.nn.describe import LayerSelection

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
ARGMAX_BITS = 16


@dataclass(frozen=True)
class ActivationCodes:
    """Bit-packed activation codes of N inputs.

    Attributes:
        packed: uint8 ``[N, ceil(n_bits / 8)]`` (``np.packbits`` order, zero-padded).
        n_bits: bits per code.
        layer_names: partition layers in execution order; ``layer_bits``: bits of each.
    """

    packed: np.ndarray
    n_bits: int
    layer_names: tuple[str, ...]
    layer_bits: tuple[int, ...]

    def __len__(self) -> int:
        return self.packed.shape[0]

    def bits(self) -> np.ndarray:
        """bool ``[N, n_bits]``."""
        return np.unpackbits(self.packed, axis=1, count=self.n_bits).astype(bool)


def states_to_bits(states: np.ndarray, kind: str) -> np.ndarray:
    """bool ``[N, bits]`` from one layer's states as :func:`splinescope.nn.record_states` gives."""
    if kind == "argmax":
        index = np.asarray(states, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= 1 << ARGMAX_BITS):
            raise SplinescopeError(
                f"states: max-pool index outside [0, 2**{ARGMAX_BITS}) cannot be encoded"
            )
        shifts = np.arange(ARGMAX_BITS - 1, -1, -1)
        return ((index[:, :, None] >> shifts) & 1).astype(bool).reshape(index.shape[0], -1)
    return np.asarray(states) > 0


def activation_codes(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerSelection = None,
    batch_size: int | None = None,
) -> ActivationCodes:
    """The activation code of each input ``x [N, *input_shape]`` over all partition units
    (or the selected ``layers``, as in :func:`splinescope.nn.describe`: every requested
    name contributes its bits, in execution order, or an error names it).

    The model is measured in eval mode and left as it was.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise SplinescopeError(
            f"x: expected a batch tensor [N, *input_shape], got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    units = describe(model, x[:1], layers, argument="x")
    states = record_states(model, x, layers, batch_size)
    if list(states) != units.names:
        raise SplinescopeError(
            f"layers: states were recorded for {list(states)}, expected {units.names}"
        )
    parts, names, widths = [], [], []
    for layer in units.layers:
        bits = states_to_bits(states[layer.name].cpu().numpy(), layer.kind)
        parts.append(bits)
        names.append(layer.name)
        widths.append(bits.shape[1])
    bits = np.concatenate(parts, axis=1)
    return ActivationCodes(np.packbits(bits, axis=1), bits.shape[1], tuple(names), tuple(widths))


def _packed(codes: ActivationCodes | np.ndarray, argument: str) -> np.ndarray:
    packed = codes.packed if isinstance(codes, ActivationCodes) else np.asarray(codes)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise SplinescopeError(
            f"{argument}: expected ActivationCodes or packed uint8 [N, n_bytes], got "
            f"{packed.dtype} {packed.shape}"
        )
    return packed


def hamming(
    a: ActivationCodes | np.ndarray, b: ActivationCodes | np.ndarray, chunk: int = 256
) -> np.ndarray:
    """int64 ``[Na, Nb]`` Hamming distances between packed codes (popcount of XOR)."""
    pa, pb = _packed(a, "a"), _packed(b, "b")
    if pa.shape[1] != pb.shape[1]:
        raise SplinescopeError(f"b: {pb.shape[1]} bytes per code, a has {pa.shape[1]}")
    out = np.empty((pa.shape[0], pb.shape[0]), dtype=np.int64)
    for start in range(0, pa.shape[0], chunk):
        xor = np.bitwise_xor(pa[start : start + chunk, None, :], pb[None])
        out[start : start + chunk] = _POPCOUNT[xor].sum(axis=2, dtype=np.int64)
    return out


@dataclass(frozen=True)
class CodeDeterminism:
    """How uniquely codes identify samples.

    Attributes:
        n_samples: N; n_distinct: distinct codes (occupied regions).
        redundancy_ratio: ``(N − n_distinct) / N`` (0 when every sample has its own region).
        single_sample_share: share of occupied regions that hold exactly one sample.
    """

    n_samples: int
    n_distinct: int
    redundancy_ratio: float
    single_sample_share: float


def determinism(codes: ActivationCodes | np.ndarray) -> CodeDeterminism:
    """Redundancy ratio and share of singly-occupied regions of a set of codes."""
    packed = _packed(codes, "codes")
    n = packed.shape[0]
    if n == 0:
        raise SplinescopeError("codes: empty")
    _, counts = np.unique(packed, axis=0, return_counts=True)
    return CodeDeterminism(
        n_samples=n,
        n_distinct=len(counts),
        redundancy_ratio=(n - len(counts)) / n,
        single_sample_share=float((counts == 1).mean()),
    )


@dataclass(frozen=True)
class ClassDistances:
    """Mean Hamming distance (bits) over pairs of samples of the same / different classes."""

    within: float
    between: float


def class_distances(codes: ActivationCodes | np.ndarray, labels: np.ndarray) -> ClassDistances:
    """Mean Hamming distance within and between classes, over unordered pairs i < j.

    Exact in O(N · n_bits): per bit, the number of differing pairs in a group of n samples
    with c ones is c·(n − c).
    """
    packed = _packed(codes, "codes")
    y = np.asarray(labels)
    if y.shape != (packed.shape[0],):
        raise SplinescopeError(f"labels: shape {y.shape}, expected ({packed.shape[0]},)")
    bits = np.unpackbits(packed, axis=1).astype(np.int64)
    n = len(y)
    ones = bits.sum(axis=0)
    total = float((ones * (n - ones)).sum())
    within_sum, within_pairs = 0.0, 0
    for label in np.unique(y):
        group = bits[y == label]
        m = len(group)
        c = group.sum(axis=0)
        within_sum += float((c * (m - c)).sum())
        within_pairs += m * (m - 1) // 2
    between_pairs = n * (n - 1) // 2 - within_pairs
    return ClassDistances(
        within=within_sum / within_pairs if within_pairs else float("nan"),
        between=(total - within_sum) / between_pairs if between_pairs else float("nan"),
    )


@dataclass(frozen=True)
class CodeCategorisation:
    """Accuracy of simple classifiers on codes (train and test).

    Attributes:
        knn_train, knn_test: k-nearest-neighbours with the Hamming metric; train accuracy is
            leave-one-out (a sample is never its own neighbour).
        logreg_train, logreg_test: logistic regression on the bits.
        kmeans_train, kmeans_test: K-means (K = number of classes) fitted on train codes,
            clusters matched to labels by the Hungarian algorithm on the train confusion
            matrix; test codes are assigned to the fitted centroids and use the same matching.
            With fewer distinct train codes than classes (a tiny network), K is the number of
            distinct codes: each code is then its own cluster, which is also the optimum with
            K = classes (the extra clusters could only stay empty or duplicate a centroid).
    """

    knn_train: float
    knn_test: float
    logreg_train: float
    logreg_test: float
    kmeans_train: float
    kmeans_test: float


def kmeans_matched_accuracy(
    clusters: np.ndarray, labels: np.ndarray, n_clusters: int, n_classes: int
) -> tuple[float, np.ndarray]:
    """Accuracy of the best one-to-one cluster → label matching, and the matching
    (``mapping[cluster] = label``; −1 for clusters left unmatched)."""
    from scipy.optimize import linear_sum_assignment

    confusion = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(confusion, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-confusion)
    mapping = -np.ones(n_clusters, dtype=np.int64)
    mapping[rows] = cols
    return float(confusion[rows, cols].sum() / len(labels)), mapping


def categorisation(
    train: ActivationCodes | np.ndarray,
    y_train: np.ndarray,
    test: ActivationCodes | np.ndarray,
    y_test: np.ndarray,
    *,
    n_neighbors: int = 1,
    seed: int = 0,
) -> CodeCategorisation:
    """KNN (Hamming), logistic regression and K-means (Hungarian-matched) accuracies on codes.

    scikit-learn's estimators draw from Python's global ``random`` module; every global RNG
    is restored afterwards (:func:`splinescope.nn.guard.preserved_rng`).
    """
    from splinescope.nn.guard import preserved_rng

    with preserved_rng():
        return _categorisation(train, y_train, test, y_test, n_neighbors, seed)


def _categorisation(
    train, y_train, test, y_test, n_neighbors: int, seed: int
) -> CodeCategorisation:
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    ptr, pte = _packed(train, "train"), _packed(test, "test")
    n_bits = train.n_bits if isinstance(train, ActivationCodes) else ptr.shape[1] * 8
    xtr = np.unpackbits(ptr, axis=1, count=n_bits).astype(bool)
    xte = np.unpackbits(pte, axis=1, count=n_bits).astype(bool)
    ytr, yte = np.asarray(y_train).astype(np.int64), np.asarray(y_test).astype(np.int64)
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise SplinescopeError("y_train, y_test: lengths differ from the number of codes")
    if len(ytr) <= n_neighbors:
        raise SplinescopeError(f"n_neighbors: {n_neighbors} needs more than {len(ytr)} samples")
    classes = np.unique(ytr)
    knn = KNeighborsClassifier(n_neighbors=n_neighbors, metric="hamming", algorithm="brute")
    knn.fit(xtr, ytr)
    knn_test = float((knn.predict(xte) == yte).mean())
    # Leave-one-out on train: ask for one more neighbour and drop the sample itself.
    _, neighbours = knn.kneighbors(xtr, n_neighbors=n_neighbors + 1)
    own = neighbours == np.arange(len(xtr))[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), n_neighbors)
    keep = np.ones_like(neighbours, dtype=bool)
    keep[np.arange(len(xtr)), drop] = False
    votes = ytr[neighbours[keep].reshape(len(xtr), n_neighbors)]
    loo = np.array([np.bincount(v, minlength=int(ytr.max()) + 1).argmax() for v in votes])
    knn_train = float((loo == ytr).mean())
    if len(classes) > 1:
        logreg = LogisticRegression(max_iter=2000)
        logreg.fit(xtr.astype(np.float64), ytr)
        logreg_train = float(logreg.score(xtr.astype(np.float64), ytr))
        logreg_test = float(logreg.score(xte.astype(np.float64), yte))
    else:
        logreg_train = float((ytr == classes[0]).mean())
        logreg_test = float((yte == classes[0]).mean())
    n_classes = int(max(ytr.max(), yte.max())) + 1
    k = min(len(classes), len(np.unique(ptr, axis=0)))
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(xtr.astype(np.float64))
    kmeans_train, mapping = kmeans_matched_accuracy(kmeans.labels_, ytr, k, n_classes)
    predicted = mapping[kmeans.predict(xte.astype(np.float64))]
    kmeans_test = float((predicted == yte).mean())
    return CodeCategorisation(
        knn_train, knn_test, logreg_train, logreg_test, kmeans_train, kmeans_test
    )


def code_metrics(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    *,
    layers: str | list[str] | None = None,
    categorise: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Scalars for a training monitor: determinism of train codes, class distances, and (with
    test data and ``categorise``) the classifiers' accuracies.

    Keys: ``n_bits``, ``redundancy_ratio``, ``single_sample_share``, ``n_distinct``,
    ``within_hamming``, ``between_hamming``, and ``knn_train``/``knn_test``,
    ``logreg_train``/``logreg_test``, ``kmeans_train``/``kmeans_test``.
    """
    train = activation_codes(model, x_train, layers)
    ytr = y_train.detach().cpu().numpy()
    det = determinism(train)
    dist = class_distances(train, ytr)
    out = {
        "n_bits": float(train.n_bits),
        "n_distinct": float(det.n_distinct),
        "redundancy_ratio": det.redundancy_ratio,
        "single_sample_share": det.single_sample_share,
        "within_hamming": dist.within,
        "between_hamming": dist.between,
    }
    if categorise and x_test is not None and y_test is not None:
        test = activation_codes(model, x_test, layers)
        cat = categorisation(train, ytr, test, y_test.detach().cpu().numpy(), seed=seed)
        out.update({name: getattr(cat, name) for name in cat.__dataclass_fields__})
    return out
