"""Face-identity stimuli, viewpoint invariance, identity-selective units, decoding, lesions and
unit↔neuron matching (issue 16), each against an independent computation written here."""

import json

import numpy as np
import pytest
import torch

from topoviewer.analysis.identity import (
    anova_f,
    decode,
    identity_tuning_width,
    identity_units,
    orientation_tuning_depth,
    population_indices,
)
from topoviewer.analysis.lesion import lesion_effect, random_lesions
from topoviewer.analysis.matching import match_neurons, neuron_means, noise_ceiling, transfer_decode
from topoviewer.errors import TopoviewerError
from topoviewer.stimuli import face_identities, face_views, transform
from topoviewer.stimuli.faces import FACE_VIEW_YAWS, mirror_views, view_index


# ------------------------------------------------------------------ stimuli
@pytest.fixture(scope="module")
def views():
    return face_views(size=32, identities=3, seed=5)


def test_face_views_layout_mirrors_and_determinism(views):
    n = len(FACE_VIEW_YAWS)
    assert views.images.shape == (3 * n, 32, 32)
    assert list(views.labels) == [k for k in range(3) for _ in range(n)]
    assert np.array_equal(views.images, face_views(size=32, identities=3, seed=5).images)
    assert not np.array_equal(views.images, face_views(size=32, identities=3, seed=6).images)
    assert np.array_equal(view_index(views), np.tile(np.arange(n), 3))
    mirror = mirror_views()
    assert [FACE_VIEW_YAWS[m] for m in mirror] == [-y for y in FACE_VIEW_YAWS]
    # −45° is the mirror image of +45°: it matches the flipped +45° image better than the unflipped one
    left, right = views.images[FACE_VIEW_YAWS.index(-45.0)], views.images[FACE_VIEW_YAWS.index(45.0)]
    r_flip = np.corrcoef(left.ravel(), right[:, ::-1].ravel())[0, 1]
    r_same = np.corrcoef(left.ravel(), right.ravel())[0, 1]
    assert r_flip > r_same + 0.2


def test_cartoon_is_flat_bands_of_mean_grey_with_dark_outlines():
    from scipy.ndimage import gaussian_filter, sobel

    s = face_identities(identities=3, per_identity=2, size=64, seed=4)
    cartoon = transform(s, "cartoon").images
    for image, out in zip(s.images, cartoon):
        smooth = gaussian_filter(image, 1.0, mode="nearest")  # σ = 64 px / 64
        grad = np.hypot(sobel(smooth, 0, mode="nearest"), sobel(smooth, 1, mode="nearest"))
        outline = grad > np.quantile(grad, 0.9)
        assert out[outline].max() == 0.0 and abs(outline.mean() - 0.1) < 0.01
        quartiles = np.quantile(smooth, [0.25, 0.5, 0.75])
        band = np.searchsorted(quartiles, smooth, side="right")
        for b in range(4):  # each band painted with its own mean grey, the bands in order
            np.testing.assert_allclose(out[(band == b) & ~outline], smooth[band == b].mean(), rtol=1e-5)
        assert len(np.unique(out[~outline])) == 4


def test_face_identities_and_transforms():
    s = face_identities(size=32, identities=4, per_identity=3, seed=1)
    assert s.images.shape == (12, 32, 32) and s.categories == ["id000", "id001", "id002", "id003"]
    assert np.array_equal(s.images, face_identities(size=32, identities=4, per_identity=3, seed=1).images)
    inv = transform(s, "invert")
    assert np.array_equal(inv.images, np.rot90(s.images, 2, axes=(1, 2)))
    assert inv.name.endswith("|invert") and np.array_equal(inv.labels, s.labels)
    mooney = transform(s, "mooney").images
    assert set(np.unique(mooney)) == {0.0, 1.0}
    assert abs(mooney.mean() - 0.5) < 0.05
    blur = transform(s, "blur").images
    lap = lambda a: np.abs(np.diff(a, 2, axis=2)).mean()  # noqa: E731
    assert lap(blur) < 0.5 * lap(s.images)
    with pytest.raises(TopoviewerError, match="unknown transform 'caricature'; expected one of mooney, invert, "
                                              "cartoon, blur"):
        transform(s, "caricature")
    with pytest.raises(TopoviewerError, match="at least 2 identities"):
        face_identities(size=32, identities=1)


# ------------------------------------------------------------------ tuning and population
def test_tuning_width_and_depth_by_hand():
    rng = np.random.default_rng(0)
    yaws = FACE_VIEW_YAWS
    ident = np.repeat(np.arange(4), len(yaws))
    view = np.tile(np.arange(len(yaws)), 4)
    r = rng.uniform(0, 1, (len(ident), 6))
    width = identity_tuning_width(r, ident)
    depth = orientation_tuning_depth(r, view, yaws)
    for u in range(6):
        means = sorted((r[ident == i, u].mean() for i in range(4)), reverse=True)
        assert width[u] == sum(m > means[0] / 2 for m in means)
        f = r[view == yaws.index(0.0), u].mean()
        p = max(r[view == yaws.index(-90.0), u].mean(), r[view == yaws.index(90.0), u].mean())
        assert depth[u] == pytest.approx((f - p) / (f + p))
    assert np.isnan(identity_tuning_width(-r, ident)).all()
    with pytest.raises(TopoviewerError, match=r"needs the views 0, -90 and 90 degrees; missing \[-90.0\]"):
        orientation_tuning_depth(r, view, [0.0, 90.0, 45.0] + [1.0] * 6)


def test_population_indices_against_pair_loop():
    rng = np.random.default_rng(1)
    n_id, n_view = 4, len(FACE_VIEW_YAWS)
    ident = np.repeat(np.arange(n_id), n_view)
    view = np.tile(np.arange(n_view), n_id)
    mirror = mirror_views()
    # a population with identity, view and mirror-symmetric components
    r = (rng.normal(size=(n_id, 40))[ident] + rng.normal(size=(n_view, 40))[view]
         + rng.normal(size=(n_view, 40))[np.minimum(view, mirror[view])] + rng.normal(size=(len(view), 40)))
    got = population_indices(r, ident, view, mirror)
    groups = {"sid": [], "did": [], "sv": [], "dv": [], "mir": [], "nomir": []}
    for a in range(len(r)):
        for b in range(len(r)):
            if a == b:
                continue
            c = np.corrcoef(r[a], r[b])[0, 1]
            if view[a] != view[b]:
                groups["sid" if ident[a] == ident[b] else "did"].append(c)
            if ident[a] != ident[b]:
                groups["sv" if view[a] == view[b] else "dv"].append(c)
                if view[a] != view[b]:
                    groups["mir" if mirror[view[a]] == view[b] else "nomir"].append(c)
    m = {k: np.mean(v) for k, v in groups.items()}
    assert got["identity"] == pytest.approx(m["sid"] - m["did"])
    assert got["view"] == pytest.approx(m["sv"] - m["dv"])
    assert got["mirror"] == pytest.approx(m["mir"] - m["nomir"])
    assert got["mirror"] > 0.1 and got["identity"] > 0.1


# ------------------------------------------------------------------ identity-selective units
def test_anova_matches_scipy():
    from scipy.stats import f_oneway

    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(5), [4, 5, 6, 4, 5])
    r = rng.normal(size=(len(labels), 7)) + 0.8 * rng.normal(size=(5, 7))[labels]
    F, p = anova_f(r, labels)
    for u in range(7):
        ref = f_oneway(*(r[labels == k, u] for k in range(5)))
        assert F[u] == pytest.approx(ref.statistic) and p[u] == pytest.approx(ref.pvalue)


def test_identity_units_si_mi_by_hand():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(50), 4)
    r = rng.normal(0, 0.1, (200, 3))
    r[labels == 2, 0] += 3.0                       # unit 0: one identity → SI
    r[np.isin(labels, [1, 7]), 1] += 3.0           # unit 1: two identities → MI
    units = identity_units(r, labels)
    assert list(units.selective) == [True, True, False]
    assert list(units.single) == [True, False, False] and list(units.multiple) == [False, True, False]
    for u in (0, 1):
        means = np.array([r[labels == k, u].mean() for k in range(50)])
        hand = np.flatnonzero(means > means.mean() + 2 * means.std(ddof=1))
        assert list(np.flatnonzero(units.encoded[u])) == list(hand)
    assert list(np.flatnonzero(units.encoded[1])) == [1, 7]
    s = units.summary()
    assert s["single_identity"] == pytest.approx(1 / 3) and s["mi_identities_max"] == 2


def test_region_coding_by_hand():
    from itertools import combinations

    from topoviewer.analysis.identity import IdentityUnits, identity_centroids, region_coding

    rng = np.random.default_rng(1)
    centroids = np.concatenate([rng.normal(0, 0.3, (4, 5)), rng.normal(0, 0.3, (4, 5)) + 10])  # two clusters
    encoded = np.zeros((5, 8), bool)
    encoded[0, [0, 1]] = True       # two neighbours
    encoded[1, [0, 4]] = True       # one from each cluster
    encoded[2, [4, 5, 6, 7]] = True  # a whole cluster: region-based
    encoded[3, [2]] = True          # SI: not an MI unit
    units = IdentityUnits(np.ones(5), np.zeros(5), np.array([True, True, True, True, False]), encoded, list("abcdefgh"))
    out = region_coding(units, centroids)
    assert list(out.units) == [0, 1, 2] and list(out.n_encoded) == [2, 2, 4]

    def spread(ids):
        pairs = list(combinations(ids, 2))
        return np.mean([np.linalg.norm(centroids[a] - centroids[b]) for a, b in pairs])

    for u, ids in zip(out.units, ([0, 1], [0, 4], [4, 5, 6, 7])):
        every = [spread(c) for c in combinations(range(8), len(ids))]  # exact null: every set of that size
        assert out.distance[list(out.units).index(u)] == pytest.approx(spread(ids))
        assert out.p[list(out.units).index(u)] == pytest.approx(np.mean(np.array(every) <= spread(ids) + 1e-12))
        assert out.null_mean[list(out.units).index(u)] == pytest.approx(np.mean(every))
    # a pair is never below 0.05 here (28 pairs, 12 within a cluster); a whole cluster is (≤ 2 of 70 sets)
    assert list(out.feature) == [False, False, True] and out.p[2] <= 2 / 70
    assert out.summary()["feature_mi"] == pytest.approx(1 / 3)
    # drawn at random when there are more sets than permutations: p = (1 + hits) / (1 + N), at least 1/(N+1)
    drawn = region_coding(units, centroids, n_permutations=10, seed=0)
    assert drawn.p[2] >= 1 / 11 and drawn.p[1] > 0.5
    # the feature space: identity means, each unit z-scored over identities, constant units dropped
    r = rng.random((12, 3))
    r[:, 2] = 1.0
    labels = np.repeat([0, 1, 2], 4)
    means = np.array([r[labels == k, :2].mean(0) for k in range(3)])
    np.testing.assert_allclose(identity_centroids(r, labels), (means - means.mean(0)) / means.std(0))
    with pytest.raises(TopoviewerError, match=r"centroids must be \(identities, features\) with 8 rows"):
        region_coding(units, centroids[:5])


def test_decode_against_sklearn_and_chance():
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(4), 15)
    r = rng.normal(size=(60, 20))
    r[:, :5] += 3.0 * rng.normal(size=(4, 5))[labels]
    got = decode(r, labels, units=np.arange(10), folds=5, seed=1)
    ref = cross_val_score(make_pipeline(StandardScaler(), LinearSVC(max_iter=1000)), r[:, :10], labels,
                          cv=StratifiedKFold(5, shuffle=True, random_state=1))
    assert got.accuracy == pytest.approx(ref.mean()) and got.accuracy > 0.8
    assert decode(r, labels, units=np.arange(10, 20)).accuracy < 0.5   # noise units: near chance 0.25
    # more units than training images: the dual problem, solved in the training images' span, gives the
    # fold accuracies of scikit-learn's own fit on every unit (same coordinate order: random_state = seed)
    wide = np.hstack([r, rng.normal(size=(60, 100))])
    wide[:, 20:40] += 0.8 * rng.normal(size=(4, 20))[labels]
    got = decode(wide, labels, folds=4, seed=2, workers=2)
    ref = cross_val_score(make_pipeline(StandardScaler(), LinearSVC(max_iter=1000, random_state=2)), wide, labels,
                          cv=StratifiedKFold(4, shuffle=True, random_state=2))
    np.testing.assert_allclose(got.folds, ref)
    assert got.n_units == 120 and 0.5 < got.accuracy < 1
    assert decode(r, labels, units=np.zeros(20, bool)).accuracy is None
    with pytest.raises(TopoviewerError, match="5-fold decoding needs ≥ 2 classes with ≥ 5 images each"):
        decode(r[:12], labels[:12])


# ------------------------------------------------------------------ lesions
def _two_class_model():
    """A one-sheet net: units 0–7 carry class A (left half bright), 8–15 class B, 16–63 nothing."""
    from topoviewer.model import SheetNet, TopoModel
    from topoviewer.sheet import Sheet

    class Net(SheetNet):
        n_sheets, unit_modes = 1, ("flat",)

        def __init__(self):
            super().__init__()
            w = torch.zeros(64, 64)
            left = torch.zeros(8, 8)
            left[:, :4] = 1.0
            w[:8] = left.flatten()
            w[8:16] = left.flip(1).flatten()
            w[16:] = torch.randn(48, 64, generator=torch.Generator().manual_seed(0)) * 0.01
            self.w = torch.nn.Parameter(w)
            h = torch.zeros(2, 64)
            h[0, :8] = h[1, 8:16] = 1.0
            self.h = torch.nn.Parameter(h)

        def stage(self, k, x):
            return torch.relu(x.flatten(1) @ self.w.T)

        def head(self, x):
            return x @ self.h.T + torch.tensor([0.0, 0.01])

    return TopoModel(Net(), [Sheet.uniform("s", 64)], "toy", {}, 8, mean=(0.0,), std=(1.0,), classes=["A", "B"])


def _two_class_stimuli():
    """20 images for :func:`_two_class_model`: 10 of class A (left half bright), 10 of class B."""
    from topoviewer.stimuli import StimulusSet

    images = np.random.default_rng(0).uniform(0, 0.1, (20, 8, 8)).astype(np.float32)
    images[:10, :, :4] += 0.8
    images[10:, :, 4:] += 0.8
    return StimulusSet(images, np.repeat([0, 1], 10), ["A", "B"], "toy")


def test_lesion_removes_the_class_its_units_carry():
    from topoviewer.stimuli import StimulusSet

    model, stimuli = _two_class_model(), _two_class_stimuli()
    images = stimuli.images
    effect = lesion_effect(model, "s", np.arange(8), stimuli, n_random=20, seed=0)
    assert list(effect.before) == [1.0, 1.0]
    assert list(effect.after) == [0.0, 1.0]
    assert (effect.random[:, 0] == 1.0).all()        # 8 random units of 64 never take all of class A
    assert effect.p[0] == pytest.approx(1 / 21) and effect.p[1] == 1.0
    # the lesion reaches responses and is undone after the block
    with model.lesion("s", np.arange(8)):
        assert (model.responses(images)["s"][:, :8] == 0).all()
    assert (model.responses(images)["s"][:10, :8] > 0).all()
    with pytest.raises(TopoviewerError, match=r"lesioned units of sheet 's' must be unit indices in \[0, 64\)"):
        with model.lesion("s", [64]):
            pass
    bad = StimulusSet(images, np.repeat([0, 1], 10), ["A", "C"], "toy")
    with pytest.raises(TopoviewerError, match="the model's classifier has no class C"):
        lesion_effect(model, "s", [0], bad)


def test_region_units_by_hand():
    """Units inside drawn polygons: a triangle and a rectangle on a 10 × 10 grid, checked by inequalities."""
    from topoviewer.analysis.lesion import region_units
    from topoviewer.sheet import Sheet

    x, y = np.meshgrid(np.arange(10) + 0.5, np.arange(10) + 0.5)
    sheet = Sheet("s", np.column_stack([x.ravel(), y.ravel()]), (10.0, 10.0))
    triangle = [(0, 0), (6.2, 0), (0, 6.2)]
    rect = [(2.1, 2.1), (4.9, 2.1), (4.9, 7.9), (2.1, 7.9)]
    px, py = sheet.positions.T
    in_triangle = (px > 0) & (py > 0) & (px + py < 6.2)
    in_rect = (px > 2.1) & (px < 4.9) & (py > 2.1) & (py < 7.9)
    np.testing.assert_array_equal(region_units(sheet, [triangle]), in_triangle)
    np.testing.assert_array_equal(region_units(sheet, [rect[::-1]]), in_rect)      # either winding
    both = region_units(sheet, [triangle, rect])
    np.testing.assert_array_equal(both, in_triangle | in_rect)                   # a unit in both counts once
    assert in_triangle.sum() == 21 and in_rect.sum() == 18 and both.sum() == 21 + 18 - 3
    assert not region_units(sheet, []).any()
    with pytest.raises(TopoviewerError, match=r"region 1 must be a polygon of ≥ 3 finite \(x, y\) vertices, "
                                              r"got shape \(2, 2\)"):
        region_units(sheet, [triangle, [(0, 0), (1, 1)]])


def test_lesion_suite_of_given_units_is_lesion_effect():
    """``run_suite("lesion", units=…)``: the given units instead of face patches, the numbers of lesion_effect."""
    from topoviewer.suites import run_suite, suite_curves, suite_table

    model, stimuli = _two_class_model(), _two_class_stimuli()
    mask = np.zeros(64, bool)
    mask[:8] = True
    out = run_suite("lesion", model, stimuli, units={"s": mask}, n_random=4, seed=2, control="units")
    want = lesion_effect(model, "s", np.arange(8), stimuli, n_random=4, seed=2, control="units").summary()
    assert out["sheets"] == {"s": want} and out["category"] == "drawn region"
    assert want["categories"]["A"]["after"] == 0.0
    assert suite_table(out)[1][0] == ["s", "A", 8, 1.0, 0.0, want["categories"]["A"]["random_mean"],
                                      want["categories"]["A"]["p"]]
    assert suite_curves(out) == (["s"], {})  # no identity decoding: nothing to draw along the hierarchy


def test_lesion_decoding_against_decode_by_hand(tiny_model):
    from topoviewer.analysis.identity import decode
    from topoviewer.analysis.lesion import lesion_decoding, random_lesions

    stimuli = face_identities(size=32, identities=4, per_identity=6, seed=0)
    first, last = tiny_model.sheet_names[0], tiny_model.sheet_names[-1]
    units = np.arange(40)
    out = lesion_decoding(tiny_model, first, units, stimuli, n_random=2, seed=3, folds=3)
    assert out.read_out == last and out.chance == 0.25 and out.n_units == 40
    by_hand = decode(tiny_model.responses(stimuli.images)[last], stimuli.labels, folds=3, seed=3).accuracy
    assert out.before == by_hand
    with tiny_model.lesion(first, units):
        assert out.after == decode(tiny_model.responses(stimuli.images)[last], stimuli.labels, folds=3, seed=3).accuracy
    lesions = random_lesions(tiny_model.sheet(first), 40, 2, "units", 3)
    for acc, lesion in zip(out.random, lesions):
        with tiny_model.lesion(first, lesion):
            assert acc == decode(tiny_model.responses(stimuli.images)[last], stimuli.labels, folds=3, seed=3).accuracy
    drop, drops = out.before - out.after, out.before - out.random
    assert out.p == pytest.approx((1 + np.sum(drops >= drop - 1e-12)) / 3)
    # silencing the whole read-out sheet leaves nothing to decode: chance (every image gets one class)
    whole = lesion_decoding(tiny_model, last, np.arange(tiny_model.sheet(last).n_units), stimuli, n_random=0, folds=3)
    assert whole.after == pytest.approx(0.25)
    with pytest.raises(TopoviewerError, match=f"decoding from '{first}' cannot see a lesion of '{last}'"):
        lesion_decoding(tiny_model, last, units, stimuli, read_out=first)


def test_random_lesions_are_size_matched_units_or_regions():
    from topoviewer.sheet import Sheet

    sheet = Sheet.uniform("s", 200, seed=1)
    for lesion in random_lesions(sheet, 30, 5, "region", seed=0):
        assert len(set(lesion)) == 30
        # a region: the 30 units nearest to one of them (a unit is its own nearest, distance 0)
        centre = sheet.positions[lesion[0]]
        d = sheet.distances_to(centre)
        assert d[lesion[0]] == 0 and d[lesion].max() <= np.delete(d, lesion).min()
    units = random_lesions(sheet, 30, 5, "units", seed=0)
    assert all(len(set(u)) == 30 for u in units) and len({tuple(sorted(u)) for u in units}) == 5
    with pytest.raises(TopoviewerError, match="random lesion control must be one of units, region, got 'disc'"):
        random_lesions(sheet, 3, 1, "disc")


def test_lesion_works_through_the_protocol(tiny_model):
    """Every path of the protocol sees a lesion: responses, propagate and logits; lesions nest."""
    images = np.random.default_rng(0).uniform(0, 1, (3, 32, 32)).astype(np.float32)
    first, second = tiny_model.sheet_names[:2]
    base = tiny_model.responses(images)
    with tiny_model.lesion(first, np.arange(100)):
        with tiny_model.lesion(first, np.arange(100, 256)):
            silent = tiny_model.responses(images)
            assert (silent[first] == 0).all()
            clamped = tiny_model.propagate(first, base[first])[second]
        partial = tiny_model.responses(images)[first]
        assert (partial[:, :100] == 0).all() and np.allclose(partial[:, 100:], base[first][:, 100:])
    # lesioned units stay silent when clamped: the next sheet sees the silent sheet
    zeros = tiny_model.propagate(first, np.zeros_like(base[first]))[second]
    assert np.allclose(clamped, zeros, atol=1e-6) and np.allclose(silent[second], zeros, atol=1e-5)
    assert not np.allclose(silent[second], base[second])
    assert np.allclose(tiny_model.responses(images)[second], base[second])


# ------------------------------------------------------------------ matching
def test_noise_ceiling_by_hand():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(30, 1, 1)) + rng.normal(size=(30, 2, 6))
    got = noise_ceiling(y)
    for j in range(2):
        rho = np.corrcoef(y[:, j, 0::2].mean(axis=1), y[:, j, 1::2].mean(axis=1))[0, 1]
        assert got[j] == pytest.approx(2 * rho / (1 + rho))


def test_match_recovers_synthetic_neurons():
    """Neurons = known units + noise (noise ceiling ≈ 0.6): the right unit is found ≥ 90 % of the time."""
    rng = np.random.default_rng(6)
    n_stim, n_units, n_neurons, reps = 120, 400, 40, 4
    latent = rng.normal(size=(n_stim, 20))
    units = np.maximum(latent @ rng.normal(size=(20, n_units)) + rng.normal(size=(n_stim, n_units)), 0)
    truth = rng.choice(n_units, n_neurons, replace=False)
    signal = (units[:, truth] - units[:, truth].mean(0)) / units[:, truth].std(0)
    neural = signal[:, :, None] + 1.3 * rng.normal(size=(n_stim, n_neurons, reps))
    match = match_neurons(units, neural, n_permutations=50, seed=0)
    assert (match.unit == truth).mean() >= 0.9
    assert 0.4 < np.median(match.ceiling) < 0.8
    assert (match.p <= 1 / 51 + 1e-12).all()
    # the r of the best unit is the plain Pearson r
    j = 0
    assert match.r[j] == pytest.approx(np.corrcoef(units[:, match.unit[j]], neural[:, j].mean(axis=1))[0, 1])
    pure_noise = match_neurons(units, rng.normal(size=(n_stim, 5)), n_permutations=50, seed=0)
    np.testing.assert_array_equal(neuron_means(neural), neural.mean(axis=2))
    assert np.median(pure_noise.p) > 0.1
    labels = (latent[:, 0] > 0).astype(int)
    assert transfer_decode(units, neural, labels, match) > 0.7
    with pytest.raises(TopoviewerError, match=r"with 120 stimuli \(one row per image\), got shape \(119, 40, 4\)"):
        match_neurons(units, neural[:-1])
    with pytest.raises(TopoviewerError, match="matching 200,000,000 units to 1 neurons needs 6.4 GB"):
        match_neurons(np.broadcast_to(np.float32(0), (3, 200_000_000)), np.zeros((3, 1)))


def test_match_suite_tuning_curves(tiny_model):
    """The tuning curves of a matched neuron and its unit: both z-scored over the stimuli, r their mean product."""
    from topoviewer.suites import match_curves, match_suite

    stimuli = face_identities(size=32, identities=3, per_identity=4, seed=1)
    resp = tiny_model.responses(stimuli.images)
    last = tiny_model.sheet_names[-1]
    rng = np.random.default_rng(3)
    truth = resp[last][:, [5, 40]]
    neural = truth[:, :, None] + 0.05 * truth.std(0)[None, :, None] * rng.normal(size=(12, 2, 3))
    neural = np.concatenate([neural, np.ones((12, 1, 3))], axis=1)  # a constant neuron: no match
    out = match_suite(tiny_model, stimuli, neural, n_permutations=0, responses=resp)
    assert out == match_suite(tiny_model, stimuli, neural, n_permutations=0)  # the same as computing them
    n = out["neurons"][1]
    unit, neuron = match_curves(out, resp, neural, 1)
    u, y = resp[n["sheet"]][:, n["unit"]].astype(np.float64), neural[:, 1].mean(axis=1)
    np.testing.assert_allclose(unit, (u - u.mean()) / u.std())
    np.testing.assert_allclose(neuron, (y - y.mean()) / y.std())
    assert np.mean(unit * neuron) == pytest.approx(n["r"])
    with pytest.raises(TopoviewerError, match=r"neuron 2 has no matched unit \(constant responses\)"):
        match_curves(out, resp, neural, 2)


# ------------------------------------------------------------------ CLI
def _folder(tmp_path, n=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cat in ("b", "a"):
        (tmp_path / "stim" / cat).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(tmp_path / "stim" / cat / f"{i}.png")
    return tmp_path / "stim"


def test_cli_match(tiny_model_file, tmp_path, capsys):
    from topoviewer.cli import main

    folder = _folder(tmp_path)
    np.savez(tmp_path / "n.npz", responses=np.random.default_rng(1).normal(size=(8, 3, 2)))
    assert main(["match", str(tiny_model_file), "--neural", str(tmp_path / "n.npz"), "--stimuli", str(folder),
                 "--permutations", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["neurons"]) == 3 and out["permutations"] == 20
    n = out["neurons"][0]
    assert n["sheet"] in ("fc6", "fc7")
    assert -1 <= n["r"] <= 1 and 0 < n["p"] <= 1 and len(n["position_mm"]) == 2
    rows = np.random.default_rng(2).normal(size=(8, 2))
    (tmp_path / "ok.csv").write_text("n1,n2\n" + "\n".join(f"{a},{b}" for a, b in rows) + "\n")
    assert main(["match", str(tiny_model_file), "--neural", str(tmp_path / "ok.csv"), "--stimuli", str(folder),
                 "--transform", "invert", "--permutations", "0", "--layer", "fc7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {n["sheet"] for n in out["neurons"]} == {"fc7"}
    assert out["stimuli"].endswith("|invert") and len(out["neurons"]) == 2 and out["neurons"][0]["p"] is None
    assert out["neurons"][0]["noise_ceiling"] is None                     # no repetitions in a .csv
    (tmp_path / "bad.csv").write_text("n1,n2\n1,2\n3,4\n")
    assert main(["match", str(tiny_model_file), "--neural", str(tmp_path / "bad.csv"), "--stimuli", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected 8 rows (one per stimulus image, in sorted file-name order)" in err[0]
    (tmp_path / "x.txt").write_text("1")
    assert main(["match", str(tiny_model_file), "--neural", str(tmp_path / "x.txt"), "--stimuli", str(folder)]) == 2
    assert "expected a .npz or .csv file" in capsys.readouterr().err


def test_cli_analyze_suites(tiny_model_file, tmp_path, capsys):
    from topoviewer.cli import main
    from topoviewer.io import load, save_model
    from topoviewer.stimuli import DIET_CATEGORIES
    from topoviewer.suites import suite_curves

    folder = tmp_path / "analysis"
    assert main(["analyze", str(tiny_model_file), "--suite", "invariance", "--json", "--out", str(folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert json.loads((folder / "suite_invariance.json").read_text()) == out  # written, the same as printed
    (folder / "suite_lesion.json").write_text("my notes")  # not ours: kept unless --force
    assert main(["analyze", str(tiny_model_file), "--suite", "lesion", "--out", str(folder)]) == 2
    assert "suite_lesion.json" in capsys.readouterr().err and (folder / "suite_lesion.json").read_text() == "my notes"
    assert out["suite"] == "invariance" and out["stimuli"].startswith("face-views(")
    sheet = next(iter(out["sheets"].values()))
    assert set(sheet["population"]) == {"identity", "view", "mirror"}
    assert 0 < sheet["face_patch"]["units"] < sheet["units"]
    names, curves = suite_curves(out)  # the GUI's per-sheet curves: the result's numbers in sheet order
    assert names == list(out["sheets"]) and len(curves) == 6
    for key in ("identity", "view", "mirror"):
        assert curves[f"{key} index"] == [s["population"][key] for s in out["sheets"].values()]
        assert curves[f"{key} index, face patch"] == [s["face_patch"]["population"][key]
                                                      for s in out["sheets"].values()]
    model = load(tiny_model_file)
    model.classes = list(DIET_CATEGORIES[:20])                   # the tiny model's 20 outputs, named
    save_model(model, tmp_path / "named.safetensors")
    assert main(["analyze", str(tmp_path / "named.safetensors"), "--suite", "lesion", "--random-lesions", "2",
                 "--out", str(folder), "--force"]) == 0
    text = capsys.readouterr().out
    assert "lesion suite" in text and "patch units silenced (random region): accuracy faces" in text
    assert main(["analyze", str(tmp_path / "named.safetensors"), "--suite", "lesion", "--random-lesions", "0",
                 "--decode-identities", "3", "--folds", "2", "--json", "--out", str(folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["identities"].startswith("face-identities(")
    for sheet in out["sheets"].values():
        d = sheet["decoding"]
        assert d["chance"] == pytest.approx(1 / 3) and len(d["random"]) == 3 and 0 <= d["after"] <= 1
    assert suite_curves(out)[1] == {"identity decoding, intact": [s["decoding"]["before"] for s in out["sheets"].values()],
                                    "identity decoding, lesioned": [s["decoding"]["after"]
                                                                    for s in out["sheets"].values()]}


def test_identity_suite_small(tiny_model):
    from topoviewer.suites import identity_suite, suite_curves, suite_table

    stimuli = face_identities(size=32, identities=4, per_identity=6, seed=0)
    out = identity_suite(tiny_model, stimuli, transforms=("invert",), folds=3)
    sheet = next(iter(out["sheets"].values()))
    assert 0 <= sheet["selective"] <= 1
    assert set(sheet["decoding"]) == {"original", "invert"}
    assert sheet["decoding"]["original"]["all"]["chance"] == 0.25
    assert sheet["region_coding"]["mi_units"] == round(sheet["multiple_identity"] * sheet["units"])
    columns, rows = suite_table(out)  # the GUI's table: one row per sheet, the numbers of the result
    assert columns[0] == "sheet" and [r[0] for r in rows] == list(out["sheets"])
    dec = sheet["decoding"]["original"]
    assert rows[0][1:] == [sheet["units"], sheet["selective"], sheet["single_identity"], sheet["multiple_identity"],
                           dec["all"]["accuracy"], dec["selective"]["accuracy"], dec["non_selective"]["accuracy"]]
    names, curves = suite_curves(out)
    assert names == list(out["sheets"]) and list(curves) == ["selective share", "decoding all", "decoding selective",
                                                             "decoding non-selective"]
    assert curves["decoding non-selective"] == [s["decoding"]["original"]["non_selective"]["accuracy"]
                                                for s in out["sheets"].values()]
    assert curves["selective share"] == [s["selective"] for s in out["sheets"].values()]


def test_run_suite_builds_the_suites_stimuli(tiny_model):
    from topoviewer.pipeline import default_stimuli
    from topoviewer.suites import run_suite

    out = run_suite("invariance", tiny_model, stimuli_seed=5)
    assert out["stimuli"] == face_views(size=32, seed=5).name
    assert out["localizer"] == default_stimuli(tiny_model, seed=5).name
    with pytest.raises(TopoviewerError, match="a suite is one of invariance, identity, lesion, got 'lesions'"):
        run_suite("lesions", tiny_model)
