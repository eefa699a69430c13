"""The paper's measurement protocol (issue 9): baseline Δ, outside and inside sites, decay
profiles, the spatial null, patch criteria, calibrated thresholds and the purity centre.

Every quantity is recomputed here with plain numpy, not with the functions under test.
"""

import json
import math

import numpy as np
import pytest

from topoviewer.analysis import (
    disc_is_clipped,
    inside_site,
    outside_site,
    permutation_p,
    purity_curve,
    spatial_null,
    stimulation_pattern,
)
from topoviewer.errors import TopoviewerError
from topoviewer.pipeline import sheet_maps
from topoviewer.sheet import Sheet

from test_stimulation import FakeModel, _lattice


# ---------------------------------------------------------------------- stimulation
def test_normal_density_decay_against_the_formula():
    sheet = Sheet("s", [(5.0, 5.0), (5.5, 5.0), (5.0, 6.5), (8.0, 5.0)], (10.0, 10.0))
    amax = np.array([2.0, 1.0, 3.0, 4.0])
    sigma = 0.8
    out = stimulation_pattern(sheet, (5.0, 5.0), amax, radius_mm=2.0, sigma_mm=sigma, decay="normal_density")
    d = np.array([0.0, 0.5, 1.5, 3.0])
    density = np.exp(-0.5 * (d / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(out, np.where(d <= 2.0, amax * density, 0.0), rtol=1e-12)
    peak1 = stimulation_pattern(sheet, (5.0, 5.0), amax, radius_mm=2.0, sigma_mm=1.0)
    assert peak1[0] == 2.0 and out[0] == pytest.approx(2.0 * 0.4986778, rel=1e-6)
    with pytest.raises(TopoviewerError, match="peak1, normal_density"):
        stimulation_pattern(sheet, (5.0, 5.0), amax, decay="flat")


def test_paper_outside_rule_only_needs_the_centre_outside():
    sheet = _lattice()  # 0.25 mm lattice on 10 × 10 mm
    voxels = np.zeros((20, 20), bool)  # 0.5 mm voxels
    voxels[:, :12] = True  # every voxel left of x = 6 mm is a patch voxel
    sites = np.array([outside_site(sheet, voxels, radius_mm=2.0, rng=s, rule="paper") for s in range(60)])
    col = np.floor(sites[:, 0] / 0.5).astype(int)
    row = np.floor(sites[:, 1] / 0.5).astype(int)
    assert not voxels[row, col].any()  # no centre falls in a patch voxel
    assert np.all((sites >= 2.0) & (sites <= 8.0))  # the disc is never clipped by the edge
    # the disc may overlap the patch: some sites lie closer than the radius to a patch voxel centre
    assert np.any(sites[:, 0] - 5.75 < 2.0)
    strict = np.array([outside_site(sheet, voxels, radius_mm=2.0, rng=s, rule="strict") for s in range(20)])
    assert np.all(strict[:, 0] - 5.75 > 2.0)  # the whole disc clear of every patch voxel centre


def test_strict_rule_fails_where_the_paper_rule_still_finds_sites():
    sheet = _lattice()
    voxels = np.zeros((20, 20), bool)
    voxels[:, :13] = True  # x < 6.5 mm
    with pytest.raises(TopoviewerError, match="strict rule"):
        outside_site(sheet, voxels, radius_mm=2.0, rng=0, rule="strict")  # x would need > 8.25 and ≤ 8
    x, _ = outside_site(sheet, voxels, radius_mm=2.0, rng=0, rule="paper")
    assert 6.5 <= x <= 8.0
    with pytest.raises(TopoviewerError, match="paper, strict"):
        outside_site(sheet, voxels, rule="loose")


def test_paper_rule_with_a_unit_patch_uses_the_nearest_unit():
    sheet = _lattice()
    patch = sheet.distances_to((5.0, 5.0)) <= 1.0
    for s in range(30):
        x, y = outside_site(sheet, patch, radius_mm=2.0, rng=s, rule="paper")
        nearest = np.argmin(np.hypot(sheet.positions[:, 0] - x, sheet.positions[:, 1] - y))
        assert not patch[nearest]


def test_inside_site_moves_off_the_edge_only_as_far_as_needed():
    sheet = _lattice()
    voxels = np.zeros((20, 20), bool)
    voxels[12:, 12:] = True  # a patch in the corner x, y ∈ [6, 10]
    site, clipped = inside_site(sheet, (9.0, 9.0), voxels, radius_mm=2.0)
    assert not clipped and not disc_is_clipped(sheet, site, 2.0)
    # own search: unclipped centres on a fine grid inside a patch voxel, nearest to the peak
    g = np.linspace(2.0, 8.0, 601)
    xx, yy = np.meshgrid(g, g)
    ok = voxels[np.minimum((yy / 0.5).astype(int), 19), np.minimum((xx / 0.5).astype(int), 19)]
    best = np.min(np.hypot(xx[ok] - 9.0, yy[ok] - 9.0))
    assert math.hypot(site[0] - 9.0, site[1] - 9.0) == pytest.approx(best, abs=0.03)
    assert site == pytest.approx((8.0, 8.0), abs=1e-9)
    # a peak whose disc fits stays put; a patch with no unclipped centre keeps the clipped peak
    assert inside_site(sheet, (5.0, 5.0), voxels, 2.0) == ((5.0, 5.0), False)
    corner = np.zeros((20, 20), bool)
    corner[18:, 18:] = True
    assert inside_site(sheet, (9.5, 9.5), corner, 2.0) == ((9.5, 9.5), True)


def test_baseline_and_delta_against_a_hand_computation():
    from topoviewer.pipeline import Stimulator
    from topoviewer.stimuli import StimulusSet

    model = FakeModel()
    model.sheets[1] = Sheet("b", [(0.5, 0.5), (1.5, 0.5)], (2.0, 2.0))  # room for a 1 mm peak disc
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (8, 4)).astype(np.float32)
    responses = {"a": images, "b": model.propagate("a", images, to="b")["b"]}
    stimuli = StimulusSet(images=np.zeros((8, 2, 2), np.float32), labels=np.repeat([0, 1], 4),
                          categories=["faces", "objects"], name="toy")
    stim = Stimulator(model, "a", stimuli, responses=responses, fwhm_mm=1.0, voxel_mm=1.0)
    r = stim.stimulate((0.5, 0.5), radius_mm=1.0)
    w, b = model.layers["b"]
    patch = stim.next_patch_units
    base = np.maximum(b, 0.0)[patch].mean()  # sheet a silent: b = ReLU(W·0 + bias)
    act = stim.max_activation * np.exp(-np.array([0.0, 1.0, 1.0, 2.0]) / 2.0) * np.array([1, 1, 1, 0])
    evoked = np.maximum(w @ act + b, 0.0)[patch].mean()
    assert r.baseline == pytest.approx(base) and r.next_patch_mean == pytest.approx(evoked)
    assert r.next_patch_delta == pytest.approx(evoked - base)
    assert r.stimulated_units == 3 and r.clipped is True and r.decay == "peak1"


# ---------------------------------------------------------------------- the spatial null
def _planted(n=900, n_images=60, seed=0, shuffle=False):
    """A sheet whose units within 1.6 mm of (5, 5) answer category 0 ("faces") strongly."""
    rng = np.random.default_rng(seed)
    sheet = Sheet.uniform("planted", n, (10.0, 10.0), seed=seed)
    labels = np.repeat([0, 1, 2], n_images // 3)
    r = rng.gamma(2.0, 0.5, (n_images, n))
    face_units = sheet.distances_to((5.0, 5.0)) < 1.6
    r[np.ix_(labels == 0, face_units)] += 1.5
    if shuffle:
        r = r[:, rng.permutation(n)]
    return sheet, r, labels, ["faces", "objects", "places"]


def test_permutation_p_against_the_definition():
    null = np.array([0.1, 0.5, 0.9, np.nan, 0.5])
    assert permutation_p(0.5, null) == (1 + 3) / (1 + 4)  # 0.5, 0.9, 0.5 are ≥ 0.5
    assert permutation_p(0.5, null, "less") == (1 + 3) / (1 + 4)
    assert permutation_p(2.0, null) == 1 / 5
    assert np.isnan(permutation_p(np.nan, null))


def test_null_of_a_planted_patch_is_significant():
    sheet, r, labels, cats = _planted()
    null = spatial_null(sheet, r, labels, cats, n_shuffles=200, seed=1)
    faces = null.per_category["faces"]
    assert faces["largest_patch_voxels"].p < 0.01
    assert faces["cluster_strength"].p < 0.01
    assert null.purity["purity_1_2mm"].p < 0.01
    assert null.near_far.p < 0.01


def test_null_of_a_shuffled_sheet_is_not_significant():
    """No topography: p > 0.05 in at least 90 % of repeats (each measure)."""
    ps = {"size": [], "purity": [], "strength": []}
    for rep in range(20):
        sheet, r, labels, cats = _planted(n=400, n_images=45, seed=100 + rep, shuffle=True)
        null = spatial_null(sheet, r, labels, cats, n_shuffles=40, seed=rep)
        ps["size"].append(null.per_category["faces"]["largest_patch_voxels"].p)
        ps["strength"].append(null.per_category["faces"]["peak_voxel_t"].p)
        ps["purity"].append(null.purity["purity_1_2mm"].p)
    for key, values in ps.items():
        assert np.mean(np.array(values) > 0.05) >= 0.9, (key, values)


def test_each_shuffle_equals_the_plain_analysis_of_a_shuffled_sheet():
    """The vectorised null recomputes exactly what the ordinary analysis gives on the shuffled arrangement."""
    sheet, r, labels, cats = _planted(n=500, n_images=45)
    null = spatial_null(sheet, r, labels, cats, n_shuffles=3, seed=7)
    rng = np.random.default_rng(7)  # the null's permutations, drawn the same way
    for k in range(3):
        perm = rng.permutation(sheet.n_units)
        plain = sheet_maps(Sheet("p", sheet.positions, sheet.extent_mm), r[:, perm], labels, cats).summary
        assert null.per_category["faces"]["largest_patch_voxels"].null[k] == plain["largest_patch_voxels"]["faces"]
        assert null.per_category["faces"]["peak_voxel_t"].null[k] == pytest.approx(plain["peak_voxel_t"]["faces"])
        assert null.per_category["faces"]["cluster_strength"].null[k] == pytest.approx(
            plain["cluster_strength"]["faces"])
        assert null.purity["purity_1_2mm"].null[k] == pytest.approx(plain["purity_curve"]["purity"][1])
        # near − far by hand: mean correlation of pairs < 1 mm minus pairs 5–6 mm apart
        x = r[:, perm]
        c = np.corrcoef(x.T)
        p = sheet.positions
        d = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
        iu = np.triu_indices(len(p), 1)
        dd, cc = d[iu], c[iu]
        expected = cc[dd < 1.0].mean() - cc[(dd >= 5.0) & (dd < 6.0)].mean()
        assert null.near_far.null[k] == pytest.approx(expected, abs=1e-9)


def test_null95_patch_criterion_and_summary(monkeypatch):
    sheet, r, labels, cats = _planted()
    maps = sheet_maps(sheet, r, labels, cats, null=30, patch_criterion="null95")
    s = maps.summary
    p95 = np.percentile(maps.null.per_category["faces"]["largest_patch_voxels"].null, 95)
    assert s["patch_criterion"]["min_voxels"]["faces"] == max(10, int(np.floor(p95)) + 1)
    assert s["patch"]["faces"] is (s["largest_patch_voxels"]["faces"] >= s["patch_criterion"]["min_voxels"]["faces"])
    assert s["patch"]["faces"] and s["null"]["n_shuffles"] == 30
    json.dumps(s)  # the summary stays JSON
    with pytest.raises(TopoviewerError, match="paper, null95"):
        sheet_maps(sheet, r, labels, cats, patch_criterion="strict")


def test_calibrated_threshold_in_the_summary():
    from topoviewer.analysis import calibrate_threshold

    sheet, r, labels, cats = _planted(n=300, n_images=45)
    s = sheet_maps(sheet, r, labels, cats, threshold="calibrated", gain=2.0).summary
    cal = calibrate_threshold(r, labels, cats, "faces", gain=2.0)
    assert s["dprime_threshold"]["faces"] == pytest.approx(cal.threshold)
    assert "gain 2" in s["dprime_threshold"]["rule"]
    xc, xo = r[labels == 0], r[labels != 0]
    dp = (xc.mean(0) - xo.mean(0)) / np.sqrt((xc.var(0, ddof=1) + xo.var(0, ddof=1)) / 2)
    assert s["fraction_selective"]["faces"] == pytest.approx(np.mean(dp > cal.threshold))


# ---------------------------------------------------------------------- purity centre
def test_purity_ties_go_to_the_highest_neighbourhood_dprime():
    # two 1 mm squares, both 100 % pure (3 selective units each); the second sits among higher d′
    pos = [(0.2, 0.5), (0.5, 0.5), (0.8, 0.5), (4.2, 0.5), (4.5, 0.5), (4.8, 0.5), (3.5, 0.5), (5.5, 0.5)]
    sheet = Sheet("s", pos, (8.0, 1.0))
    selective = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    values = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 0.5, 0.5])
    curve = purity_curve(sheet, selective, values=values)
    # own neighbourhood means: square 0: units 0–2 (mean 1.0); square 4: units 3–7 (mean 1.4)
    assert curve.centre == pytest.approx((4.5, 0.5))
    assert len(curve.tied_centres) == 2
    # the spread holds both curves: around (0.5, 0.5) the 0–1 mm bin is 3/3, around (4.5, 0.5) 3/3 and
    # the 1–2 mm bin 0/2 vs (0.5, 0.5)'s 0 units there (NaN → ignored)
    around_first = purity_curve(sheet, selective, values=-values)
    assert around_first.centre == pytest.approx((0.5, 0.5))
    lo, hi = curve.spread.T
    both = np.vstack([curve.purity, around_first.purity[: len(curve.purity)]])
    for k in range(both.shape[1]):  # own min / max over the finite values of each bin
        finite = both[np.isfinite(both[:, k]), k]
        expected = (finite.min(), finite.max()) if len(finite) else (np.nan, np.nan)
        np.testing.assert_allclose((lo[k], hi[k]), expected)


def test_purity_on_a_channel_grid_uses_one_unit_regions():
    sheet = Sheet.channel_grid("g", 64)
    selective = np.zeros(64, bool)
    selective[[0, 1, 8]] = True
    curve = purity_curve(sheet, selective)  # min_units defaults to 1 on a grid sheet
    assert curve.purity[0] == 1.0 and len(curve.tied_centres) == 3


# ---------------------------------------------------------------------- the command line on the default model
def test_cli_stimulate_outside_follows_the_paper_rule(capsys):
    from topoviewer.cli import main
    from topoviewer.io import load
    from topoviewer.pipeline import Stimulator

    assert main(["stimulate", "sample", "--site", "outside", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["outside_rule"] == "paper" and r["decay"] == "peak1"
    assert r["next_patch_delta"] == pytest.approx(r["next_patch_mean"] - r["baseline"])
    stim = Stimulator(load("sample"), "fc6")
    x, y = r["site_mm"]
    assert not stim.patch_mask["fc6"][int(y // 0.5), int(x // 0.5)]  # the centre is outside every patch
    d = np.hypot(*(stim.sheet.positions - (x, y)).T)
    assert r["stimulated_units"] == int(np.sum(d <= 2.0)) and not r["clipped"]


def test_cli_analyze_null_gives_p_values(capsys, tmp_path):
    from topoviewer.cli import main

    assert main(["analyze", "sample", "--null", "100", "--json", "--out", str(tmp_path)]) == 0
    s = json.loads(capsys.readouterr().out)["sheets"]["fc6"]
    null = s["null"]
    assert null["n_shuffles"] == 100
    faces = null["categories"]["faces"]
    for key in ("largest_patch_voxels", "peak_voxel_t", "cluster_strength"):
        assert 1 / 101 <= faces[key]["p"] <= 1.0
    assert faces["largest_patch_voxels"]["observed"] == s["largest_patch_voxels"]["faces"]
    for key in ("purity_1_2mm", "near_minus_far_correlation", "face_body_peak_distance_mm"):
        assert 1 / 101 <= null[key]["p"] <= 1.0
    assert len(null["purity_band"]["p95"]) == len(null["purity_band"]["distance_mm"])
    # the IT arrangement (faces–bodies–words near, places far), each measure against the same null
    relations = s["category_relations"]
    assert set(relations) == set(null["category_relations"]) == {"faces–bodies", "faces–words", "bodies–words",
                                                                 "faces–places"}
    assert relations["faces–bodies"]["peak_distance_mm"] == s["face_body_peak_distance_mm"]
    for pair, measured in relations.items():
        tests = null["category_relations"][pair]
        near = measured["claim"] == "near"
        assert measured["claim"] == ("far" if pair == "faces–places" else "near")
        assert tests["peak_distance_mm"]["observed"] == pytest.approx(measured["peak_distance_mm"])
        assert tests["peak_distance_mm"]["alternative"] == ("less" if near else "greater")
        assert tests["patch_overlap"]["observed"] == pytest.approx(measured["patch_overlap"], nan_ok=True)
        assert tests["patch_overlap"]["alternative"] == ("greater" if near else "less")
