"""photo_transfer: localizer-defined face units and patch, measured on photographs."""

from types import SimpleNamespace

import numpy as np
import pytest

from topoviewer.analysis.photos import edge_share, photo_transfer
from topoviewer.errors import TopoviewerError
from topoviewer.sheet import Sheet
from topoviewer.stimuli import StimulusSet


def _world(centre, n_units=1600, seed=0):
    """A sheet whose units within 1.5 mm of `centre` respond to faces (localizer and photos)."""
    rng = np.random.default_rng(seed)
    sheet = Sheet.uniform("fc6", n_units, (10.0, 10.0), seed=seed)
    near = np.hypot(*(sheet.positions - centre).T) < 1.5
    loc_labels = np.repeat(np.arange(3), 40)
    photo_labels = np.repeat([0, 1], 30)

    def responses(labels, face_label, gain):
        r = rng.gamma(2.0, 0.5, (len(labels), n_units))
        r[np.ix_(labels == face_label, near)] += gain
        return r

    loc = StimulusSet(np.zeros((120, 4, 4)), loc_labels, ["faces", "bodies", "places"], "loc")
    photos = StimulusSet(np.zeros((60, 4, 4)), photo_labels, ["faces", "non-faces"], "photos")
    model = SimpleNamespace(sheets=[sheet], sheet=lambda name: sheet)
    return model, loc, photos, {"fc6": responses(loc_labels, 0, 3.0)}, {"fc6": responses(photo_labels, 0, 1.0)}, near


def test_face_units_and_patch_prefer_photographed_faces():
    model, loc, photos, r, p, near = _world(np.array([5.0, 5.0]))
    v = photo_transfer(model, loc, photos, responses=r, photo_responses=p)["fc6"]
    assert v["face_units"] == pytest.approx(near.sum(), rel=0.1)
    assert v["face_units_dprime"] > 1.0 > 0.2 > abs(v["other_units_dprime"])
    assert v["dprime_gap"] == pytest.approx(v["face_units_dprime"] - v["other_units_dprime"])
    assert v["patch_voxels"] >= 10 and v["patch_ratio"] > 1.5
    assert v["edge_share"] == 0.0
    assert all(i < 30 for i in v["most_driving"]) and all(i >= 30 for i in v["least_driving"])
    assert len(v["patch_response"]) == 60


def test_a_patch_in_the_corner_is_crowded_at_the_edge():
    model, loc, photos, r, p, _ = _world(np.array([0.3, 0.3]))
    v = photo_transfer(model, loc, photos, responses=r, photo_responses=p)["fc6"]
    assert v["edge_share"] > 0.5
    assert 0.3 < v["edge_area_share"] < 0.4  # the outer 1 mm ring of a 10 mm sheet: 36 % of the area


def test_no_face_units_no_patch():
    model, loc, photos, r, p, _ = _world(np.array([5.0, 5.0]))
    flat = {"fc6": np.random.default_rng(1).gamma(2.0, 0.5, r["fc6"].shape)}
    v = photo_transfer(model, loc, photos, responses=flat, photo_responses=p)["fc6"]
    assert v["patch_voxels"] == 0 and v["patch_ratio"] is None and v["most_driving"] == []
    assert v["edge_share"] is None


def test_missing_categories_are_named():
    model, loc, photos, r, p, _ = _world(np.array([5.0, 5.0]))
    bad = StimulusSet(photos.images, photos.labels, ["faces", "houses"], "bad")
    with pytest.raises(TopoviewerError, match="non-faces"):
        photo_transfer(model, loc, bad, responses=r, photo_responses=p)


def test_edge_share_counts_voxel_centres_in_the_ring():
    sheet = Sheet.uniform("s", 100, (10.0, 10.0), seed=0)
    mask = np.zeros(sheet.grid(0.5).shape, bool)
    mask[0, :] = True  # the first row of voxels: all within 1 mm of the border
    assert edge_share(sheet, mask) == 1.0
    mask[:] = False
    mask[10, 10] = True
    assert edge_share(sheet, mask) == 0.0
    assert edge_share(sheet, np.zeros_like(mask)) is None


def test_provenance_lines():
    from topoviewer.analysis.photos import provenance

    assert provenance({}) == (None, None)
    meta = {"training_data": "procedural diet v2: …", "validation": {"lfw": {"set": "lfw(size=32)", "sheets": {
        "fc6": {"face_units_dprime": 0.61, "other_units_dprime": -0.3, "patch_ratio": 1.8}}}}}
    data, valid = provenance(meta)
    assert data == "procedural diet v2: …"
    assert "fc6 face units d′ +0.61 (others -0.30)" in valid.replace("−", "-") and "×1.80" in valid


def test_patch_table_reads_each_category_patch_per_picture():
    from topoviewer.analysis import t_maps, units_in_voxels, voxel_responses
    from topoviewer.analysis.photos import PATCH_TABLE_FIELDS, patch_table, patch_table_csv

    model, loc, photos, r, p, near = _world(np.array([5.0, 5.0]))
    sheet = model.sheets[0]
    t = t_maps(voxel_responses(sheet, r["fc6"]), loc.labels, loc.categories)
    analysis = SimpleNamespace(sheets={"fc6": SimpleNamespace(voxel_t=t)}, responses=r, labels=loc.labels,
                               categories=loc.categories)
    names = [f"photo {i}" for i in range(60)]
    rows = patch_table(model, analysis, p, names)
    assert len(rows) == 60 * 3 and set(rows[0]) == set(PATCH_TABLE_FIELDS)
    faces = [row for row in rows if row["category"] == "faces"]
    # per picture: the same patch response as photo_transfer's (an independent path through the core)
    ref = photo_transfer(model, loc, photos, responses=r, photo_responses=p)["fc6"]
    np.testing.assert_allclose([row["response"] for row in faces], ref["patch_response"])
    inside = units_in_voxels(sheet, np.nan_to_num(t["faces"], nan=-np.inf) > 10)
    assert faces[0]["patch_units"] == inside.sum() == ref["patch_units"]
    assert faces[0]["localizer_category"] == pytest.approx(r["fc6"][loc.labels == 0][:, inside].mean())
    assert faces[0]["localizer_others"] == pytest.approx(r["fc6"][loc.labels != 0][:, inside].mean())
    # bodies have no patch in this world: counted as 0 units, no means, empty CSV cells
    bodies = [row for row in rows if row["category"] == "bodies"]
    assert bodies[0]["patch_units"] == 0 and bodies[0]["response"] is None
    lines = patch_table_csv(rows).splitlines()
    assert lines[0] == ",".join(PATCH_TABLE_FIELDS) and len(lines) == 1 + len(rows)
    assert lines[1 + 60].startswith("photo 0,fc6,bodies,0,,,")
    with pytest.raises(TopoviewerError, match="59 picture names for 60 responses"):
        patch_table(model, analysis, p, names[:-1])


def test_precomputed_localizer_maps_are_used_not_recomputed():
    from topoviewer.pipeline import sheet_maps

    model, loc, photos, r, p, near = _world(np.array([5.0, 5.0]))
    fresh = photo_transfer(model, loc, photos, responses=r, photo_responses=p)["fc6"]
    maps = sheet_maps(model.sheets[0], r["fc6"], loc.labels, loc.categories, light=True)
    assert photo_transfer(model, loc, photos, responses=r, photo_responses=p, maps={"fc6": maps})["fc6"] == fresh
    # the maps given are what decides the face units: an empty d′ map leaves none
    empty = SimpleNamespace(dprime={"faces": np.zeros(near.size)}, voxel_t=maps.voxel_t)
    assert photo_transfer(model, loc, photos, responses=r, photo_responses=p, maps={"fc6": empty})["fc6"]["face_units"] == 0
