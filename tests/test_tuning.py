"""Gratings and the early visual maps: tuning per unit, orientation maps, pinwheels, cardinal bias."""

import math

import numpy as np
import pytest

from topoviewer.analysis.tuning import (
    cardinal_bias,
    circular_tuning,
    column_spacing,
    find_pinwheels,
    grating_tuning,
    orientation_agreement,
    orientation_map,
    pinwheel_density,
    preference_difference_by_distance,
)
from topoviewer.errors import TopoviewerError
from topoviewer.sheet import Sheet
from topoviewer.stimuli import GRATING_HUES, gratings


# ----------------------------------------------------------------------------- the stimulus set

def test_gratings_have_the_documented_factors():
    g = gratings(size=32, fov_deg=4.0)
    assert g.images.shape == (8 * 6 * 4 * 5, 32, 32, 3)
    assert np.allclose(np.unique(g.orientation_deg), np.arange(8) * 22.5)
    assert np.allclose(np.unique(g.sf_cpi), np.geomspace(1, 8, 6))
    assert np.allclose(np.unique(g.phase_deg), [0, 90, 180, 270])
    assert g.colours == ["achromatic", *GRATING_HUES] and len(g.colours) == 5
    assert np.allclose(g.sf_cpd, g.sf_cpi / 4.0)
    assert g.factors()["sf_cycles_per_degree"] == pytest.approx((np.geomspace(1, 8, 6) / 4).tolist())
    # labels are the orientations, and every combination appears once
    assert g.categories[g.labels[0]] == "0°" and np.all(np.array(g.categories)[g.labels] ==
                                                        [f"{v:g}°" for v in g.orientation_deg])
    combos = np.column_stack([g.colour, g.sf_cpi, g.orientation_deg, g.phase_deg])
    assert len(np.unique(combos, axis=0)) == len(g)
    # the luminance formula, pixel by pixel, for one achromatic grating and one hue
    i = np.flatnonzero((g.colour == 0) & (g.orientation_deg == 45) & (g.phase_deg == 90))[2]
    f, c = g.sf_cpi[i], (np.arange(32) - 15.5) / 32
    x, y = c[None, :], -c[:, None]
    expected = 0.5 * (1 + np.cos(2 * np.pi * f * (-x * math.sin(math.pi / 4) + y * math.cos(math.pi / 4)) + math.pi / 2))
    assert np.allclose(g.images[i], expected[..., None], atol=1e-6)
    j = np.flatnonzero((g.colour == 1 + list(GRATING_HUES).index("cyan")) & (g.orientation_deg == 0))[0]
    assert np.allclose(g.images[j][..., 0], 0) and np.allclose(g.images[j][..., 1], g.images[j][..., 2])
    # θ = 0 is horizontal bars (constant along rows), 90° vertical bars (constant along columns)
    horizontal = g.images[(g.colour == 0) & (g.orientation_deg == 0)]
    vertical = g.images[(g.colour == 0) & (g.orientation_deg == 90)]
    assert horizontal.std(axis=2).max() < 1e-6 and vertical.std(axis=1).max() < 1e-6


def test_gratings_grey_set_and_bad_factors():
    g = gratings(size=16, orientations=12, sf_cpi=[1, 2, 3, 4, 5], phases=2, hues=())
    assert g.images.shape == (12 * 5 * 2, 16, 16) and g.colours == ["achromatic"] and g.sf_cpd is None
    with pytest.raises(TopoviewerError, match="grating hues must be distinct names among red"):
        gratings(size=16, hues=("red", "mauve"))
    with pytest.raises(TopoviewerError, match=r"cycles per image in \(0, 8\) for 16 px"):
        gratings(size=16, sf_cpi=[2, 8])
    with pytest.raises(TopoviewerError, match="would take .* GB"):
        gratings(size=512)


# ----------------------------------------------------------------------------- tuning per unit

def test_circular_tuning_by_hand():
    angles = [0, 45, 90, 135]
    pref, sel = circular_tuning([[1, 0, 0, 0], [2, 1, 0, 1], [0, 3, 1, 0], [5, 5, 5, 5]], angles)
    # [0, 3, 1, 0] at doubled angles 0, 90, 180, 270: z = 3i − 1, Σr = 4
    assert pref[:3] == pytest.approx([0, 0, math.degrees(math.atan2(3, -1)) / 2])
    assert sel == pytest.approx([1, 0.5, math.sqrt(10) / 4, 0])
    assert np.isnan(pref[3])
    hue, s = circular_tuning([0, 1, 0, 0], [0, 90, 180, 270], 360.0)
    assert hue == pytest.approx(90) and s == pytest.approx(1)


def test_a_gabor_unit_prefers_its_orientation_and_sf():
    g = gratings(size=32, hues=())
    c = (np.arange(32) - 15.5) / 32
    x, y = c[None, :], -c[:, None]
    responses = []
    for theta, f in ((30.0, g.sf_cpi.max() / 2), (100.0, np.unique(g.sf_cpi)[3])):
        t = math.radians(theta)
        gabor = np.exp(-(x**2 + y**2) / (2 * 0.15**2)) * np.cos(2 * np.pi * f * (-x * math.sin(t) + y * math.cos(t)))
        responses.append(np.maximum(0, (g.images - 0.5).reshape(len(g), -1) @ gabor.ravel()))
    tuning = grating_tuning(np.column_stack(responses), g.orientation_deg, g.sf_cpi, g.colour)
    assert abs(tuning.orientation_deg[0] - 30) < 5 and abs(tuning.orientation_deg[1] - 100) < 5
    assert tuning.osi.min() > 0.3
    assert tuning.sf_cpi[1] == np.unique(g.sf_cpi)[3]
    assert tuning.hue_deg is None and tuning.colour_selectivity is None


def test_grating_tuning_of_planted_units():
    g = gratings(size=16, sf_cpi=[1, 2, 3, 4, 5])
    sf_index = np.searchsorted(np.unique(g.sf_cpi), g.sf_cpi)
    ori = np.cos(np.radians(g.orientation_deg - 60)) ** 2 * np.exp(-((sf_index - 3) ** 2))
    hue = 1.0 + (g.colour == 1 + list(GRATING_HUES).index("chartreuse"))
    t = grating_tuning(np.column_stack([ori, hue]), g.orientation_deg, g.sf_cpi, g.colour, g.hue_deg)
    assert t.orientation_deg[0] == pytest.approx(60) and t.sf_cpi[0] == 4
    assert t.hue_deg[1] == pytest.approx(90) and t.colour_selectivity[1] == pytest.approx(1)
    # the curve at the preferred SF, minimum subtracted, vector-averaged by hand
    curve = np.cos(np.radians(np.arange(8) * 22.5 - 60)) ** 2
    r = curve - curve.min()
    assert t.osi[0] == pytest.approx(abs((r * np.exp(2j * np.radians(np.arange(8) * 22.5))).sum()) / r.sum())
    with pytest.raises(TopoviewerError, match="need achromatic gratings"):
        grating_tuning(np.ones((4, 1)), [0, 90, 0, 90], [1, 1, 1, 1], [1, 1, 1, 1], [0.0])


# ----------------------------------------------------------------------------- maps and pinwheels

def _lattice_sheet(extent=8.0, step=0.1):
    n = int(round(extent / step))
    centres = (np.arange(n) + 0.5) * step
    xx, yy = np.meshgrid(centres, centres)
    return Sheet("v1", np.column_stack([xx.ravel(), yy.ravel()]), (extent, extent))


def test_planted_pinwheel_lattice_positions_and_density():
    sheet = _lattice_sheet()
    x, y = sheet.positions.T
    k = 2 * np.pi / 2.0  # column spacing Λ = 2 mm
    z = np.sin(k * (x - 0.5)) + 1j * np.sin(k * (y - 0.5))  # zeros at 0.5, 1.5, …, 7.5 mm on both axes
    theta = np.degrees(np.angle(z)) / 2
    omap = orientation_map(sheet, theta)
    assert omap.grid.pixel_mm == pytest.approx(0.1) and omap.fwhm_mm == pytest.approx(0.2)
    pw = find_pinwheels(omap)
    planted = np.array([(a, b) for b in np.arange(0.5, 8, 1.0) for a in np.arange(0.5, 8, 1.0)])
    assert len(pw.charge) == len(planted)
    found = pw.positions_mm[np.lexsort((pw.positions_mm[:, 0], pw.positions_mm[:, 1]))]
    assert np.abs(found - planted).max() < 0.1 + 1e-9
    # charges alternate like the signs of cos(k(x − .5))·cos(k(y − .5)), the Jacobian of z at each zero
    sign = np.sign(np.cos(k * (found[:, 0] - 0.5)) * np.cos(k * (found[:, 1] - 0.5)))
    assert np.array_equal(np.sign(pw.charge[np.lexsort((pw.positions_mm[:, 0], pw.positions_mm[:, 1]))]), sign)
    spacing = column_spacing(omap)
    assert spacing == pytest.approx(2.0, rel=0.02)
    area = 79 * 79 * 0.1**2  # plaquettes between the 80 × 80 pixel centres
    assert pw.area_mm2 == pytest.approx(area)
    assert pinwheel_density(pw, spacing) == pytest.approx(64 * spacing**2 / area)
    assert pinwheel_density(pw, 2.0) == pytest.approx(4 * 64 / 62.41)


def test_pinwheel_charges_follow_the_sense_of_rotation():
    sheet = _lattice_sheet(6.0, 0.2)
    x, y = sheet.positions.T
    z = ((x - 1.9) + 1j * (y - 2.1)) * ((x - 4.1) - 1j * (y - 3.9))  # +1 winding, then −1
    pw = find_pinwheels(orientation_map(sheet, np.degrees(np.angle(z)) / 2))
    order = np.argsort(pw.positions_mm[:, 0])
    assert pw.charge[order].tolist() == [0.5, -0.5]
    assert np.abs(pw.positions_mm[order] - [[1.9, 2.1], [4.1, 3.9]]).max() <= 0.2


def test_preference_difference_agreement_and_cardinal_bias_by_hand():
    sheet = Sheet("line", [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]], (2.0, 2.0))
    theta = [0.0, 30.0, 170.0]
    d, diff, n = preference_difference_by_distance(sheet, theta, bin_mm=1.0, max_distance_mm=3.0)
    assert d.tolist() == [0.5, 1.5, 2.5] and n.tolist() == [0, 2, 1]
    assert np.isnan(diff[0]) and diff[1:] == pytest.approx([(30 + 40) / 2, 10])
    assert orientation_agreement(sheet, theta, radius_mm=1.5) == pytest.approx(
        (math.cos(math.radians(60)) + math.cos(math.radians(280))) / 2)
    bias = cardinal_bias([0, 5, 90, 45, 130, 60, 20, np.nan])
    assert bias == pytest.approx({"fraction_cardinal": 3 / 7, "fraction_oblique": 2 / 7, "bias": 1 / 5})


def test_column_spacing_of_a_map_without_columns_is_refused():
    sheet = _lattice_sheet(8.0, 0.2)
    theta = np.random.default_rng(0).uniform(0, 180, sheet.n_units)
    with pytest.raises(TopoviewerError, match="orientation map is not periodic: its spectrum peaks at a wavelength"):
        column_spacing(orientation_map(sheet, theta, fwhm_mm=1.0))


# ----------------------------------------------------------------------------- every model, CLI

def test_early_maps_on_a_channel_grid_with_colour_and_on_retinotopic_conv_positions():
    import torch

    from topoviewer.families import build
    from topoviewer.pipeline import analyze

    torch.manual_seed(0)
    rgb = build("toponet_small", {"in_channels": 3, "widths": [8, 8, 16, 16]})
    a = analyze(rgb, gratings(size=32, sf_cpi=[2, 3, 4, 6, 8], phases=4))
    conv3 = a.sheets["conv3"]
    assert conv3.sheet.grid_shape == (4, 4) and conv3.early.tuning.hue_deg.shape == (16,)
    colour = conv3.summary["gratings"]["colour"]
    assert colour["applicable"] and sum(colour["preferred_hue"].values()) == conv3.summary["gratings"]["responsive_units"]
    assert a.summary()["gratings"]["colours"] == ["achromatic", *GRATING_HUES]
    with pytest.raises(TopoviewerError, match="the spatial null and --patch-criterion null95 apply to category"):
        analyze(rgb, gratings(size=16, sf_cpi=[2, 3, 4, 5, 6], hues=()), null=10)
    resnet = build("resnet", {"input_size": 32, "resize_size": 32.0})
    grey = gratings(size=32, sf_cpi=[2, 3, 4, 6, 8], phases=2, hues=())
    layer1 = analyze(resnet, grey, sheets=["layer1.0"]).sheets["layer1.0"]
    assert layer1.early.orientation.z.shape == layer1.sheet.grid(layer1.early.orientation.grid.pixel_mm).shape
    g = layer1.summary["gratings"]
    assert g["colour"] == {"applicable": False, "reason": "no chromatic gratings in the stimulus set"}
    assert g["orientation_map"]["pinwheels"] == len(layer1.early.pinwheels.charge) > 0


def test_cli_analyze_on_gratings_writes_the_maps_and_pinwheels(tiny_model_file, tmp_path, capsys):
    """(A bad --fov-deg is a case of tests/test_fuzz.py.)"""
    import json

    from topoviewer.cli import main

    out = tmp_path / "early"
    assert main(["analyze", str(tiny_model_file), "--stimuli", "gratings", "--fov-deg", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "orientation map: " in printed and " pinwheels; " in printed
    assert "colour: 1-channel (grayscale) model: hue reaches it only as luminance" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gratings"]["sf_cycles_per_degree"] == pytest.approx((np.geomspace(1, 8, 6) / 8).tolist())
    for name, block in summary["sheets"].items():
        with np.load(out / f"{name}.npz") as npz:
            assert {"orientation", "osi", "sf", "colour", "pinwheels", "orientation_map"} <= set(npz.files)
            assert npz["orientation"].shape == npz["osi"].shape == (block["units"],)
            assert np.all(np.isnan(npz["colour"]))
            assert npz["pinwheels"].tolist() == block["gratings"]["orientation_map"]["pinwheels_mm"]
        assert sum(block["gratings"]["sf"]["preferred_cycles_per_degree"].values()) == block["gratings"]["responsive_units"]
