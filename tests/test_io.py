"""Own model format and safe loading of foreign files."""

import json

import numpy as np
import pytest
import torch

from topoviewer import TopoviewerError
from topoviewer.io import load, read_header, save_model


def test_roundtrip_is_exact(tiny_model, tiny_model_file, rng):
    model = load(tiny_model_file)
    for a, b in zip(model.sheets, tiny_model.sheets):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert (a.name, a.label, a.extent_mm) == (b.name, b.label, b.extent_mm)
    images = rng.random((2, 32, 32)).astype(np.float32)
    r1, r2 = model.responses(images), tiny_model.responses(images)
    for k in r1:
        np.testing.assert_array_equal(r1[k], r2[k])


def test_header_is_self_describing(tiny_model_file):
    h = read_header(tiny_model_file)
    assert h["arch"] == "tdann_small" and h["format"] == "topoviewer-model"
    assert [s["name"] for s in h["sheets"]] == ["fc6", "fc7"]
    assert h["config"]["fc_units"] == [256, 256]


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(TopoviewerError, match="no such file"):
        load(tmp_path / "nope.safetensors")
    with pytest.raises(TopoviewerError, match="is a folder"):
        load(tmp_path)


def test_truncated_and_garbage_files(tiny_model_file, tmp_path):
    data = tiny_model_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TopoviewerError):
        load(cut)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(TopoviewerError):
        load(junk)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello world, not a model")
    with pytest.raises(TopoviewerError, match="unrecognised model file"):
        load(txt)


def test_foreign_safetensors_without_header(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(TopoviewerError, match="not a topoviewer model"):
        load(path)


def test_nan_weights_are_refused(tiny_model, tmp_path):
    import copy

    bad = copy.deepcopy(tiny_model)
    with torch.no_grad():
        bad.net.classifier[4].weight[0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_model(bad, path)
    with pytest.raises(TopoviewerError, match="classifier.4.weight.*NaN"):
        load(path)



def test_pickle_that_runs_code_is_refused(tmp_path, exploit):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": exploit(marker)}, path)
    with pytest.raises(TopoviewerError, match="refused to load"):
        load(path)
    assert not marker.exists()


def test_save_is_atomic(tiny_model, tiny_model_file, tmp_path, monkeypatch):
    """A crash while writing leaves the previous file untouched and no temp files."""
    import safetensors.torch

    target = tmp_path / "model.safetensors"
    target.write_bytes(tiny_model_file.read_bytes())
    before = target.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(RuntimeError):
        save_model(tiny_model, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_bad_header_json(tiny_model_file, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_model_file))
    path = tmp_path / "badheader.safetensors"
    save_file(tensors, str(path), metadata={"topoviewer": "{not json"})
    with pytest.raises(TopoviewerError, match="corrupt topoviewer header"):
        load(path)
    save_file(tensors, str(path), metadata={"topoviewer": json.dumps({"format": "other"})})
    with pytest.raises(TopoviewerError, match="expected format"):
        load(path)
