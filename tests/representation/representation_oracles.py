"""Independent oracles written from the papers' formulas (numpy, float64, no shortcuts)."""

from __future__ import annotations

import itertools

import numpy as np


def linear_gram(x: np.ndarray) -> np.ndarray:
    return x @ x.T


def rbf_gram(x: np.ndarray, sigma: float) -> np.ndarray:
    n = x.shape[0]
    k = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            k[i, j] = np.exp(-np.sum((x[i] - x[j]) ** 2) / (2 * sigma**2))
    return k


def hsic_biased(k: np.ndarray, l_: np.ndarray) -> float:
    """Gretton et al. 2005: tr(K H L H) / (n - 1)^2."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l_ @ h)) / (n - 1) ** 2


def hsic_unbiased(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. 2012, eq. (5), term by term with explicit loops over i != j."""
    n = k.shape[0]
    kt, lt = k.copy(), l_.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    trace = sum(kt[i, j] * lt[j, i] for i in range(n) for j in range(n))
    ones = np.ones(n)
    term2 = (ones @ kt @ ones) * (ones @ lt @ ones) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (ones @ kt @ lt @ ones)
    return float(trace + term2 - term3) / (n * (n - 3))


def hsic_u_statistic(k: np.ndarray, l_: np.ndarray) -> float:
    """The U-statistic over all ordered 4-tuples of distinct points (tiny n only)."""
    n = k.shape[0]
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l_[i, j] + k[i, j] * l_[q, r] - 2 * k[i, j] * l_[i, q]
        count += 1
    return total / count


def cka_from(hsic, k: np.ndarray, l_: np.ndarray) -> float:
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def cca_naive(x: np.ndarray, y: np.ndarray):
    """Textbook CCA: SVD of Sxx^-1/2 Sxy Syy^-1/2; returns (rho, unit canonical variates of x)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc

    def inv_sqrt(s):
        w, v = np.linalg.eigh(s)
        return v @ np.diag(w**-0.5) @ v.T

    a, b = inv_sqrt(sxx), inv_sqrt(syy)
    u, rho, _ = np.linalg.svd(a @ sxy @ b)
    m = min(x.shape[1], y.shape[1])
    h = xc @ (a @ u[:, :m])
    h /= np.linalg.norm(h, axis=0)
    return rho[:m], h, xc
