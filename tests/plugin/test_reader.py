"""The npe2 reader without a viewer: what it claims, and the one image → network-input path."""

import argparse
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from topoviewer_napari import _reader
from topoviewer_napari._reader import get_reader, read_folder, read_image, read_model


@pytest.mark.parametrize("name", ["m.safetensors", "m.pt", "m.PTH", "m.ckpt", "m.torch"])
def test_get_reader_claims_model_files(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"x" * 32)
    assert get_reader(str(p)) is read_model
    assert get_reader([str(p)]) is read_model


def test_get_reader_is_cheap_and_never_raises(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")  # claimed by name; the reader reports the problem
    assert get_reader(str(tmp_path / "a.png")) is read_image
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path)) is read_folder  # a folder with pictures
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "empty")) is None
    for weird in (None, 123, ["a", "b"], "", "/no/such/dir/", object()):
        assert get_reader(weird) is None or callable(get_reader(weird))


def test_flat_folder_in_the_reader_and_category_folder_on_the_cli_give_identical_input(
        tmp_path, tiny_model, monkeypatch):
    from topoviewer import cli
    from topoviewer.stimuli import load_image

    picture = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)  # colour, not square
    (tmp_path / "flat").mkdir()
    (tmp_path / "cats" / "faces").mkdir(parents=True)
    for where in (tmp_path / "flat", tmp_path / "cats" / "faces"):
        Image.fromarray(picture).save(where / "p.png")
    # the reader as it runs inside a viewer that has the tiny model loaded
    viewer_ctrl = SimpleNamespace(state=SimpleNamespace(model=tiny_model), book=SimpleNamespace(layout=None))
    monkeypatch.setattr(_reader, "_controller", lambda: viewer_ctrl)
    [(flat, kwargs, kind)] = read_folder(str(tmp_path / "flat"))
    assert kind == "image" and "labels" not in kwargs["metadata"]["topoviewer_stimulus"]
    on_cli = cli._stimuli(argparse.Namespace(stimuli=str(tmp_path / "cats")), tiny_model)
    assert flat.shape == on_cli.images.shape == (1, tiny_model.input_size, tiny_model.input_size)
    x_gui, x_cli = tiny_model.preprocess(flat), tiny_model.preprocess(on_cli.images)
    torch.testing.assert_close(x_gui, x_cli, rtol=0, atol=0)
    # and the model resamples the raw picture (any size, colour) along the same path
    torch.testing.assert_close(tiny_model.preprocess(load_image(tmp_path / "flat" / "p.png")), x_cli,
                               rtol=0, atol=1e-6)
