"""Representations: similarity (CKA, SVCCA, PWCCA), neural collapse, intrinsic dimension,
calibration. Pure functions returning frozen results that name the variant they compute::

    cka(x, y, kernel="linear", estimator="biased")      # x [n, d1], y [n, d2]
    gram_cka(feature_gram(x), feature_gram(y))          # the same from kept Grams [n, n]
    minibatch_cka(pairs_of_batches)                     # unbiased HSIC summed over batches
    cka_matrix(model_a, model_b, loader, layers_a, layers_b)
    svcca(x, y, keep=0.99); pwcca(x, y)
    neural_collapse(features, labels, classifier)
    intrinsic_dimension(x, method="twonn" | "mle")
    calibration_error(probs, labels, n_bins=15, norm="l1", binning="width")

Rows are data points everywhere; statistics accumulate in float64 on the inputs' device.
"""

from splinescope.representation.calibration import Calibration, calibration_error
from splinescope.representation.cca import CCAResult, pwcca, svcca
from splinescope.representation.cka import (
    CKAResult,
    MinibatchCKAResult,
    cka,
    feature_gram,
    gram_cka,
    minibatch_cka,
)
from splinescope.representation.collapse import NeuralCollapse, neural_collapse
from splinescope.representation.dimension import IntrinsicDimension, intrinsic_dimension
from splinescope.representation.layer_cka import CKAMatrix, cka_matrix

__all__ = [
    "CCAResult",
    "CKAMatrix",
    "CKAResult",
    "Calibration",
    "IntrinsicDimension",
    "MinibatchCKAResult",
    "NeuralCollapse",
    "calibration_error",
    "cka",
    "cka_matrix",
    "feature_gram",
    "gram_cka",
    "intrinsic_dimension",
    "minibatch_cka",
    "neural_collapse",
    "pwcca",
    "svcca",
]
