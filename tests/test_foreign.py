"""Published checkpoints through the public entry point ``topoviewer.io.load``.

Every file here is synthetic (random weights) but has exactly the published key layout
(docs/formats.md): TDANN VISSL checkpoints + positions folders, TopoNets BlurPool ResNets,
ViT-B/32 training checkpoints and NanoGPT dicts (shrunken), LLCNN-style state dicts with
user coordinates, and hostile or damaged files.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import topoviewer as tv
from topoviewer.errors import TopoviewerError
from topoviewer.families.resnet import BlurPoolConv2d, ResNetSheets, block_dims
from topoviewer.families.toponets import NanoGPTSheets, VisionTransformerSheets, read_topoloss_config, token_responses
from topoviewer.positions import retinotopic_positions

LAYERS = ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]
#: training-time sheet sizes (mm) → paper sizes 2.4 / 36.75 / 35 / 22.4 / 70
TRAIN_MM = {"layer1.0": 4.0, "layer1.1": 4.0, "layer2.0": 24.5, "layer2.1": 24.5, "layer3.0": 20.0,
            "layer3.1": 16.0, "layer4.0": 10.0, "layer4.1": 10.0}
PAPER_MM = {"layer1.0": 2.4, "layer2.0": 36.75, "layer3.0": 35.0, "layer3.1": 22.4, "layer4.1": 70.0}
DIMS = block_dims(18, 224)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def r18_state():
    torch.manual_seed(0)
    return ResNetSheets(18, False, "chw", []).state_dict()


@pytest.fixture(scope="module")
def tdann_files(tmp_path_factory, r18_state):
    """A VISSL SimCLR checkpoint and its positions folder, laid out as the authors ship them."""
    root = tmp_path_factory.mktemp("tdann")
    trunk = {}
    for k, v in r18_state.items():
        trunk[f"_feature_blocks.{k}"] = v
        trunk[f"base_model.{k}"] = v
    g = torch.Generator().manual_seed(1)
    heads = {"0.0.clf.0.weight": torch.randn(512, 512, generator=g) * 0.04, "0.0.clf.0.bias": torch.zeros(512),
             "0.1.clf.0.weight": torch.randn(128, 512, generator=g) * 0.04, "0.1.clf.0.bias": torch.zeros(128)}
    ckpt = root / "checkpoints" / "simclr_spatial_resnet18_lw0.25" / "model_final_checkpoint_phase199.torch"
    ckpt.parent.mkdir(parents=True)
    torch.save({"phase_idx": 199, "iteration": 1000, "type": "checkpoint",
                "classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": heads}},
                                      "train_phase_idx": 199}}, ckpt)
    pos_dir = root / "positions" / "simclr_swappedon_SineGrating2019_NBVER2"
    pos_dir.mkdir(parents=True)
    coords = {}
    for k, layer in enumerate(LAYERS):
        coords[layer] = retinotopic_positions(DIMS[layer], TRAIN_MM[layer], seed=k).astype(np.float32)
        np.savez(pos_dir / f"{layer}.npz", name=np.array(layer), dims=np.array(DIMS[layer]),
                 coordinates=coords[layer], neighborhood_indices=np.zeros((4, 8), dtype=np.int64),
                 neighborhood_width=np.array(0.5))
    return {"root": root, "ckpt": ckpt, "positions": pos_dir, "coords": coords}


@pytest.fixture(scope="module")
def tdann(tdann_files):
    return tv.load(tdann_files["ckpt"])  # an unpaired name: the only positions folder nearby; paper scale


def _image(h=300, w=400, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (h, w, 3)).astype(np.float32)


# ---------------------------------------------------------------------------- TDANN
def test_tdann_vissl_checkpoint_with_guessed_positions(tdann, tdann_files):
    assert tdann.sheet_names == LAYERS
    assert [s.n_units for s in tdann.sheets] == [int(np.prod(DIMS[n])) for n in LAYERS]
    assert tdann.sheets[0].n_units == 200_704
    pos = tdann.meta["positions"]
    assert pos["guessed"] and pos["scale"] == "paper" and pos["version"] == 1
    assert pos["source"] == str(tdann_files["positions"])
    assert tdann.sheet("layer2.0").label == "V1, paper mm"
    assert tdann.sheet("layer4.1").label == "VTC, paper mm"
    for layer, mm in PAPER_MM.items():
        assert max(tdann.sheet(layer).extent_mm) == pytest.approx(mm, rel=0.02)
    # unit i keeps its file position (× the area's factor)
    np.testing.assert_allclose(tdann.sheet("layer3.0").positions, tdann_files["coords"]["layer3.0"] * 1.75, rtol=1e-6)


def test_tdann_units_are_c_order_chw_and_maps_have_the_right_shapes(tdann):
    img = _image()
    resp = tdann.responses(img)
    assert {k: v.shape for k, v in resp.items()} == {n: (1, int(np.prod(DIMS[n]))) for n in LAYERS}
    with torch.inference_mode():
        _, acts = tdann.net(tdann.preprocess(img), upto=7)
    for k, layer in enumerate(LAYERS):
        c, h, w = DIMS[layer]
        assert tuple(acts[k].shape[1:]) == (c, h, w)
        np.testing.assert_allclose(resp[layer][0].reshape(c, h, w), acts[k][0].numpy(), rtol=1e-5, atol=1e-6)
    s1, s4 = tdann.sheet("layer1.0"), tdann.sheet("layer4.1")
    assert s1.rasterise(resp["layer1.0"][0]).shape == (256, 256)
    vox = s4.voxelise(resp["layer4.1"][0])
    assert vox.shape == s4.grid(0.5).shape == (140, 140)
    out = tdann.propagate("layer3.1", resp["layer3.1"])
    assert set(out) == {"layer4.0", "layer4.1"}
    # propagation from a clamped sheet equals the ordinary forward from that sheet
    np.testing.assert_allclose(out["layer4.1"], resp["layer4.1"], rtol=1e-4, atol=1e-5)


def test_tdann_preprocess_resizes_to_256_then_crops_224(tdann):
    img = _image(256, 256)
    x = tdann.preprocess(img)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    want = ((img[16:240, 16:240] - mean) / std).transpose(2, 0, 1)
    np.testing.assert_allclose(x[0].numpy(), want, rtol=1e-5, atol=1e-5)
    assert tuple(tdann.preprocess(_image(300, 500)).shape) == (1, 3, 224, 224)
    assert tuple(tdann.preprocess(np.random.rand(2, 224, 224)).shape) == (2, 3, 224, 224)


def test_tdann_training_scale_and_explicit_folder(tdann_files):
    m = tv.load(tdann_files["ckpt"], positions=tdann_files["positions"], scale="training")
    assert m.meta["positions"]["scale"] == "training" and not m.meta["positions"]["guessed"]
    assert m.sheet("layer3.1").label == "V4, training mm"
    for layer, mm in TRAIN_MM.items():
        assert max(m.sheet(layer).extent_mm) == pytest.approx(mm, rel=0.02)
    np.testing.assert_allclose(m.sheet("layer1.0").positions, tdann_files["coords"]["layer1.0"], rtol=1e-6)
    with pytest.raises(TopoviewerError, match="scale"):
        tv.load(tdann_files["ckpt"], positions=tdann_files["positions"], scale="macaque")


def test_tdann_positions_of_another_model_are_refused(tdann_files, tmp_path):
    bad = tmp_path / "pos"
    bad.mkdir()
    for layer in LAYERS[1:]:
        os.symlink(tdann_files["positions"] / f"{layer}.npz", bad / f"{layer}.npz")
    dims = (64, 28, 28)  # a layer1 of a 112-px model
    np.savez(bad / "layer1.0.npz", name=np.array("layer1.0"), dims=np.array(dims),
             coordinates=retinotopic_positions(dims, 4.0))
    with pytest.raises(TopoviewerError, match=r"dims \(64, 28, 28\).*\(64, 56, 56\)"):
        tv.load(tdann_files["ckpt"], positions=bad)
    np.savez(bad / "layer1.0.npz", coordinates=np.random.default_rng(0).uniform(0, 4, (1000, 2)))  # no dims, wrong count
    with pytest.raises(TopoviewerError, match="1000 positions"):
        tv.load(tdann_files["ckpt"], positions=bad)


def _link_folder(src, dst, version=None):
    """A positions folder holding ``src``'s layer files (symlinked), with ``version.txt`` as the authors write it."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        os.symlink(f, dst / f.name)
    if version is not None:
        (dst / "version.txt").write_text(version)
    return dst


def test_tdann_pkl_positions_folder_of_version_2_is_used_as_stored(tdann_files, tmp_path, monkeypatch,
                                                                   fake_spacetorch):
    """spacetorch's ``get_positions`` rescales version-1 folders only: a version-2 folder is already final."""
    LayerPositions = fake_spacetorch("spacetorch.models.positions")
    folder = tmp_path / "supervised_resnet18_lw0" / "pkl"
    folder.mkdir(parents=True)
    for layer in LAYERS:  # LayerPositions.save: pickle.dump(self) to <save_dir>/<name>.pkl
        lp = LayerPositions(layer, DIMS[layer], tdann_files["coords"][layer], np.zeros((2, 3), int), 0.5)
        (folder / f"{layer}.pkl").write_bytes(pickle.dumps(lp))
    (folder / "version.txt").write_text("2\n")
    for name in ("spacetorch.models.positions", "spacetorch.models", "spacetorch"):
        monkeypatch.delitem(sys.modules, name)  # spacetorch is never imported by the loader
    m = tv.load(tdann_files["ckpt"], positions=folder, scale="paper")
    pos = m.meta["positions"]
    assert pos["version"] == 2 and pos["scale"] == "paper" and not pos["rescaled"]
    assert set(pos["factors"].values()) == {1.0}
    np.testing.assert_allclose(m.sheet("layer4.0").positions, tdann_files["coords"]["layer4.0"], rtol=1e-6)
    assert max(m.sheet("layer2.0").extent_mm) == pytest.approx(24.5, rel=0.02)  # not 36.75
    assert m.sheet("layer2.0").label == "V1, paper mm"


@pytest.mark.parametrize("text, version", [(None, 1), ("1\n", 1), (" 1 ", 1), ("2", 2), ("3\nnotes", 3), ("0", 0)])
def test_tdann_version_txt_is_read_as_the_authors_read_it(tmp_path, text, version):
    """``int(first line)``, no file → 1 (``NetworkPositions.load_from_dir``); the loader rescales version 1 only
    (the guessed folder above has none and is rescaled; the version-2 folder above is not)."""
    from topoviewer.positions import read_version

    if text is not None:
        (tmp_path / "version.txt").write_text(text)
    assert read_version(tmp_path) == version


@pytest.mark.parametrize("text", ["2.0", "", "two", "\n2"])
def test_tdann_version_txt_that_the_authors_code_cannot_read_is_refused(tdann_files, tmp_path, text):
    folder = tmp_path / "pos"
    folder.mkdir()
    (folder / "version.txt").write_text(text)  # checked before any layer file is read
    with pytest.raises(TopoviewerError, match="version.txt: expected one integer on the first line") as info:
        tv.load(tdann_files["ckpt"], positions=folder)
    assert "\n" not in str(info.value)


def test_tdann_without_positions_is_a_clear_error(tdann_files, tmp_path):
    lonely = tmp_path / "a" / "b" / "c" / "simclr_spatial_x_phase199.torch"
    lonely.parent.mkdir(parents=True)
    os.symlink(tdann_files["ckpt"], lonely)
    with pytest.raises(TopoviewerError, match="no positions folder.*--positions"):
        tv.load(lonely)


# the TDANN release (tdann_data/tdann): checkpoints/ and positions/ side by side; folder names from the authors'
# analysis configs (weights.checkpoint_dir → TRUNK_PARAMS.position_dir) and spacetorch's POS_LOOKUP
NBVER2 = ("simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_lw0/"
          "resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019_NBVER2")
SUPERVISED = "supervised_resnet18/resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019"
SUPSWAP = "supervised_resnet18_lw0/resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019"
RN50 = "supervised_resnet50/resnet50_retinotopic_init_swappedon_SineGrating2019"
CHANX2 = "supervised_resnet18_chanx2/resnet18_chanx2_retinotopic_init_swappedon_SineGrating2019"
PAIRS = [  # (checkpoint_dir as in the config, position_dir as in the config)
    ("checkpoints/deprecated__defense_models_fuzzy_nonisoswap/"  # simclr_ecoset: SimCLR, supervised positions
     "simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_ecoset_checkpoints", SUPERVISED),
    ("checkpoints/simclr_spatial_SG_pretrain_minimal_aug_biased", SUPERVISED),  # …trained_sine_gratings
    ("checkpoints/simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_lw0_checkpoints", SUPERVISED),  # simclr_lw0
    ("checkpoints/simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3_checkpoints", NBVER2),
    ("checkpoints/simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3_lw0_checkpoints", NBVER2),
    ("checkpoints/simclr_spatial_resnet18_swappedon_SineGrating2019_old_scl_lwx5_seed_2_checkpoints", NBVER2),
    ("checkpoints/white_noise_training_checkpoints", NBVER2),
    ("checkpoints/supervised_spatial_resnet18_swappedon_SineGrating2019_lwx10_seed_3_checkpoints", SUPSWAP),
    ("vissl_checkpoints/supervised_resnet50_checkpoints", RN50),  # POS_LOOKUP["resnet50"]
    ("vissl_checkpoints/resnet18_chanx2_supervised_checkpoints", CHANX2),  # POS_LOOKUP["chanx2"]
]


@pytest.fixture()
def release(tmp_path):
    root = tmp_path / "tdann_data" / "tdann"
    for rel in {p for _, p in PAIRS}:
        (root / "positions" / rel).mkdir(parents=True)
    return root


@pytest.mark.parametrize("ckpt_dir, rel", PAIRS, ids=[c.rsplit("/", 1)[1][:40] for c, _ in PAIRS])
def test_tdann_positions_are_paired_as_the_authors_configs_say(release, ckpt_dir, rel):
    from topoviewer.families.tdann import guess_positions_folder

    ckpt = release / ckpt_dir / "model_final_checkpoint_phase199.torch"
    layers = LAYERS if "resnet50" not in rel else [f"layer{i}.{j}" for i, n in enumerate((3, 4, 6, 3), 1)
                                                   for j in range(n)]
    assert guess_positions_folder(ckpt, layers) == release / "positions" / rel


def test_tdann_ambiguous_or_missing_positions_ask_for_positions(release, tdann_files):
    from topoviewer.families.tdann import guess_positions_folder

    for rel in (SUPERVISED, NBVER2):  # two candidate folders, a checkpoint the configs do not name
        np.savez(release / "positions" / rel / "layer1.0.npz", coordinates=np.zeros((1, 2)))
    ckpt = release / "checkpoints" / "my_simclr_run" / "model_final_checkpoint_phase199.torch"
    with pytest.raises(TopoviewerError) as info:
        guess_positions_folder(ckpt, LAYERS)
    msg = str(info.value)
    assert "2 positions folders could belong to this checkpoint" in msg and "--positions DIR" in msg
    assert str(release / "positions" / SUPERVISED) in msg and str(release / "positions" / NBVER2) in msg
    assert "\n" not in msg
    (release / "positions" / CHANX2).rmdir()  # a named checkpoint whose folder is not there: no fallback guess
    ckpt = release / PAIRS[-1][0] / "model_final_checkpoint_phase199.torch"
    with pytest.raises(TopoviewerError, match=f"pair 'resnet18_chanx2_supervised_checkpoints' with the positions "
                                              f"folder positions/{CHANX2}, which is not under .*--positions DIR"):
        guess_positions_folder(ckpt, LAYERS)


def _vissl_trunk(base_model: dict, blocks: str) -> dict:
    """A VISSL trunk state dict as spacetorch's trunks save it: ``base_model.*`` plus the ``_feature_blocks``
    ModuleDict's duplicates (``blocks="per_block"``: layer1_0 … as in ResNet18_ChanX; ``"per_stage"``:
    conv1, bn1, layer1 … as in VisslResNet)."""
    trunk = {f"base_model.{k}": v for k, v in base_model.items()}
    for k, v in base_model.items():
        head, rest = k.split(".", 1)
        if blocks == "per_block" and head.startswith("layer"):
            block, rest = rest.split(".", 1)
            trunk[f"_feature_blocks.{head}_{block}.{rest}"] = v
        elif head.startswith("layer") or head == "conv1" or (head == "bn1" and blocks == "per_stage"):
            trunk[f"_feature_blocks.{k}"] = v
    return trunk


def _positions_folder(folder, dims: dict, mm=10.0):
    """LayerPositions.save_np: ``np.savez(<dir>/<name>.npz, **vars(self))``; returns the coordinates."""
    folder.mkdir(parents=True)
    coords = {}
    for k, (layer, d) in enumerate(dims.items()):
        coords[layer] = retinotopic_positions(d, mm, seed=k).astype(np.float32)
        np.savez(folder / f"{layer}.npz", name=layer, dims=np.array(d), coordinates=coords[layer],
                 neighborhood_indices=np.zeros((2, 4), dtype=np.int64), neighborhood_width=np.float64(0.5))
    return coords


def test_tdann_resnet18_chanx2_opens_and_analyses(tmp_path):
    """spacetorch's ResNet18_ChanX (channel_multiplier [1, 2, 1, 1]), supervised, found next to its positions."""
    from topoviewer.families.resnet import resnet_widths_from_keys

    torch.manual_seed(5)
    widths = (64, 256, 256, 512)
    base = dict(ResNetSheets(18, False, "chw", [], widths).state_dict())
    base["fc.weight"], base["fc.bias"] = torch.randn(1000, 512) * 0.01, torch.zeros(1000)  # kept by ChanX, untrained
    trunk = _vissl_trunk(base, "per_block")
    assert trunk["base_model.layer2.0.conv1.weight"].shape == (256, 64, 3, 3)
    assert trunk["_feature_blocks.layer2_0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert trunk["base_model.layer3.0.downsample.0.weight"].shape == (256, 256, 1, 1)
    heads = {"0.clf.0.weight": torch.randn(1000, 512) * 0.01, "0.clf.0.bias": torch.zeros(1000)}
    root = tmp_path / "tdann"
    ckpt = root / "vissl_checkpoints" / "resnet18_chanx2_supervised_checkpoints" / "model_final_checkpoint_phase199.torch"
    ckpt.parent.mkdir(parents=True)
    torch.save({"phase_idx": 99, "classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": heads}}}},
               ckpt)
    dims = block_dims(18, 224, widths)
    assert dims["layer2.0"] == (256, 28, 28) and dims["layer1.0"] == (64, 56, 56)
    coords = _positions_folder(root / "positions" / CHANX2, dims)
    m = tv.load(ckpt, scale="training")  # as the authors' figure: get_positions("chanx2", rescale=False)
    assert m.meta["positions"]["source"] == str(root / "positions" / CHANX2) and m.meta["positions"]["guessed"]
    assert m.meta["trunk"] == "ResNet18_ChanX" and m.meta["channel_multiplier"] == [1, 2, 1, 1]
    assert resnet_widths_from_keys(m.net.state_dict()) == widths
    assert m.sheet("layer2.1").n_units == 256 * 28 * 28 and m.sheet("layer2.0").label == "V1, training mm"
    np.testing.assert_allclose(m.sheet("layer2.0").positions, coords["layer2.0"], rtol=1e-6)
    torch.testing.assert_close(m.net.layer2[0].conv1.weight, base["layer2.0.conv1.weight"])
    torch.testing.assert_close(m.net.fc.weight, heads["0.clf.0.weight"])  # the trained head, not the trunk's fc
    img = _image(seed=3)
    resp = m.responses(img, sheets=["layer2.0", "layer2.1"])
    x = m.preprocess(img)
    with torch.inference_mode():  # an independent forward through the stored weights
        h = F.max_pool2d(F.relu(F.batch_norm(F.conv2d(x, base["conv1.weight"], stride=2, padding=3),
                                             base["bn1.running_mean"], base["bn1.running_var"], base["bn1.weight"],
                                             base["bn1.bias"])), 3, 2, 1)
        want = m.net.layer2(m.net.layer1(h))
    np.testing.assert_allclose(resp["layer2.1"][0], want[0].flatten().numpy(), rtol=1e-4, atol=1e-5)
    vox = m.sheet("layer2.0").voxelise(resp["layer2.0"][0])
    assert vox.shape == m.sheet("layer2.0").grid(0.5).shape and np.isfinite(vox).all()
    again = tv.load(tv.save_model(m, tmp_path / "chanx2.safetensors"))  # the widths travel in the own format
    assert again.net.widths == widths and again.config["widths"] == list(widths)
    torch.testing.assert_close(again.net.layer2[1].conv2.weight, base["layer2.1.conv2.weight"])


def test_tdann_resnet50_positions_are_found_and_used_as_stored(tmp_path):
    """VisslResNet resnet50 (supervised_resnet50) + POS_LOOKUP["resnet50"]: 16 sheets, training mm only."""
    torch.manual_seed(6)
    base = dict(ResNetSheets(50, False, "chw", []).state_dict())
    heads = {"0.clf.0.weight": torch.randn(1000, 2048) * 0.01, "0.clf.0.bias": torch.zeros(1000)}
    root = tmp_path / "tdann"
    ckpt = root / "vissl_checkpoints" / "supervised_resnet50_checkpoints" / "model_final_checkpoint_phase199.torch"
    ckpt.parent.mkdir(parents=True)
    torch.save({"classy_state_dict": {"base_model": {"model": {"trunk": _vissl_trunk(base, "per_stage"),
                                                               "heads": heads}}}}, ckpt)
    dims = block_dims(50, 224)
    assert len(dims) == 16 and dims["layer1.2"] == (256, 56, 56) and dims["layer4.2"] == (2048, 7, 7)
    coords = _positions_folder(root / "positions" / RN50, dims)
    with pytest.raises(TopoviewerError, match="ResNet-50 positions have no paper scale.*--scale training"):
        tv.load(ckpt, scale="paper")
    m = tv.load(ckpt)
    pos = m.meta["positions"]
    assert pos["guessed"] and pos["source"] == str(root / "positions" / RN50)
    assert pos["scale"] == "training" and not pos["rescaled"] and m.meta["family"] == "resnet50"
    assert m.sheet_names == list(dims) and m.sheet("layer3.5").n_units == 1024 * 14 * 14
    np.testing.assert_allclose(m.sheet("layer4.2").positions, coords["layer4.2"], rtol=1e-6)


def test_llcnn_state_dict_with_one_coordinates_file(r18_state, tdann_files, tmp_path):
    path = tmp_path / "llcnn_resnet18.pth"
    fc = {"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    torch.save({"epoch": 5, "best_acc1": np.float64(71.3), "val_history": np.array([60.0, 71.3]),  # numpy is allowed
                "state_dict": {f"module.{k}": v for k, v in {**r18_state, **fc}.items()}}, path)
    coords = tmp_path / "coords.npz"
    np.savez(coords, **{layer: tdann_files["coords"][layer] for layer in LAYERS})
    m = tv.load(path, positions=coords, scale="paper")  # user coordinates are used as given
    assert m.meta["positions"]["scale"] == "as given"
    assert m.sheet("layer2.0").label == ""
    np.testing.assert_allclose(m.sheet("layer2.0").positions, tdann_files["coords"]["layer2.0"], rtol=1e-6)
    assert m.logits(_image()).shape == (1, 10)


@pytest.mark.parametrize("wrap", ["bare", "model", "state_dict"])
def test_plain_resnet18_wrappers_with_a_positions_folder(r18_state, tdann_files, wrap):
    from topoviewer.families import load_foreign

    sd = {f"module.{k}": v for k, v in r18_state.items()} if wrap == "state_dict" else r18_state
    obj = sd if wrap == "bare" else {wrap: sd, "epoch": 1}
    m = load_foreign(obj, tdann_files["root"] / "resnet18.pth", positions=tdann_files["positions"], scale="training")
    assert m.meta["family"] == "tdann" and m.sheet("layer1.1").label == "retina, training mm"
    torch.testing.assert_close(m.net.layer3[1].conv2.weight, r18_state["layer3.1.conv2.weight"])


def test_cli_info_accepts_positions_and_scale(tdann_files, capsys):
    from topoviewer.cli import main

    rc = main(["info", str(tdann_files["ckpt"]), "--positions", str(tdann_files["positions"]),
               "--scale", "training", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in info["sheets"]] == LAYERS
    assert info["sheets"][2]["label"] == "V1, training mm"
    assert info["sheets"][0]["units"] == 200_704
    assert main(["info", str(tdann_files["ckpt"]), "--positions", "/nonexistent/dir"]) == 2


# ---------------------------------------------------------------------------- TopoNets ResNets
@pytest.fixture(scope="module")
def toponet18_file(tmp_path_factory):
    torch.manual_seed(2)
    net = ResNetSheets(18, True, "channel", [512, 1000]).to(memory_format=torch.channels_last)
    path = tmp_path_factory.mktemp("toponets") / "all_topo_tau_10.0.pt"
    torch.save(net.state_dict(), path)  # a plain state dict, as published (channels_last)
    return path


@pytest.fixture(scope="module")
def toponet18(toponet18_file):
    return tv.load(toponet18_file)


def test_toponets_resnet18_blurpool(toponet18_file, toponet18):
    sd = torch.load(toponet18_file, weights_only=True)
    assert "layer2.0.conv1.blur_filter" in sd and "layer2.0.conv1.conv.weight" in sd
    assert sorted(k[: -len(".blur_filter")] for k in sd if k.endswith("blur_filter")) == [
        f"layer{i}.0.{c}" for i in (2, 3, 4) for c in ("conv1", "downsample.0")]
    m = toponet18
    assert m.meta["family"] == "toponets-resnet18" and len(m.meta["topoloss_layers"]) == 19
    assert [s.grid_shape for s in m.sheets[::2]] == [(8, 8), (8, 16), (16, 16), (16, 32)]
    assert all(s.unit == "cell" for s in m.sheets)
    assert all(p.is_contiguous() for p in m.net.parameters())  # channels_last made contiguous
    resp = m.responses(np.stack([_image(seed=1), _image(seed=2)]))
    assert resp["layer4.1"].shape == (2, 512) and resp["layer1.0"].shape == (2, 64)
    out = m.propagate("layer2.1", resp["layer2.1"][0])
    assert {k: v.shape for k, v in out.items()} == {"layer3.0": (1, 256), "layer3.1": (1, 256),
                                                    "layer4.0": (1, 512), "layer4.1": (1, 512)}
    assert m.logits(_image()).shape == (1, 1000)
    assert m.sheet("layer3.0").rasterise(resp["layer3.0"][0]).shape == (16, 16)
    assert tuple(m.preprocess(_image()).shape) == (1, 3, 256, 256)  # ffcv validation resolution


def test_blurpool_wrapper_blurs_then_runs_the_strided_conv(toponet18):
    m = toponet18
    wrapper = m.net.layer2[0].conv1
    assert isinstance(wrapper, BlurPoolConv2d) and wrapper.conv.stride == (2, 2)
    x = torch.randn(1, 64, 16, 16)
    k = torch.tensor([1.0, 2.0, 1.0])
    kernel = (k[:, None] * k[None, :] / 16).expand(64, 1, 3, 3)
    want = F.conv2d(F.conv2d(x, kernel, padding=1, groups=64), wrapper.conv.weight, stride=2, padding=1)
    with torch.no_grad():
        torch.testing.assert_close(wrapper(x), want)
    assert m.net.sheet_weight(0) is m.net.layer1[0].conv2.weight


def test_toponets_resnet50_keys_and_sheets():
    from topoviewer.families import load_foreign

    torch.manual_seed(3)
    sd = ResNetSheets(50, True, "channel", [2048, 1000]).state_dict()
    blurred = sorted(k[: -len(".blur_filter")] for k in sd if k.endswith("blur_filter"))
    assert blurred == [f"layer{i}.0.{c}" for i in (2, 3, 4) for c in ("conv2", "downsample.0")]
    m = load_foreign(sd, "all_topo_tau_30.0.pt")
    assert m.meta["family"] == "toponets-resnet50" and len(m.sheets) == 16
    assert m.sheet("layer4.2").grid_shape == (32, 64) and m.sheet("layer1.0").grid_shape == (16, 16)
    assert m.meta["sheet_layers"]["layer4.2"] == "layer4.2.conv3"


def test_toponets_resnet18_with_wider_stages():
    """Stage widths come from the weights for BlurPool ResNets too (a ChanX-style ×2 layer2)."""
    from topoviewer.families import load_foreign

    torch.manual_seed(4)
    sd = ResNetSheets(18, True, "channel", [512, 10], (64, 256, 256, 512)).state_dict()
    assert sd["layer2.0.conv1.conv.weight"].shape == (256, 64, 3, 3) and "layer2.0.conv1.blur_filter" in sd
    m = load_foreign(sd, "all_topo_tau_1.0.pt")
    assert m.config["widths"] == [64, 256, 256, 512]
    assert m.sheet("layer2.1").n_units == 256 and m.sheet("layer2.1").grid_shape == (16, 16)
    torch.testing.assert_close(m.net.layer2[1].conv2.weight, sd["layer2.1.conv2.weight"])


def test_topoloss_config_tolerates_extra_fields(tmp_path):
    path = tmp_path / "topo.json"
    path.write_text(json.dumps([
        {"layer_name": "layer4.1.conv2", "factor_h": 3.0, "factor_w": 2.0, "interpolation": "bilinear",
         "scale": 10.0, "name": "LaplacianPyramid", "extra": [1, 2]},
        {"layer_name": "fc"},
    ]))
    cfg = read_topoloss_config(path)
    assert cfg["layer4.1.conv2"]["factor_w"] == 2.0 and cfg["layer4.1.conv2"]["extra"] == [1, 2]
    assert cfg["fc"]["factor_h"] == 3.0
    path.write_text(json.dumps([{"factor_h": 3}]))
    with pytest.raises(TopoviewerError, match="layer_name"):
        read_topoloss_config(path)


# ---------------------------------------------------------------------------- ViT-B/32 (shrunken)
@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    torch.manual_seed(4)
    net = VisionTransformerSheets(image_size=224, patch_size=32, layers=3, heads=2, hidden=64, mlp_dim=128,
                                  head_dims=[64, 10])
    args = argparse.Namespace(model="vit_b_32", num_heads=2, val_resize_size=256, val_crop_size=224,
                              lr=0.003, epochs=300, interpolation="bilinear", data_path="/datasets/imagenet")
    path = tmp_path_factory.mktemp("vit") / "tau_10.0.pt"
    opt = {"state": {}, "param_groups": [{"lr": 0.003, "params": [0, 1]}]}
    torch.save({"model": net.state_dict(), "optimizer": opt, "lr_scheduler": {"last_epoch": 3}, "epoch": 299,
                "args": args}, path)
    return path


def test_toponets_vit_training_checkpoint(vit_file):
    m = tv.load(vit_file)
    assert m.meta["family"] == "toponets-vit" and m.meta["attention_heads"] == 2
    assert m.sheet_names == ["encoder_layer_0", "encoder_layer_1", "encoder_layer_2"]
    assert m.sheets[0].grid_shape == (8, 8)
    assert m.meta["sheet_layers"]["encoder_layer_1"] == "encoder.layers.encoder_layer_1.mlp.3"
    resp = m.responses(np.stack([_image(seed=3), _image(seed=4)]))
    assert all(v.shape == (2, 64) for v in resp.values())
    out = m.propagate("encoder_layer_0", resp["encoder_layer_0"])
    assert set(out) == {"encoder_layer_1", "encoder_layer_2"} and out["encoder_layer_2"].shape == (2, 64)
    assert m.logits(_image()).shape == (1, 10)
    assert m.net.sheet_weight(2).shape == (64, 128)


def test_vit_stages_match_a_plain_forward(vit_file):
    m = tv.load(vit_file)
    x = m.preprocess(_image())
    net = m.net
    with torch.no_grad():
        logits, _ = net(x)
        h = net.conv_proj(x).flatten(2).transpose(1, 2)
        h = torch.cat([net.class_token.expand(1, -1, -1), h], dim=1) + net.encoder.pos_embedding
        for blk in net.encoder.layers:
            a = blk.ln_1(h)
            h = h + blk.self_attention(a, a, a, need_weights=False)[0]
            h = h + blk.mlp(blk.ln_2(h))
        want = net.heads(net.encoder.ln(h)[:, 0])
    torch.testing.assert_close(logits, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- NanoGPT (shrunken)
@pytest.fixture(scope="module")
def nanogpt_file(tmp_path_factory):
    torch.manual_seed(5)
    net = NanoGPTSheets(n_layer=2, n_head=2, n_embd=32, vocab_size=100, block_size=16, bias=False)
    path = tmp_path_factory.mktemp("nanogpt") / "tau_50.0.pt"
    model_args = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16, "bias": False, "vocab_size": 100,
                  "dropout": 0.0}
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in net.state_dict().items()}, "model_args": model_args,
                "iter_num": 19000, "best_val_loss": torch.tensor(3.1), "config": {"tau": 50.0}}, path)
    return path


def test_toponets_nanogpt_weight_sheets(nanogpt_file):
    from topoviewer.weightmaps import sheet_weight_maps

    m = tv.load(nanogpt_file)
    assert m.meta["modality"] == "text" and m.sheet_names == ["h.0.mlp.c_fc", "h.1.mlp.c_fc"]
    assert m.sheets[1].grid_shape == (8, 16) and m.sheets[1].n_units == 128
    maps = sheet_weight_maps(m, "h.1.mlp.c_fc")
    assert maps["norm"].shape == (128,) and maps["pca"].shape == (128, 3)
    assert m.sheets[1].rasterise(maps["topoloss"]).shape == (8, 16)
    tok = token_responses(m, [[1, 2, 3, 4, 5]])
    assert tok["h.0.mlp.c_fc"].shape == (1, 128)
    with pytest.raises(TopoviewerError, match="language model"):
        m.responses(_image())


def test_nanogpt_model_args_must_match_the_weights(nanogpt_file, tmp_path):
    ck = torch.load(nanogpt_file, weights_only=True)
    ck["model_args"]["n_layer"] = 12
    bad = tmp_path / "tau_1.0.pt"
    torch.save(ck, bad)
    with pytest.raises(TopoviewerError, match="n_layer=12"):
        tv.load(bad)


# ---------------------------------------------------------------------------- Lee 2020 AlexNet + coordinates
def test_alexnet_state_dict_with_fc_coordinates(tmp_path):
    from topoviewer.families import load_foreign

    shapes = {"features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5), "features.6": (384, 192, 3, 3),
              "features.8": (256, 384, 3, 3), "features.10": (256, 256, 3, 3), "classifier.1": (128, 9216),
              "classifier.4": (96, 128), "classifier.6": (5, 96)}
    sd = {}
    for name, shape in shapes.items():
        sd[f"module.{name}.weight"] = torch.randn(shape) * 0.01
        sd[f"module.{name}.bias"] = torch.zeros(shape[0])
    coords = tmp_path / "fc.npz"
    rng = np.random.default_rng(0)
    np.savez(coords, fc6=rng.uniform(0, 10, (128, 2)), fc7=rng.uniform(0, 10, (96, 2)))
    with pytest.raises(TopoviewerError, match="--positions"):
        load_foreign({"state_dict": sd}, tmp_path / "lee.pth")
    m = load_foreign({"state_dict": sd}, tmp_path / "lee.pth", positions=coords)
    assert m.arch == "lee2020" and [s.label for s in m.sheets] == ["cIT", "aIT"]
    assert m.responses(_image(64, 64))["fc7"].shape == (1, 96)


# ---------------------------------------------------------------------------- hostile and damaged files

def test_checkpoint_that_would_run_code_is_refused(tmp_path, exploit):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": exploit(marker)}, path)
    with pytest.raises(TopoviewerError, match=r"refused to load .*evil\.pt.*(posix|nt|os)\.system"):
        tv.load(path)
    assert not marker.exists()


def test_args_of_an_unexpected_class_are_refused(tmp_path, exploit):
    path = tmp_path / "odd.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "args": exploit(tmp_path / "M2")}, path)
    with pytest.raises(TopoviewerError, match="refused"):
        tv.load(path)
    assert not (tmp_path / "M2").exists()


def test_truncated_checkpoint_gives_a_clear_error(vit_file, tmp_path):
    data = vit_file.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TopoviewerError, match="not a readable PyTorch checkpoint"):
        tv.load(path)


def test_unknown_layout_is_named(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder": {"w": torch.zeros(1)}}, path)
    with pytest.raises(TopoviewerError, match="unrecognised checkpoint layout.*encoder"):
        tv.load(path)
