"""Positions files (docs/formats.md §1, §3): .npz without pickle, .pkl through the restricted
unpickler, folders with version.txt, multi-layer coordinate files, the retinotopic rule and
the checkpoint ↔ positions-folder pairing guess."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from topoviewer.errors import TopoviewerError
from topoviewer.families.tdann import guess_positions_folder
from topoviewer.positions import (
    LayerPositions,
    load_layer_positions,
    load_positions,
    load_positions_folder,
    retinotopic_positions,
)

DIMS = (4, 3, 5)  # small (C, H, W) for the file-format tests


def _write_npz(path, name, dims, coords, **extra):
    np.savez(path, name=np.array(name), dims=np.array(dims), coordinates=coords,
             neighborhood_indices=np.arange(12).reshape(3, 4), neighborhood_width=np.array(0.75), **extra)


# ---------------------------------------------------------------------------- retinotopic rule
def test_retinotopic_positions_cells_follow_w_and_h():
    c, h, w = DIMS
    pos = retinotopic_positions(DIMS, extent_mm=10.0, seed=1)
    assert pos.shape == (c * h * w, 2)
    i = np.arange(c * h * w)
    ww, hh = i % w, (i // w) % h
    # unit i lies in the square cell of its (h, w): x ↔ w, y ↔ h
    assert np.all((pos[:, 0] >= ww * 10 / w) & (pos[:, 0] < (ww + 1) * 10 / w))
    assert np.all((pos[:, 1] >= hh * 10 / h) & (pos[:, 1] < (hh + 1) * 10 / h))
    # channels of one location are scattered, not stacked
    same_cell = pos[(ww == 0) & (hh == 0)]
    assert len(np.unique(same_cell[:, 0])) == c


# ---------------------------------------------------------------------------- npz
def test_npz_layer_reads_fields_and_skips_neighbourhoods(tmp_path):
    coords = retinotopic_positions(DIMS, 4.0)
    _write_npz(tmp_path / "layer1.0.npz", "layer1.0", DIMS, coords)
    lp = load_layer_positions(tmp_path / "layer1.0.npz")
    assert lp.name == "layer1.0" and lp.dims == DIMS and lp.neighborhood_width == 0.75
    assert lp.neighborhood_indices is None
    np.testing.assert_array_equal(lp.coordinates, coords)
    full = load_layer_positions(tmp_path / "layer1.0.npz", neighborhoods=True)
    assert full.neighborhood_indices.shape == (3, 4)


def test_npz_with_object_array_is_refused(tmp_path):
    path = tmp_path / "layer1.0.npz"
    np.savez(path, coordinates=np.array([object(), 1], dtype=object))
    with pytest.raises(TopoviewerError, match="pickle"):
        load_layer_positions(path)


def test_npz_dims_must_hold_the_units(tmp_path):
    _write_npz(tmp_path / "layer1.0.npz", "layer1.0", (4, 3, 6), retinotopic_positions(DIMS, 4.0))
    with pytest.raises(TopoviewerError, match="dims"):
        load_layer_positions(tmp_path / "layer1.0.npz")


def test_truncated_npz_gives_a_clear_error(tmp_path):
    path = tmp_path / "layer1.0.npz"
    _write_npz(path, "layer1.0", DIMS, retinotopic_positions(DIMS, 4.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TopoviewerError, match="truncated|readable|unreadable"):
        load_layer_positions(path)


def test_bad_coordinates_are_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, coordinates=np.zeros((5, 3)))
    with pytest.raises(TopoviewerError, match=r"\(N, 2\)"):
        load_layer_positions(path)
    np.savez(path, coordinates=np.array([[0.0, np.nan]]))
    with pytest.raises(TopoviewerError, match="NaN"):
        load_layer_positions(path)


# ---------------------------------------------------------------------------- pkl
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pkl_layer_positions_map_to_the_stand_in(tmp_path, monkeypatch, protocol, fake_spacetorch):
    Foreign = fake_spacetorch()
    coords = retinotopic_positions(DIMS, 4.0).astype(np.float32)
    obj = Foreign("layer2.0", DIMS, coords, np.arange(6).reshape(2, 3), np.float64(1.5))
    path = tmp_path / "layer2.0.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    monkeypatch.delitem(sys.modules, "spacetorch.models.positions")  # spacetorch is never imported
    lp = load_layer_positions(path)
    assert isinstance(lp, LayerPositions)
    assert lp.name == "layer2.0" and lp.dims == DIMS and lp.neighborhood_width == 1.5
    assert lp.neighborhood_indices is None
    np.testing.assert_allclose(lp.coordinates, coords)


def test_pkl_close_variant_module_is_accepted(tmp_path, monkeypatch, fake_spacetorch):
    Foreign = fake_spacetorch("spacestream.core.positions")
    obj = Foreign("layer1.0", DIMS, retinotopic_positions(DIMS, 1.0), np.zeros((1, 1), int), 0.1)
    (tmp_path / "layer1.0.pkl").write_bytes(pickle.dumps(obj))
    assert load_layer_positions(tmp_path / "layer1.0.pkl").n_units == int(np.prod(DIMS))


class _Unexpected:
    def __init__(self):
        self.coordinates = np.zeros((2, 2))


def test_pkl_with_an_unexpected_class_is_refused_naming_it(tmp_path):
    path = tmp_path / "layer1.0.pkl"
    path.write_bytes(pickle.dumps(_Unexpected()))
    with pytest.raises(TopoviewerError, match=r"test_positions\._Unexpected"):
        load_layer_positions(path)



def test_pkl_that_would_run_code_is_refused_and_runs_nothing(tmp_path, exploit):
    marker = tmp_path / "MARKER"
    path = tmp_path / "layer1.0.pkl"
    path.write_bytes(pickle.dumps(exploit(marker)))
    with pytest.raises(TopoviewerError, match=r"(posix|nt|os)\.system"):
        load_layer_positions(path)
    assert not marker.exists()


def test_truncated_pkl_gives_a_clear_error(tmp_path, monkeypatch, fake_spacetorch):
    Foreign = fake_spacetorch()
    data = pickle.dumps(Foreign("layer1.0", DIMS, retinotopic_positions(DIMS, 1.0), None, 0.1))
    path = tmp_path / "layer1.0.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TopoviewerError, match="truncated"):
        load_layer_positions(path)


# ---------------------------------------------------------------------------- folders and files
def test_folder_prefers_npz_and_reads_version(tmp_path, monkeypatch, fake_spacetorch):
    Foreign = fake_spacetorch()
    a = retinotopic_positions(DIMS, 1.0, seed=0)
    b = retinotopic_positions(DIMS, 1.0, seed=1)
    _write_npz(tmp_path / "layer1.0.npz", "layer1.0", DIMS, a)
    (tmp_path / "layer1.0.pkl").write_bytes(pickle.dumps(Foreign("layer1.0", DIMS, b, None, 0.1)))
    (tmp_path / "layer1.1.pkl").write_bytes(pickle.dumps(Foreign("layer1.1", DIMS, b, None, 0.1)))
    (tmp_path / "version.txt").write_text("2\n")
    got, version = load_positions_folder(tmp_path, ["layer1.0", "layer1.1"])
    assert version == 2
    np.testing.assert_array_equal(got["layer1.0"].coordinates, a)  # the .npz, not the .pkl
    np.testing.assert_allclose(got["layer1.1"].coordinates, b)


def test_folder_without_version_is_version_1_and_missing_layers_are_named(tmp_path):
    _write_npz(tmp_path / "layer1.0.npz", "layer1.0", DIMS, retinotopic_positions(DIMS, 1.0))
    assert load_positions_folder(tmp_path, ["layer1.0"])[1] == 1
    with pytest.raises(TopoviewerError, match="layer4.1"):
        load_positions_folder(tmp_path, ["layer1.0", "layer4.1"])


def test_one_npz_with_one_array_per_layer(tmp_path):
    a, b = np.random.default_rng(0).uniform(0, 3, (2, 10, 2))
    path = tmp_path / "coords.npz"
    np.savez(path, fc6=a, fc7=b, **{"fc7.dims": np.array([10])})
    got, version = load_positions(path, ["fc6", "fc7"])
    assert version == 1 and got["fc7"].dims == (10,)
    np.testing.assert_array_equal(got["fc6"].coordinates, a)
    with pytest.raises(TopoviewerError, match="fc8"):
        load_positions(path, ["fc6", "fc8"])


def test_single_layer_file_needs_one_layer(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, coordinates=np.random.default_rng(0).uniform(0, 10, (4, 2)))
    assert load_positions(path, ["only"])[0]["only"].n_units == 4
    with pytest.raises(TopoviewerError, match="one layer"):
        load_positions(path, ["a", "b"])


# ---------------------------------------------------------------------------- pairing guess
def _positions_dir(path):
    path.mkdir(parents=True)
    (path / "layer1.0.npz").write_bytes(b"")
    return path


def test_guess_does_not_pair_by_name_prefix_alone(tmp_path):
    """A SimCLR-looking name the authors' configs do not name is not sent to an ``_NBVER2`` folder by its prefix
    (simclr_ecoset, …trained_sine_gratings and simclr_lw0 are SimCLR models with the supervised positions)."""
    ckpt = tmp_path / "checkpoints" / "simclr_spatial_resnet18_lw0.25" / "model_final_checkpoint_phase199.torch"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    _positions_dir(tmp_path / "positions" / "simclr_swappedon_SineGrating2019_NBVER2")
    _positions_dir(tmp_path / "positions" / "supervised_resnet18_lw0" / "retinotopic_init")
    with pytest.raises(TopoviewerError, match="2 positions folders could belong to this checkpoint.*--positions DIR"):
        guess_positions_folder(ckpt, ["layer1.0"])


def test_guess_pairs_a_named_checkpoint_with_a_folder_beside_it(tmp_path):
    root = tmp_path / "x" / "y"
    ckpt = root / "supervised_spatial_resnet18_swappedon_SineGrating2019_lw01_phase99.torch"
    root.mkdir(parents=True)
    ckpt.write_bytes(b"")
    _positions_dir(root / "simclr_x_NBVER2")
    want = _positions_dir(root / "supervised_resnet18_lw0" / "resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019")
    assert guess_positions_folder(ckpt, ["layer1.0"]) == want


def test_guess_errors_are_clear(tmp_path):
    root = tmp_path / "x" / "y"  # the search looks two folders up: keep it inside tmp_path
    ckpt = root / "a" / "model_phase1.torch"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    with pytest.raises(TopoviewerError, match="--positions"):
        guess_positions_folder(ckpt, ["layer1.0"])
    _positions_dir(root / "p1")
    assert guess_positions_folder(ckpt, ["layer1.0"]) == root / "p1"
    _positions_dir(root / "p2")
    with pytest.raises(TopoviewerError, match="2 positions folders could belong"):
        guess_positions_folder(ckpt, ["layer1.0"])
