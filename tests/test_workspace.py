"""Workspace files: JSON + NPZ round trip, the model hash check, refusals."""

import json

import numpy as np
import pytest

from topoviewer.errors import TopoviewerError
from topoviewer.workspace import (
    Workspace,
    check_model,
    load_workspace,
    model_hash,
    model_to_open,
    save_workspace,
)


def _workspace(model_file):
    rng = np.random.default_rng(0)
    return Workspace(
        model=str(model_file), model_sha256=model_hash(str(model_file)), category="bodies", fwhm_mm=1.5,
        dprime_threshold=0.6, t_threshold=6.0, stim_radius_mm=0.75, images=rng.random((5, 16, 16), np.float32),
        images_name="folder", labels=np.array([0, 0, 1, 1, 1]), categories=["faces", "bodies"],
        log=[{"n": 1, "layer": "fc6", "x_mm": 1.25, "ratio": 2.5}])


def test_workspace_round_trip(tmp_path):
    import hashlib

    model_file = tmp_path / "m.safetensors"
    model_file.write_bytes(b"not really a model, but bytes to hash")
    ws = _workspace(model_file)
    assert ws.model_sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()
    path = save_workspace(ws, tmp_path / "session.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "session.json", "session.npz"]
    head = json.loads(path.read_text())
    assert head["format"] == "topoviewer-workspace" and head["pictures"] == "session.npz"
    back = load_workspace(path)
    for k in ("model", "model_sha256", "category", "fwhm_mm", "dprime_threshold", "t_threshold", "stim_radius_mm",
              "images_name", "categories", "log"):
        assert getattr(back, k) == getattr(ws, k), k
    np.testing.assert_array_equal(back.images, ws.images)
    np.testing.assert_array_equal(back.labels, ws.labels)
    assert check_model(back) == model_file
    # never overwritten without force; a changed model is refused by name
    with pytest.raises(TopoviewerError, match="already exists"):
        save_workspace(ws, path)
    save_workspace(Workspace(model=str(model_file), model_sha256=ws.model_sha256), path, force=True)
    assert load_workspace(path).images is None
    model_file.write_bytes(b"other bytes")
    with pytest.raises(TopoviewerError, match="has changed since the workspace was saved"):
        check_model(back)


def test_model_to_open_keeps_the_same_model_opens_the_saved_one_or_says_what_is_expected(tmp_path):
    import hashlib

    saved, copy, other = tmp_path / "saved.pt", tmp_path / "copy.pt", tmp_path / "other.pt"
    saved.write_bytes(b"the workspace's model")
    copy.write_bytes(b"the workspace's model")
    other.write_bytes(b"another model")
    ws = Workspace(model=str(saved), model_sha256=hashlib.sha256(b"the workspace's model").hexdigest())
    # the open model is the workspace's (by content, wherever its file lives): nothing to open
    assert model_to_open(ws, str(saved)) is None and model_to_open(ws, str(copy)) is None
    # another model (or none, or one whose file is gone) is open: the workspace's own file is opened
    for current in (str(other), "", str(tmp_path / "gone.pt")):
        assert model_to_open(ws, current) == saved
    # the workspace's file is gone: one message naming it and the hash expected; a copy still does
    saved.unlink()
    with pytest.raises(TopoviewerError, match=rf"the workspace's model {saved} is not found; expected the model "
                       rf"file with SHA-256 {ws.model_sha256[:12]}…"):
        model_to_open(ws, str(other))
    assert model_to_open(ws, str(copy)) is None
    # the workspace's file was changed: refused, by name
    saved.write_bytes(b"retrained")
    with pytest.raises(TopoviewerError, match=rf"model file {saved} has changed since the workspace was saved"):
        model_to_open(ws, str(other))
    sample = Workspace(model="sample", model_sha256=model_hash("sample"))
    assert model_to_open(sample, "sample") is None and model_to_open(sample, str(other)).is_file()


def test_workspace_refusals(tmp_path):
    with pytest.raises(TopoviewerError, match=r"a workspace is a \.json file"):
        save_workspace(Workspace(model="x", model_sha256=""), tmp_path / "w.npz")
    bad = tmp_path / "w.json"
    bad.write_text("{not json")
    with pytest.raises(TopoviewerError, match="is not readable JSON"):
        load_workspace(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TopoviewerError, match="is not a topoviewer workspace"):
        load_workspace(bad)
    bad.write_text(json.dumps({"format": "topoviewer-workspace", "version": 1, "model": "x", "model_sha256": "",
                               "has_images": True}))
    with pytest.raises(TopoviewerError, match="w.npz not found"):
        load_workspace(bad)
    bad.write_text(json.dumps({"format": "topoviewer-workspace", "version": 1, "model": "x", "model_sha256": "",
                               "stim_radius_mm": -1}))
    with pytest.raises(TopoviewerError, match="malformed .stim_radius_mm must be a positive number, got -1.0"):
        load_workspace(bad)
    with pytest.raises(TopoviewerError, match="model file .*missing.safetensors not found"):
        model_hash(str(tmp_path / "missing.safetensors"))


def test_workspace_keeps_the_lesion_and_the_matched_neurons(tmp_path):
    import hashlib

    from topoviewer.workspace import check_neural

    neural = tmp_path / "neurons.npz"
    neural.write_bytes(b"recorded responses")
    result = {"model": "m", "stimuli": "folder", "permutations": 20,
              "neurons": [{"neuron": 0, "sheet": "fc7", "unit": 100, "position_mm": [1.5, 2.0], "r": 0.99,
                           "noise_ceiling": None, "r_corrected": None, "p": 0.05}]}
    matches = {"neural": str(neural), "neural_sha256": hashlib.sha256(b"recorded responses").hexdigest(),
               "stimuli": str(tmp_path / "stim"), "permutations": 20, "result": result}
    ws = Workspace(model="m.pt", model_sha256="ab", lesion={"fc6": [3, 4, 17]}, matches=matches)
    path = save_workspace(ws, tmp_path / "session.json")
    head = json.loads(path.read_text())
    assert head["lesion"] == {"fc6": [3, 4, 17]} and head["matches"]["result"]["neurons"][0]["unit"] == 100
    back = load_workspace(path)
    assert back.lesion == {"fc6": [3, 4, 17]} and back.matches == matches
    assert check_neural(back.matches) == neural
    neural.write_bytes(b"other responses")
    with pytest.raises(TopoviewerError, match=rf"neural responses {neural} have changed since the workspace was saved"):
        check_neural(back.matches)
    neural.unlink()
    with pytest.raises(TopoviewerError, match=rf"the workspace's neural responses {neural} are not found; expected "
                       rf"the file with SHA-256 {matches['neural_sha256'][:12]}…"):
        check_neural(back.matches)
    # a workspace written before lesions and matches were kept: intact, no matches
    del head["lesion"], head["matches"]
    path.write_text(json.dumps(head))
    old = load_workspace(path)
    assert old.lesion == {} and old.matches is None
    for bad, message in (({"lesion": {"fc6": [-1]}}, "lesion of 'fc6' must be a list of unit indices ≥ 0"),
                         ({"lesion": {"fc6": [1.5]}}, "lesion of 'fc6' must be a list of unit indices ≥ 0"),
                         ({"matches": {"neural": "x"}}, "matches must hold neural .str., neural_sha256")):
        path.write_text(json.dumps({**head, **bad}))
        with pytest.raises(TopoviewerError, match=f"malformed .{message}"):
            load_workspace(path)
