"""2. Reader (models by drag-and-drop or dialog) and 4. forward passes on user images."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def topo(shared_topo):
    """One viewer for the module (opening the plugin costs seconds); each test works on whatever model is open."""
    return shared_topo


def test_drop_model_file_opens_it(topo, tmp_path, tiny_model_file):
    from topoviewer.io import load, save_model

    other = tmp_path / "other.safetensors"
    model = load(str(tiny_model_file))
    model.name = "other-model"
    save_model(model, other)
    assert topo.viewer.open(str(other), plugin="topoviewer") == []
    topo.ctrl.wait(120)
    assert topo.state.model.name == "other-model" and topo.state.source == str(other)
    assert topo.state.analysis is not None
    assert topo.book.keys().count("fc6/dprime") == 1


BAD_FILES = [
    ("bad.safetensors", b"", "empty"),
    ("bad.pt", b"\x80\x04garbage-pickle-that-is-not-a-checkpoint", "checkpoint"),
    ("bad2.safetensors", b"12345678{not json at all", "safetensors"),
]


def test_bad_model_files_are_one_clear_notification_each(topo, tmp_path, notes):
    before = topo.state.model
    for name, content, expected in BAD_FILES:
        bad = tmp_path / name
        bad.write_bytes(content)
        assert topo.viewer.open(str(bad), plugin="topoviewer") == []
        topo.ctrl.wait(60)
        messages = [m for m in notes() if str(bad) in m]
        assert len(messages) == 1 and expected in messages[0], notes()
        assert topo.state.model is before  # the viewer keeps the old model and keeps working
    assert topo.ctrl.stimulate_at("fc6", (5.0, 5.0)) is not None


def _png(path, rgb=True, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    arr = (rng.uniform(0, 255, size + ((3,) if rgb else ()))).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def test_drop_image_runs_the_network(topo, tmp_path):
    arr = _png(tmp_path / "cat.png")
    topo.viewer.open(str(tmp_path / "cat.png"), plugin="topoviewer")
    topo.ctrl.wait(60)
    act = topo.state.activations
    assert act is not None and act.n_images == 1
    expected = topo.state.model.responses(arr.astype(np.float32) / 255.0)
    for s in topo.state.model.sheets:
        np.testing.assert_allclose(act.mean[s.name], expected[s.name][0], rtol=1e-4, atol=1e-5)
        layer = topo.book.get(f"{s.name}/activation")
        assert layer.name == f"{s.name} · activation"
        assert tuple(str(u) for u in layer.units) == ("millimeter", "millimeter")
    image = topo.book.get("input/image")
    assert image.name == "input · cat.png" and image.rgb
    # the picture fits the input cell of the first sheet
    y0, x0, y1, x1 = topo.book.layout.cell_box("fc6", "input")
    (ey0, ex0), (ey1, ex1) = image.extent.world[:, -2:]
    assert x0 - 0.5 <= ex0 and ex1 <= x1 + 0.5 and y0 - 0.5 <= ey0 and ey1 <= y1 + 0.5


def test_folder_gives_mean_activation_and_contrast(topo, tmp_path):
    root = tmp_path / "stimuli"
    for k, cat in enumerate(("faces", "houses")):
        (root / cat).mkdir(parents=True)
        for i in range(3):
            _png(root / cat / f"{i}.png", rgb=False, seed=10 * k + i)
    layers = topo.viewer.open(str(root), plugin="topoviewer")
    topo.ctrl.wait(60)
    assert layers[0].data.shape == (6, 32, 32)
    act = topo.state.activations
    assert act.n_images == 6 and act.contrast_category == "faces" and set(act.contrast) == {"fc6", "fc7"}
    assert topo.book.get("fc6/contrast").name == "fc6 · d′ faces (images)"
    assert topo.book.get("fc7/activation").name == "fc7 · mean activation"
    text = topo.docks["ImagesDock"].result.text()
    assert "6 images" in text and "fc7" in text


def test_run_on_a_chosen_image_layer(topo):
    dock = topo.docks["ImagesDock"]
    img = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    topo.viewer.add_image(img, name="my picture")
    assert "my picture" in [dock.layer_combo.itemText(i) for i in range(dock.layer_combo.count())]
    dock.layer_combo.setCurrentText("my picture")
    dock.run_button.click()
    topo.ctrl.wait(60)
    assert topo.state.activations.name == "my picture"
    expected = topo.state.model.responses(img)["fc6"][0]
    np.testing.assert_allclose(topo.state.activations.mean["fc6"], expected, rtol=1e-4, atol=1e-5)


def test_bad_picture_is_a_notification(topo, tmp_path, notes):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n-truncated")
    assert topo.viewer.open(str(bad), plugin="topoviewer") == []
    assert any("broken.png" in m for m in notes())
