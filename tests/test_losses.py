"""Spatial losses (docs/science.md; methods §2) checked against independent hand computations and the
peer implementation of TopoLoss (the ``topoloss`` 0.0.2 package)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.stats import pearsonr
from topoloss import LaplacianPyramid, TopoLoss

from topoviewer import losses
from topoviewer.errors import TopoviewerError
from topoviewer.losses import (
    LOSS_NAMES,
    absolute_loss,
    pearson_matrix,
    relative_loss,
    spatial_loss,
    target_correlation,
    topoloss,
)
from topoviewer.sheet import Sheet, cortical_sheet_shape


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- target_correlation
@pytest.mark.parametrize(
    "d, lam, expected",
    [(0.0, 1.0, 1.0), (1.0, 1.0, 0.5), (3.0, 1.0, 0.25), (2.0, 2.0, 0.5), (1.0, 0.5, 1.0 / 3.0), (9.0, 3.0, 0.25)],
)
def test_target_correlation_by_hand(d, lam, expected):
    assert target_correlation(d, lam) == pytest.approx(expected, abs=1e-12)


def test_target_correlation_numpy_and_torch():
    d = np.array([0.0, 1.0, 4.0])
    out = target_correlation(d)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [1.0, 0.5, 0.2])
    t = target_correlation(torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64), 2.0)
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), [1.0, 2.0 / 3.0, 1.0 / 3.0])


@pytest.mark.parametrize("lam", [0.0, -1.0, float("nan")])
def test_target_correlation_rejects_bad_length(lam):
    with pytest.raises(TopoviewerError, match="correlation length"):
        target_correlation(1.0, lam)


# ---------------------------------------------------------------------------- pearson_matrix
def test_pearson_matrix_matches_numpy_corrcoef():
    x = _rng(1).normal(size=(12, 7))
    c = pearson_matrix(torch.from_numpy(x))
    np.testing.assert_allclose(c.numpy(), np.corrcoef(x, rowvar=False), atol=1e-12)


def test_pearson_matrix_flattens_trailing_dims():
    x = _rng(2).normal(size=(9, 2, 3))
    c = pearson_matrix(torch.from_numpy(x))
    np.testing.assert_allclose(c.numpy(), np.corrcoef(x.reshape(9, 6), rowvar=False), atol=1e-12)


def test_pearson_matrix_constant_unit_is_zero_not_nan():
    x = _rng(3).normal(size=(10, 4))
    x[:, 2] = 0.37  # constant unit
    t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    c = pearson_matrix(t)
    assert torch.isfinite(c).all()
    assert torch.all(c[2] == 0) and torch.all(c[:, 2] == 0)
    ref = np.corrcoef(x[:, [0, 1, 3]], rowvar=False)
    np.testing.assert_allclose(c.detach().numpy()[np.ix_([0, 1, 3], [0, 1, 3])], ref, atol=1e-5)
    c.sum().backward()
    assert torch.isfinite(t.grad).all()
    # a single image: every unit is constant
    assert torch.all(pearson_matrix(torch.randn(1, 5)) == 0)


def test_pearson_matrix_half_precision_is_computed_in_float32():
    x = torch.randn(16, 6)
    c = pearson_matrix(x.half())
    assert c.dtype == torch.float32
    np.testing.assert_allclose(c.numpy(), np.corrcoef(x.half().float().numpy(), rowvar=False), atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: still float32 correlations
        c_auto = pearson_matrix(x)
    assert c_auto.dtype == torch.float32
    np.testing.assert_allclose(c_auto.numpy(), np.corrcoef(x.numpy(), rowvar=False), atol=1e-5)


# ---------------------------------------------------------------------------- absolute loss
def _hand_absolute(x, pos, lam):
    n = x.shape[1]
    c = np.corrcoef(x, rowvar=False)
    total, pairs = 0.0, 0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = math.hypot(pos[i, 0] - pos[j, 0], pos[i, 1] - pos[j, 1])
            total += abs(c[i, j] - 1.0 / (d / lam + 1.0))
            pairs += 1
    return total / pairs


@pytest.mark.parametrize("lam", [1.0, 2.5])
def test_absolute_loss_matches_double_loop(lam):
    rng = _rng(4)
    x = rng.normal(size=(8, 5))
    pos = rng.uniform(0, 4, size=(5, 2))
    got = absolute_loss(torch.from_numpy(x), pos, correlation_length=lam)
    assert float(got) == pytest.approx(_hand_absolute(x, pos, lam), abs=1e-12)
    # the precomputed-target path gives the same value
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    got_t = absolute_loss(torch.from_numpy(x), None, target=torch.from_numpy(1.0 / (d / lam + 1.0)))
    assert float(got_t) == pytest.approx(float(got), abs=1e-12)


def test_absolute_spatial_loss_dense_equals_function():
    sheet = Sheet.uniform("s", 40, seed=5)
    x = torch.randn(16, 40, dtype=torch.float64)
    loss = spatial_loss("absolute", sheet, correlation_length=1.5)
    assert (loss.name, loss.needs) == ("absolute", "responses")
    assert float(loss(x)) == pytest.approx(float(absolute_loss(x, sheet.positions, correlation_length=1.5)), abs=1e-12)
    assert loss.last_units == 40
    # float32 responses: the cached target follows the responses' dtype
    assert float(loss(x.float())) == pytest.approx(float(loss(x)), abs=1e-5)


def test_absolute_sampled_bounds_matrix_and_is_seeded(monkeypatch):
    sheet = Sheet.uniform("s", 300, seed=6)
    x = torch.randn(16, 300, dtype=torch.float64)
    loss = spatial_loss("absolute", sheet, max_units=50)
    shapes = []
    real = losses.pearson_matrix
    monkeypatch.setattr(losses, "pearson_matrix", lambda r: shapes.append(tuple(r.shape)) or real(r))
    a = loss(x, torch.Generator().manual_seed(1))
    b = loss(x, torch.Generator().manual_seed(1))
    c = loss(x, torch.Generator().manual_seed(2))
    assert shapes == [(16, 50)] * 3
    assert loss.last_units == 50
    assert float(a) == float(b) != float(c)


# ---------------------------------------------------------------------------- relative loss
def _hand_relative(x, pos, lam):
    n = x.shape[1]
    c = np.corrcoef(x, rowvar=False)
    d = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
    t = 1.0 / (d / lam + 1.0)
    rows, cols = np.tril_indices(n, k=-1)
    return (1.0 - pearsonr(c[rows, cols], t[rows, cols])[0]) / 2.0


@pytest.mark.parametrize("lam", [1.0, 0.4])
def test_relative_loss_matches_scipy_pearsonr(lam):
    rng = _rng(7)
    x = rng.normal(size=(10, 9))
    pos = rng.uniform(0, 3, size=(9, 2))
    got = relative_loss(torch.from_numpy(x), pos, correlation_length=lam)
    assert float(got) == pytest.approx(_hand_relative(x, pos, lam), abs=1e-12)
    assert 0.0 <= float(got) <= 1.0


def test_relative_loss_perfect_map_is_zero():
    """Responses whose correlations are an increasing affine map of the target give r = 1."""
    pos = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    t = 1.0 / (np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 1.0)
    # sample exactly from a covariance equal to the target (it is positive definite here)
    z = _rng(8).normal(size=(4000, 3))
    z = (z - z.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False, bias=True))).T
    x = z @ np.linalg.cholesky(t).T
    assert float(relative_loss(torch.from_numpy(x), pos)) == pytest.approx(0.0, abs=1e-10)


def test_relative_spatial_loss_whole_sheet_equals_function():
    sheet = Sheet.uniform("s", 30, seed=9)
    x = torch.randn(12, 30, dtype=torch.float64)
    loss = spatial_loss("relative", sheet, neighbourhood_units=500)
    assert (loss.name, loss.needs) == ("relative", "responses")
    assert float(loss(x)) == pytest.approx(float(relative_loss(x, sheet.positions)), abs=1e-12)
    assert loss.last_units == 30


def test_relative_neighbourhood_is_nearest_units_of_a_centre():
    sheet = Sheet.uniform("s", 60, seed=10)
    x = torch.randn(12, 60, dtype=torch.float64)
    loss = spatial_loss("relative", sheet, neighbourhood_units=20)
    pos = sheet.positions
    for centre in (0, 17, 59):
        nb = loss.neighbourhood(centre)
        d = np.linalg.norm(pos - pos[centre], axis=1)
        assert set(nb.tolist()) == set(np.argsort(d)[:20].tolist())
    # every call equals the full relative loss on the neighbourhood of some centre unit
    candidates = [float(relative_loss(x[:, loss.neighbourhood(c)], pos[loss.neighbourhood(c)])) for c in range(60)]
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        value = float(loss(x, g))
        assert loss.last_units == 20
        assert min(abs(value - c) for c in candidates) < 1e-12


def test_sampled_relative_loss_and_gradient_equal_an_independent_computation():
    """A conv sheet's loss (TDANN retinotopic layout, 40-unit neighbourhoods): each call's value is the
    relative loss of the k units nearest its centre (NumPy corrcoef + scipy pearsonr on the lower
    triangles), and its gradient that of the same loss written with the triangles gathered by (row, col)."""
    from topoviewer.positions import retinotopic_positions

    pos = retinotopic_positions((8, 6, 6), 10.0, seed=3)
    loss = spatial_loss("relative", Sheet("conv", pos, (10.0, 10.0)), correlation_length=2.0, neighbourhood_units=40)
    x = torch.from_numpy(_rng(13).normal(size=(10, len(pos)))).requires_grad_(True)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        value = loss(x, g)
        (grad,) = torch.autograd.grad(value, x)
        nb = np.argsort(np.linalg.norm(pos - pos[loss.last_centre], axis=1), kind="stable")[:40]
        assert float(value) == pytest.approx(_hand_relative(x.detach().numpy()[:, nb], pos[nb], 2.0), abs=1e-12)
        xs = x[:, torch.from_numpy(nb)]
        rows, cols = np.tril_indices(40, k=-1)
        c = torch.corrcoef(xs.T)[rows, cols]
        d = torch.from_numpy(np.linalg.norm(pos[nb][rows] - pos[nb][cols], axis=1))
        t = 1.0 / (d / 2.0 + 1.0)
        r = ((c - c.mean()) * (t - t.mean())).sum() / ((c - c.mean()).norm() * (t - t.mean()).norm())
        (expected,) = torch.autograd.grad((1.0 - r) / 2.0, x)
        torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)
        assert (grad.abs().sum(0) > 0).sum() == 40  # only the neighbourhood's units get a gradient


@pytest.mark.parametrize("name, units", [("absolute", 30), ("relative", 25)])
def test_select_then_evaluate_over_concatenated_batches_is_the_call(name, units):
    """What the data-parallel engine does: every process selects the step's units from its own images
    (the same draw: the same generator state), the selections are concatenated, then evaluated."""
    sheet = Sheet.uniform("s", 200, seed=4)
    loss = spatial_loss(name, sheet, max_units=units, neighbourhood_units=units)
    x = torch.randn(12, 200, dtype=torch.float64)
    whole = loss(x, torch.Generator().manual_seed(7))
    parts = [loss.select(part, torch.Generator().manual_seed(7)) for part in (x[:5], x[5:])]
    assert torch.equal(parts[0][1], parts[1][1]) and parts[0][1].shape == (units,)
    assert parts[0][0].shape == (5, units)
    assert float(loss.evaluate(torch.cat([p[0] for p in parts]), parts[0][1])) == pytest.approx(float(whole), abs=1e-14)
    half, idx = loss.select(x.to(torch.bfloat16), torch.Generator().manual_seed(7))
    assert half.dtype == torch.float32 and half.shape == (12, units)  # upcast after the selection


# ---------------------------------------------------------------------------- large sheets
@pytest.mark.parametrize("name", ["absolute", "relative"])
def test_large_sheet_never_builds_n_by_n(name, monkeypatch):
    n = 20_000
    sheet = Sheet.uniform("big", n, seed=11)
    loss = spatial_loss(name, sheet)  # defaults: max_units 4096, neighbourhood 500
    shapes = []
    real_pearson, real_target = losses.pearson_matrix, losses._target_matrix
    monkeypatch.setattr(losses, "pearson_matrix", lambda r: shapes.append(r.shape[1]) or real_pearson(r))
    monkeypatch.setattr(losses, "_target_matrix", lambda p, lam: shapes.append(p.shape[0]) or real_target(p, lam))
    x = torch.randn(32, n, requires_grad=True)
    value = loss(x, torch.Generator().manual_seed(0))
    bound = 4096 if name == "absolute" else 500
    assert value.ndim == 0 and torch.isfinite(value)
    assert loss.last_units == bound
    assert shapes and max(shapes) <= bound
    value.backward()
    assert torch.isfinite(x.grad).all()
    touched = (x.grad.abs().sum(0) > 0).sum().item()
    assert 0 < touched <= bound


def test_responses_of_wrong_size_are_rejected():
    loss = spatial_loss("absolute", Sheet.uniform("s", 10))
    with pytest.raises(TopoviewerError, match="10 units"):
        loss(torch.randn(4, 11))
    # (B, C, H, W) activations are flattened in C order
    assert torch.isfinite(loss(torch.randn(4, 10, 1, 1)))


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ["absolute", "relative"])
def test_gradients_finite_and_adam_lowers_loss(name):
    torch.manual_seed(0)
    sheet = Sheet.uniform("s", 40, seed=12)
    loss = spatial_loss(name, sheet)
    x = torch.randn(24, 40, requires_grad=True)
    x.data[:, 3] = 1.0  # one constant unit must not poison the gradient
    opt = torch.optim.Adam([x], lr=0.05)
    first = None
    for _ in range(30):
        opt.zero_grad()
        value = loss(x)
        value.backward()
        assert torch.isfinite(x.grad).all()
        first = value.item() if first is None else first
        opt.step()
    assert loss(x).item() < first - 0.02


# ---------------------------------------------------------------------------- TopoLoss
def _sheet_weight(h, w, fn):
    """Weight (h·w, 2) whose unit at (r, c) has the feature vector fn(r, c)."""
    return torch.tensor([fn(i // w, i % w) for i in range(h * w)], dtype=torch.float64)


def test_topoloss_smooth_sheet_is_zero_and_checkerboard_is_large():
    h, w = 12, 18
    constant = _sheet_weight(h, w, lambda r, c: (0.3, -1.2))
    assert float(topoloss(constant, (h, w))) == pytest.approx(0.0, abs=1e-12)
    ramp = _sheet_weight(h, w, lambda r, c: (math.cos(c * math.pi / (2 * w)), math.sin(c * math.pi / (2 * w))))
    checker = _sheet_weight(h, w, lambda r, c: (1.0, 0.0) if (r + c) % 2 == 0 else (-1.0, 0.0))
    smooth, rough = float(topoloss(ramp, (h, w))), float(topoloss(checker, (h, w)))
    assert smooth < 0.01
    assert rough > 0.5 > smooth


def _peer(model, layers, factor_h, factor_w):
    return TopoLoss(
        losses=[
            LaplacianPyramid.from_layer(model=model, layer=layer, factor_h=factor_h, factor_w=factor_w)
            for layer in layers
        ]
    )


@pytest.mark.parametrize("factor", [3.0, (2.0, 4.0), 1.5])
def test_topoloss_parity_with_topoloss_package(factor):
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {
            "fc64": nn.Linear(20, 64),  # 8 × 8
            "fc128": nn.Linear(33, 128),  # 8 × 16
            "fc30": nn.Linear(7, 30),  # 5 × 6
            "conv512": nn.Conv2d(3, 512, 3),  # 16 × 32
            "conv96": nn.Conv2d(5, 96, (3, 2)),  # 8 × 12
            "conv200": nn.Conv2d(6, 200, 1),  # 10 × 20
        }
    )
    fh, fw = factor if isinstance(factor, tuple) else (factor, factor)
    peer = _peer(model, list(model.values()), fh, fw)
    theirs = peer.compute(model=model, reduce_mean=False)
    ours = {}
    for name, layer in model.items():
        grid = cortical_sheet_shape(layer.weight.shape[0])
        ours[name] = topoloss(layer.weight, grid, factor)
        via_sheet = spatial_loss("topoloss", Sheet.channel_grid(name, layer.weight.shape[0]), factor=factor)
        assert via_sheet.needs == "weights"
        assert via_sheet(layer.weight).item() == ours[name].item()
        assert abs(ours[name].item() - theirs[name].item()) < 1e-6
    # the package's total is the mean over layers
    mean_ours = sum(ours.values()) / len(ours)
    assert abs(mean_ours.item() - peer.compute(model=model).item()) < 1e-6
    # and so are the gradients
    g_ours = torch.autograd.grad(mean_ours, [m.weight for m in model.values()])
    g_theirs = torch.autograd.grad(peer.compute(model=model), [m.weight for m in model.values()])
    for a, b in zip(g_ours, g_theirs):
        assert torch.allclose(a, b, atol=1e-7)


def test_topoloss_errors():
    grid_sheet = Sheet.uniform("free", 64)
    with pytest.raises(TopoviewerError, match="channel-grid"):
        spatial_loss("topoloss", grid_sheet)
    with pytest.raises(TopoviewerError, match="grid"):
        topoloss(torch.randn(10, 3), (3, 4))
    with pytest.raises(TopoviewerError, match="factor"):
        topoloss(torch.randn(4, 3), (2, 2), 3.0)
    with pytest.raises(TopoviewerError, match="factor"):
        spatial_loss("topoloss", Sheet.channel_grid("tiny", 4))


def test_unknown_loss_name_lists_valid_names():
    with pytest.raises(TopoviewerError) as info:
        spatial_loss("smoothness", Sheet.uniform("s", 5))
    for name in LOSS_NAMES:
        assert name in str(info.value)
    assert LOSS_NAMES == ("absolute", "relative", "topoloss")
