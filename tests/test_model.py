"""The model protocol: sheets, preprocessing, responses and propagation."""

import numpy as np
import pytest
import torch

from topoviewer import TopoviewerError
from topoviewer.families import ARCHITECTURES, build, default_config


@pytest.mark.parametrize("arch", ["tdann_small", "toponet_small"])
def test_responses_shapes_and_sheets(arch, rng):
    model = build(arch)
    images = rng.random((5, 40, 52)).astype(np.float32)
    resp = model.responses(images)
    assert list(resp) == model.sheet_names
    for sheet in model.sheets:
        assert resp[sheet.name].shape == (5, sheet.n_units)
        assert np.all(resp[sheet.name] >= 0)  # post-ReLU units


def test_lee2020_is_alexnet_with_torchvision_names():
    model = build("lee2020")
    names = dict(model.net.named_parameters())
    assert names["features.0.weight"].shape == (64, 3, 11, 11)
    assert names["classifier.1.weight"].shape == (4096, 9216)  # FC6 = cIT
    assert names["classifier.4.weight"].shape == (4096, 4096)  # FC7 = aIT
    assert names["classifier.6.weight"].shape == (1000, 4096)
    assert [s.label for s in model.sheets] == ["cIT", "aIT"]
    assert all(s.extent_mm == (10.0, 10.0) for s in model.sheets)
    assert model.input_size == 224 and model.in_channels == 3


def test_propagate_equals_forward_for_fc_sheets(tiny_model, rng):
    images = rng.random((3, 32, 32)).astype(np.float32)
    resp = tiny_model.responses(images)
    prop = tiny_model.propagate("fc6", resp["fc6"])
    np.testing.assert_allclose(prop["fc7"], resp["fc7"], rtol=1e-4, atol=1e-5)


def test_propagate_is_relu_of_linear_map(tiny_model):
    """FC7 = ReLU(W·a + b) for a clamped FC6 activity (docs/science.md; methods §6.4), computed by hand."""
    a = np.zeros(256, np.float32)
    a[[3, 17, 200]] = [1.0, 2.0, 0.5]
    fc7 = tiny_model.net.classifier[4]
    w, b = fc7.weight.detach().numpy(), fc7.bias.detach().numpy()
    expected = np.maximum(w @ a + b, 0)
    got = tiny_model.propagate("cIT", a)["fc7"][0]  # by label
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_unknown_layer_and_bad_activity(tiny_model):
    with pytest.raises(TopoviewerError, match="unknown layer 'fc9'.*fc6, fc7"):
        tiny_model.sheet("fc9")
    with pytest.raises(TopoviewerError, match="256 units"):
        tiny_model.propagate("fc6", np.zeros(10))
    with pytest.raises(TopoviewerError, match="NaN"):
        tiny_model.propagate("fc6", np.full(256, np.nan))
    with pytest.raises(TopoviewerError, match="not downstream"):
        tiny_model.propagate("fc7", np.zeros(256))


def test_preprocess_any_size_and_mode(tiny_model, rng):
    gray = rng.random((50, 80)).astype(np.float32)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    x_gray = tiny_model.preprocess(gray)
    x_rgb = tiny_model.preprocess(rgb)
    assert x_gray.shape == (1, 1, 32, 32)
    # luminance of a grey RGB image is the grey image itself
    torch.testing.assert_close(x_gray, x_rgb, rtol=1e-5, atol=1e-5)
    # centre crop, never squash: a wide image keeps its middle
    wide = np.zeros((32, 96), np.float32)
    wide[:, 32:64] = 1.0
    x = tiny_model.preprocess(wide)
    assert torch.allclose(x, torch.full_like(x, (1.0 - 0.5) / 0.25), atol=1e-4)
    with pytest.raises(TopoviewerError, match="NaN"):
        tiny_model.preprocess(np.full((8, 8), np.nan))


def test_toponet_sheets_are_channel_grids():
    model = build("toponet_small")
    s = model.sheet("conv3")
    assert s.grid_shape == (8, 16) and s.unit == "cell"
    assert model.net.sheet_weight(0).shape[0] == 128


def test_registry_errors():
    assert set(ARCHITECTURES) >= {"lee2020", "tdann_small", "toponet_small"}
    with pytest.raises(TopoviewerError, match="unknown architecture"):
        build("resnet9000")
    with pytest.raises(TopoviewerError, match="unknown config keys"):
        build("tdann_small", {"fc_unit": 3})
    assert default_config("tdann_small")["fc_units"] == [1024, 1024]


def test_fc_norm_variant_propagates_and_round_trips(tmp_path, rng):
    """tdann_small with batch-normed FC6/FC7: eval uses running statistics, FC7 = ReLU(BN(W·a + b))."""
    from topoviewer.io import load, save_model

    torch.manual_seed(0)
    model = build("tdann_small", {"fc_units": [64, 64], "fc_norm": True})
    bn = model.net.fc_norm[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    a = rng.random(64).astype(np.float32)
    fc7 = model.net.classifier[4]
    z = fc7.weight.detach().numpy() @ a + fc7.bias.detach().numpy()
    z = (z - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps)
    z = z * bn.weight.detach().numpy() + bn.bias.detach().numpy()
    np.testing.assert_allclose(model.propagate("fc6", a)["fc7"][0], np.maximum(z, 0), rtol=1e-4, atol=1e-5)
    save_model(model, tmp_path / "m.safetensors")
    again = load(tmp_path / "m.safetensors")
    images = rng.random((3, 32, 32)).astype(np.float32)
    r1, r2 = model.responses(images), again.responses(images)
    np.testing.assert_array_equal(r1["fc7"], r2["fc7"])
    assert isinstance(build("tdann_small").net.fc_norm[1], torch.nn.Identity)  # off by default: no parameters


def test_layer_norm_sheets_normalise_each_image_across_the_sheet(tmp_path, rng):
    """fc_norm "layer": FC7 = ReLU(γ · (z − mean_units z) / sqrt(var_units z + ε) + β), per image."""
    from topoviewer.io import load, save_model

    torch.manual_seed(0)
    model = build("tdann_small", {"fc_units": [64, 48], "fc_norm": "layer"})
    ln = model.net.fc_norm[1]
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.3, 0.3)
    a = rng.random((2, 64)).astype(np.float32)
    fc7 = model.net.classifier[4]
    z = a @ fc7.weight.detach().numpy().T + fc7.bias.detach().numpy()
    z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + ln.eps)
    z = z * ln.weight.detach().numpy() + ln.bias.detach().numpy()
    np.testing.assert_allclose(model.propagate("fc6", a)["fc7"], np.maximum(z, 0), rtol=1e-4, atol=1e-5)
    # divisive: without a bias, tripling FC6's activity (an image's overall gain) leaves FC7 unchanged
    with torch.no_grad():
        fc7.bias.zero_()
    np.testing.assert_allclose(model.propagate("fc6", 3 * a)["fc7"], model.propagate("fc6", a)["fc7"], rtol=1e-4,
                               atol=1e-5)
    save_model(model, tmp_path / "m.safetensors")
    again = load(tmp_path / "m.safetensors")
    images = rng.random((3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(model.responses(images)["fc7"], again.responses(images)["fc7"])
    with pytest.raises(ValueError, match="fc_norm must be one of none, batch, layer"):
        build("tdann_small", {"fc_norm": "group"})
