"""The relative loss samples neighbourhood centres so that border units are constrained too."""

import numpy as np
import torch

from topoviewer.losses import spatial_loss
from topoviewer.sheet import Sheet


def test_border_units_are_covered_almost_as_often_as_inner_units():
    sheet = Sheet.uniform("s", 1024, (10.0, 10.0), seed=0)
    loss = spatial_loss("relative", sheet, correlation_length=1.5, neighbourhood_units=250)
    p = loss.centre_weights()
    assert p.shape == (1024,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-9
    _, nbrs = loss._tree.query(sheet.positions, k=loss.k)
    x = sheet.positions
    border = np.minimum(x, 10 - x).min(axis=1) < 1.0
    uniform = np.bincount(nbrs.ravel(), minlength=1024).astype(float)
    weighted = np.bincount(nbrs.ravel(), weights=np.repeat(p, loss.k), minlength=1024)
    ratio = lambda c: c[border].mean() / c[~border].mean()  # noqa: E731
    assert ratio(uniform) < 0.7
    assert ratio(weighted) > 0.78
    # corner and border centres are drawn more often than central ones
    assert p[border].mean() > p[~border].mean()


def test_sampled_centres_follow_the_weights():
    sheet = Sheet.uniform("s", 300, (10.0, 10.0), seed=1)
    loss = spatial_loss("relative", sheet, correlation_length=1.0, neighbourhood_units=60)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 300)
    seen = []
    for _ in range(150):
        loss(x, generator=gen)
        seen.append(loss.last_centre)
    border = np.minimum(sheet.positions, 10 - sheet.positions).min(axis=1) < 1.0
    expected = loss.centre_weights()[border].sum()
    assert abs(np.mean(border[seen]) - expected) < 0.12  # 3 binomial σ


def test_centre_weights_equal_the_dense_iteration():
    """The sparse-matrix iteration gives the weights of the plain one: coverage by np.bincount over the
    (N, k) neighbour table, the mean coverage of each neighbourhood by fancy indexing."""
    sheet = Sheet.uniform("s", 700, (10.0, 10.0), seed=2)
    loss = spatial_loss("relative", sheet, neighbourhood_units=90)
    _, nbrs = loss._tree.query(sheet.positions, k=90)
    p = np.full(700, 1.0 / 700)
    for _ in range(50):
        coverage = np.bincount(nbrs.ravel(), weights=np.repeat(p, 90), minlength=700)
        p = p / coverage[nbrs].mean(axis=1)
        p /= p.sum()
    np.testing.assert_allclose(loss.centre_weights(), p, rtol=1e-12, atol=0)
