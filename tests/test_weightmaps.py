"""Data-free weight maps: norm, local TopoLoss (its mean is 1 − TopoLoss) and PCA → RGB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topoviewer import weightmaps as wm
from topoviewer.errors import TopoviewerError
from topoviewer.losses import topoloss
from topoviewer.sheet import Sheet, cortical_sheet_shape


@pytest.mark.parametrize("shape, factor", [((64, 20), 3.0), ((128, 8, 3, 3), 3.0), ((96, 12), (2.0, 4.0))])
def test_local_topoloss_map_mean_is_one_minus_topoloss(shape, factor):
    torch.manual_seed(0)
    w = torch.randn(shape)
    grid = cortical_sheet_shape(shape[0])
    local = wm.local_topoloss_map(w, grid, factor)
    assert local.shape == (shape[0],)
    assert np.all(local <= 1 + 1e-6) and np.all(local >= -1 - 1e-6)
    assert 1.0 - local.mean() == pytest.approx(float(topoloss(w, grid, factor)), abs=1e-6)


def test_local_topoloss_map_is_one_on_a_smooth_sheet():
    # every unit has the same direction → the blurred sheet points the same way everywhere
    w = torch.ones(64, 5) * torch.linspace(1, 2, 64)[:, None]
    np.testing.assert_allclose(wm.local_topoloss_map(w), 1.0, atol=1e-6)


def test_local_topoloss_rejects_a_too_small_grid():
    with pytest.raises(TopoviewerError, match="larger than"):
        wm.local_topoloss_map(torch.randn(4, 3), (2, 2), 3.0)


def test_weight_norm_map():
    w = torch.randn(10, 3, 2, 2)
    np.testing.assert_allclose(wm.weight_norm_map(w), np.linalg.norm(w.reshape(10, -1).numpy(), axis=1), rtol=1e-6)


def test_pca_rgb_separates_weight_clusters_and_is_reproducible():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 30))
    w = np.where(np.arange(64)[:, None] < 32, a, b) + 0.01 * rng.normal(size=(64, 30))
    rgb = wm.pca_rgb_map(torch.from_numpy(w).float())
    assert rgb.shape == (64, 3) and rgb.min() >= 0 and rgb.max() <= 1
    first = rgb[:, 0]
    assert abs(first[:32].mean() - first[32:].mean()) > 0.8  # PC1 splits the two clusters
    np.testing.assert_array_equal(rgb, wm.pca_rgb_map(torch.from_numpy(w).float()))
    sheet = Sheet.channel_grid("s", 64)
    assert wm.rasterise_rgb(sheet, rgb).shape == (8, 8, 3)


def test_sheet_weight_maps_on_a_channel_grid_model():
    from topoviewer.families import build

    torch.manual_seed(0)
    m = build("toponet_small", {"widths": [8, 8, 32, 64]})
    maps = wm.sheet_weight_maps(m, "conv4")
    w = m.net.sheet_weight(1)
    assert set(maps) == {"norm", "topoloss", "pca"}
    np.testing.assert_allclose(maps["norm"], w.detach().reshape(64, -1).norm(dim=1).numpy(), rtol=1e-6)
    assert 1 - maps["topoloss"].mean() == pytest.approx(float(topoloss(w.detach(), (8, 8))), abs=1e-6)
    m.meta = {"topoloss_config": {}}
    with pytest.raises(TopoviewerError, match="unknown weight map"):
        wm.sheet_weight_maps(m, "conv4", kinds=["curl"])


def test_chw_sheets_spread_channel_maps_over_their_units():
    from topoviewer.families.resnet import build_resnet

    torch.manual_seed(0)
    m = build_resnet({**build_resnet.defaults, "input_size": 64})  # layer1: (64, 16, 16) units
    sheet = m.sheet("layer1.0")
    assert sheet.n_units == 64 * 16 * 16
    maps = wm.sheet_weight_maps(m, "layer1.0", kinds=["norm", "pca"])
    per_channel = wm.weight_norm_map(m.net.layer1[0].conv2.weight)
    np.testing.assert_allclose(maps["norm"], np.repeat(per_channel, 256), rtol=1e-6)
    assert maps["pca"].shape == (sheet.n_units, 3)
    with pytest.raises(TopoviewerError, match="channel grid"):
        wm.sheet_weight_maps(m, "layer1.0", kinds=["topoloss"])
    # any named conv, on its channel grid (e.g. TopoNets' regularised layer2.0.conv1)
    maps, grid = wm.layer_weight_maps(m, "layer2.0.conv1")
    assert grid.grid_shape == (8, 16) and maps["topoloss"].shape == (128,)
    with pytest.raises(TopoviewerError, match="no layer"):
        wm.layer_weight_maps(m, "layer9.conv1")


def test_factor_comes_from_the_models_topoloss_config():
    from topoviewer.families import build

    torch.manual_seed(1)
    m = build("toponet_small", {"widths": [8, 8, 32, 64]})
    m.net.sheet_layer = lambda k: ["conv3.0", "conv4.0"][k]
    m.meta = {"topoloss_config": {"conv4.0": {"layer_name": "conv4.0", "factor_h": 2.0, "factor_w": 4.0}}}
    got = wm.sheet_weight_maps(m, "conv4", kinds=["topoloss"])["topoloss"]
    want = wm.local_topoloss_map(m.net.sheet_weight(1), (8, 8), (2.0, 4.0))
    np.testing.assert_allclose(got, want)
