"""One-to-one matching of model units to recorded neurons on the same images.

:func:`match_neurons` finds, for every neuron, the model unit whose responses across the
stimuli correlate best with the neuron's mean response, with the neuron's split-half noise
ceiling and a permutation p-value for the best match (the maximum over units, so the choice
of the best unit is part of the null). :func:`transfer_decode` trains a classifier on the
matched units and tests it on the neurons (population-code transfer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TopoviewerError
from ..validate import MAX_ARRAY_BYTES

__all__ = ["NeuronMatch", "match_neurons", "neuron_means", "noise_ceiling", "transfer_decode"]


@dataclass
class NeuronMatch:
    """Best unit per neuron (see :func:`match_neurons`)."""

    unit: np.ndarray        # (n_neurons,) index of the best unit
    r: np.ndarray           # (n_neurons,) its Pearson r with the neuron's mean response
    ceiling: np.ndarray     # (n_neurons,) split-half reliability (Spearman–Brown); NaN without repetitions
    p: np.ndarray           # (n_neurons,) permutation p of r (max over units)
    n_permutations: int

    @property
    def r_corrected(self) -> np.ndarray:
        """r / √ceiling: r as a share of the largest r a noiseless unit could reach (NaN where the ceiling ≤ 0)."""
        c = self.ceiling
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, self.r / np.sqrt(np.where(c > 0, c, 1.0)), np.nan)


def _zscore_columns(x):
    z = x - x.mean(axis=0)
    sd = np.linalg.norm(z, axis=0)
    z /= np.where(sd > 0, sd, 1.0)
    return z, sd > 0


def neuron_means(neural) -> np.ndarray:
    """(n_stimuli, n_neurons) responses: `neural` averaged over repetitions when it has them (3-D)."""
    y = np.asarray(neural, np.float64)
    return y.mean(axis=2) if y.ndim == 3 else y


def noise_ceiling(neural) -> np.ndarray:
    """Split-half reliability of each neuron, Spearman–Brown corrected: 2ρ / (1 + ρ).

    ρ is the Pearson correlation across stimuli of the mean over the even-numbered and
    over the odd-numbered repetitions. `neural` is (n_stimuli, n_neurons, n_repetitions ≥ 2).
    """
    neural = np.asarray(neural, np.float64)
    if neural.ndim != 3 or neural.shape[2] < 2:
        raise TopoviewerError(f"a noise ceiling needs (stimuli, neurons, repetitions ≥ 2) responses, got {neural.shape}")
    a, ok_a = _zscore_columns(neural[:, :, 0::2].mean(axis=2))
    b, ok_b = _zscore_columns(neural[:, :, 1::2].mean(axis=2))
    rho = np.where(ok_a & ok_b, (a * b).sum(axis=0), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * rho / (1 + rho)


def match_neurons(unit_responses, neural, n_permutations: int = 1000, seed: int = 0) -> NeuronMatch:
    """Best-matching model unit for each recorded neuron.

    Parameters
    ----------
    unit_responses : (n_stimuli, n_units) array
        Model responses to the stimuli (e.g. every sheet's units side by side).
    neural : (n_stimuli, n_neurons) or (n_stimuli, n_neurons, n_repetitions) array
        Neural responses to the same stimuli in the same order; repetitions are averaged
        for the match and split in halves for the noise ceiling.
    n_permutations : int
        Shuffles of the stimulus order of each neuron; p = (1 + #{max-over-units r ≥ r}) /
        (1 + n_permutations). 0 gives p = NaN.
    seed : int
        Seed of the shuffles.

    Returns
    -------
    NeuronMatch
        Neurons or units with constant responses get r = NaN and unit −1.
    """
    su, sy = np.shape(unit_responses), np.shape(neural)
    if len(su) == 2 and len(sy) >= 2:
        need = 8 * su[1] * (su[0] + sy[1])
        if need > MAX_ARRAY_BYTES:
            raise TopoviewerError(f"matching {su[1]:,} units to {sy[1]:,} neurons needs {need / 1e9:.1f} GB; "
                                  f"at most MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES:,} (match fewer sheets)")
    u = np.asarray(unit_responses, np.float64)
    y = np.asarray(neural, np.float64)
    if u.ndim != 2:
        raise TopoviewerError(f"unit responses must be (stimuli, units), got shape {u.shape}")
    if y.ndim not in (2, 3) or y.shape[0] != u.shape[0]:
        raise TopoviewerError(f"neural responses must be (stimuli, neurons[, repetitions]) with {u.shape[0]} "
                              f"stimuli (one row per image), got shape {y.shape}")
    if u.shape[0] < 3:
        raise TopoviewerError(f"matching needs at least 3 stimuli, got {u.shape[0]}")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(y))):
        raise TopoviewerError("responses contain NaN or infinity")
    ceiling = noise_ceiling(y) if y.ndim == 3 and y.shape[2] >= 2 else np.full(y.shape[1], np.nan)
    mean = neuron_means(y)
    zu, _ = _zscore_columns(u)
    zy, live = _zscore_columns(mean)
    corr = zu.T @ zy                                        # (units, neurons)
    best = corr.argmax(axis=0)
    r = corr[best, np.arange(corr.shape[1])]
    rng = np.random.default_rng(seed)
    exceed = np.zeros(mean.shape[1])
    for _ in range(n_permutations):
        exceed += (zu.T @ zy[rng.permutation(len(zy))]).max(axis=0) >= r - 1e-12
    p = (1 + exceed) / (1 + n_permutations) if n_permutations else np.full(mean.shape[1], np.nan)
    return NeuronMatch(np.where(live, best, -1), np.where(live, r, np.nan), ceiling,
                       np.where(live, p, np.nan), int(n_permutations))


def transfer_decode(unit_responses, neural, labels, match: NeuronMatch) -> float:
    """Accuracy of decoding `labels` from the neurons with a classifier trained on their matched units.

    A linear SVM is fit on the matched units' responses (column j = the unit matched to neuron
    j, standardised over stimuli) and applied to the neurons' mean responses (each neuron
    standardised the same way), so only the population code is transferred.
    """
    from sklearn.svm import LinearSVC

    from .identity import SVM_MAX_ITER

    ok = match.unit >= 0
    if not ok.any():
        raise TopoviewerError("no neuron has a matched unit")
    mean = neuron_means(neural)
    train, _ = _zscore_columns(np.asarray(unit_responses, np.float64)[:, match.unit[ok]])
    test, _ = _zscore_columns(mean[:, ok])
    labels = np.asarray(labels)
    clf = LinearSVC(max_iter=SVM_MAX_ITER).fit(train, labels)
    return float((clf.predict(test) == labels).mean())
