"""The committed default model shows the face-patch hallmarks (measured here, not stored)."""

import numpy as np
import pytest

from topoviewer.analysis import correlation_by_distance, neighbour_agreement
from topoviewer.io import load
from topoviewer.pipeline import Stimulator, analyze


@pytest.fixture(scope="module")
def sample():
    return load("sample")


@pytest.fixture(scope="module")
def result(sample):
    return analyze(sample)


def test_default_is_a_small_tdann(sample):
    assert sample.arch == "tdann_small"
    assert [s.label for s in sample.sheets] == ["cIT", "aIT"]
    assert sample.meta["training"]["loss"] == "relative"
    assert [s.n_units for s in sample.sheets] == [2048, 2048]
    # diet v2 is harder than v1 (photo backdrops, occluders, blur, contrast/gamma, a clutter class):
    # 21-way chance is 5 %
    assert sample.meta["training"]["val_accuracy"] > 0.7
    assert sample.net.input_norm and len(sample.classes) == 21 and "clutter" in sample.classes
    # load("sample") skips the meta-device dry build (startup time): the shipped file passes it
    from topoviewer.io import _dry_build, read_header, sample_path

    _dry_build(read_header(sample_path()), sample.sheets, sample_path())


def test_cit_is_topographic(sample, result):
    cit = sample.sheets[0]
    curve = correlation_by_distance(result.responses[cit.name], cit.positions)
    assert curve.at(0, 1) >= 3 * curve.at(5, 6)
    assert neighbour_agreement(cit, result.sheets[cit.name].dprime["faces"], 1.0) >= 0.3


def test_cit_face_patch_and_purity(result):
    s = result.sheets["fc6"].summary
    assert 0.03 <= s["fraction_selective"]["faces"] <= 0.25
    assert s["largest_patch_voxels"]["faces"] >= 10
    purity = s["purity_curve"]["purity"]
    assert purity[0] >= 0.6
    assert min(p for p in purity[:3] if p is not None) < purity[0] / 2


def test_inside_patch_stimulation_drives_next_face_patch(sample):
    stim = Stimulator(sample, "cIT")
    inside = stim.stimulate(stim.site("inside")).next_patch_mean
    rng = np.random.default_rng(0)
    outside = [stim.stimulate(stim.site("outside", rng=rng)).next_patch_mean for _ in range(5)]
    assert inside >= 2 * np.mean(outside)


def test_default_was_trained_with_the_committed_recipe(sample):
    """`topoviewer train --recipe sample_data/recipe.json --seed 0` reproduces the shipped file's config."""
    from topoviewer.training import TrainConfig

    expected = TrainConfig.from_json("sample").to_json()
    stored = sample.meta["training"]["config"]
    ignore = {"checkpoint_every", "device"}  # do not change the trained weights
    assert {k: v for k, v in stored.items() if k not in ignore} == {
        k: v for k, v in expected.items() if k in stored and k not in ignore}
    # settings added since the file was trained (image folders, --init, DDP precision, …) are at their
    # defaults in the recipe: the procedural diet, fresh weights, one process
    newer = set(expected) - set(stored)
    assert {k: expected[k] for k in newer} == {k: TrainConfig().to_json()[k] for k in newer}
