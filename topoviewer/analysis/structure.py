"""How topographic a sheet is (docs/science.md; methods §7): correlation vs distance, map smoothness.

These quantify topography without categories: nearby units of a topographic sheet
respond alike, so their response correlation falls with cortical distance, and any
per-unit map (e.g. face d′) agrees between neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TopoviewerError

__all__ = ["CorrelationCurve", "correlation_by_distance", "neighbour_agreement", "effective_dimensionality",
           "binned_means", "pair_distances"]


def pair_distances(positions):
    """Every unordered pair of points: indices ``i < j`` and their Euclidean distance.

    Parameters
    ----------
    positions : (n, 2) array

    Returns
    -------
    i, j : (n (n − 1) / 2,) int arrays
    d : (n (n − 1) / 2,) float array
    """
    p = np.asarray(positions, dtype=np.float64)
    i, j = np.triu_indices(len(p), k=1)
    return i, j, np.hypot(p[i, 0] - p[j, 0], p[i, 1] - p[j, 1])


def binned_means(d, values, edges):
    """Mean of ``values`` in the bins ``edges[k] ≤ d < edges[k + 1]``: (means (NaN if empty), counts)."""
    which = np.digitize(d, edges) - 1
    ok = (which >= 0) & (which < len(edges) - 1)
    n = np.bincount(which[ok], minlength=len(edges) - 1)
    sums = np.bincount(which[ok], weights=np.asarray(values, np.float64)[ok], minlength=len(edges) - 1)
    return np.divide(sums, n, out=np.full(len(n), np.nan), where=n > 0), n


@dataclass(frozen=True)
class CorrelationCurve:
    """Mean pairwise response correlation in distance bins.

    Attributes
    ----------
    edges_mm : (K + 1,) bin edges.
    distance_mm : (K,) bin centres.
    correlation : (K,) mean Pearson r of the unit pairs in each bin (NaN if none).
    n_pairs : (K,) pairs per bin.
    """

    edges_mm: np.ndarray
    distance_mm: np.ndarray
    correlation: np.ndarray
    n_pairs: np.ndarray

    def at(self, low_mm: float, high_mm: float) -> float:
        """Mean correlation over pairs with ``low ≤ d < high`` (pair-weighted over bins inside)."""
        inside = (self.edges_mm[:-1] >= low_mm - 1e-9) & (self.edges_mm[1:] <= high_mm + 1e-9)
        n = self.n_pairs[inside]
        if n.sum() == 0:
            return float("nan")
        return float(np.nansum(self.correlation[inside] * n) / n.sum())


def correlation_by_distance(responses, positions, bin_mm: float = 0.5, max_distance_mm: float | None = None,
                            max_units: int = 4096, seed: int = 0) -> CorrelationCurve:
    """Mean response correlation of unit pairs as a function of their distance.

    Parameters
    ----------
    responses : (n_images, n_units) array
    positions : (n_units, 2) array, mm
    bin_mm : float
        Width of the distance bins, starting at 0.
    max_distance_mm : float, optional
        Last bin edge (default: the largest pair distance).
    max_units : int
        Larger sheets use a random subset of this many units (never an N×N matrix for big N).
    seed : int
        Seed of that subset.

    Units with constant responses have no correlation and are left out.
    """
    r = np.asarray(responses, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64)
    if r.ndim != 2 or pos.shape != (r.shape[1], 2):
        raise TopoviewerError(f"expected responses (images, N) and positions (N, 2); got {r.shape} and {pos.shape}")
    if r.shape[1] > max_units:
        keep = np.sort(np.random.default_rng(seed).choice(r.shape[1], max_units, replace=False))
        r, pos = r[:, keep], pos[keep]
    sd = r.std(axis=0)
    live = sd > 0
    z = (r[:, live] - r[:, live].mean(axis=0)) / sd[live]
    corr = z.T @ z / len(z)
    i, j, d = pair_distances(pos[live])
    c = corr[i, j]
    top = d.max() if max_distance_mm is None else max_distance_mm
    edges = np.arange(0.0, top + bin_mm, bin_mm)
    mean, n = binned_means(d, c, edges)
    return CorrelationCurve(edges, (edges[:-1] + edges[1:]) / 2, mean, n)


def neighbour_agreement(sheet, values, radius_mm: float = 1.0) -> float:
    """Pearson r between each unit's value and the mean value of its neighbours.

    Neighbours are the other units within ``radius_mm``; units without neighbours are
    left out. About 0 for a randomly scattered map, towards 1 for a smooth one.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (sheet.n_units,):
        raise TopoviewerError(f"expected {sheet.n_units} values, got shape {v.shape}")
    from scipy import sparse

    pairs = sheet.kdtree().query_pairs(radius_mm, output_type="ndarray")
    if len(pairs) == 0:
        return float("nan")
    n = sheet.n_units
    adj = sparse.coo_matrix((np.ones(2 * len(pairs)), (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])),
                            shape=(n, n)).tocsr()
    count = np.asarray(adj.sum(axis=1)).ravel()
    has = count > 0
    mean_nb = (adj @ v)[has] / count[has]
    return float(np.corrcoef(v[has], mean_nb)[0, 1])


def effective_dimensionality(responses) -> float:
    """(Σλ)² / Σλ² of the eigenvalues λ of the response covariance (TopoNets, 003)."""
    r = np.asarray(responses, dtype=np.float64)
    r = r - r.mean(axis=0)
    s = np.linalg.svd(r, compute_uv=False) ** 2
    return float(s.sum() ** 2 / (s**2).sum()) if s.sum() > 0 else 0.0
