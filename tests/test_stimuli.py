"""Tests of topoviewer.stimuli: procedural localizer and diet, StimulusSet,
folder and single-image loading."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from topoviewer.errors import TopoviewerError
from topoviewer.stimuli import (
    DIET_CATEGORIES,
    LOCALIZER_CATEGORIES,
    StimulusSet,
    files,
    load_folder,
    load_image,
    localizer,
    training_diet,
)


@pytest.fixture(scope="module")
def default_localizer():
    return localizer()


def _hashes(images):
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images}


# ------------------------------------------------------------- procedural sets

def test_default_localizer_layout(default_localizer):
    s = default_localizer
    assert s.categories == list(LOCALIZER_CATEGORIES)
    assert len(s.categories) >= 6
    assert s.images.shape == (6 * 48, 64, 64)
    assert s.images.dtype == np.float32 and s.labels.dtype == np.int64
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0
    assert np.bincount(s.labels).tolist() == [48] * 6
    assert s.name == "localizer(seed=1234,size=64)"
    assert len(s) == 288
    assert len(_hashes(s.images)) == len(s)  # no duplicated image


def test_localizer_is_deterministic_in_the_seed():
    a = localizer(size=24, per_category=3, seed=7)
    b = localizer(size=24, per_category=3, seed=7)
    c = localizer(size=24, per_category=3, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.name == b.name != c.name
    for k in range(len(LOCALIZER_CATEGORIES)):
        assert not np.array_equal(a.images[a.labels == k], c.images[c.labels == k])


def test_a_category_does_not_depend_on_the_others():
    both = localizer(size=32, per_category=4, categories=("faces", "cars"))
    cars = localizer(size=32, per_category=4, categories=("cars",))
    np.testing.assert_array_equal(both.images[both.mask("cars")], cars.images)
    assert both.name != cars.name


def test_low_level_statistics_are_matched_across_categories(default_localizer):
    s = default_localizer
    means = s.images.mean(axis=(1, 2))
    stds = s.images.std(axis=(1, 2))
    np.testing.assert_allclose(means, 0.5, atol=0.01)
    np.testing.assert_allclose(stds, 0.2, atol=0.01)
    per_category = [means[s.labels == k].mean() for k in range(len(s.categories))]
    assert np.ptp(per_category) < 0.003
    per_category = [stds[s.labels == k].mean() for k in range(len(s.categories))]
    assert np.ptp(per_category) < 0.003


def test_categories_differ_in_shape_not_only_noise(default_localizer):
    """Class-mean images differ more between categories than between halves of one."""
    s = default_localizer
    a, b = s.split_halves(seed=3)
    means_a = np.stack([a.images[a.labels == k].mean(0) for k in range(6)])
    means_b = np.stack([b.images[b.labels == k].mean(0) for k in range(6)])
    within = np.abs(means_a - means_b).mean(axis=(1, 2))
    between = np.abs(means_a[:, None] - means_b[None]).mean(axis=(2, 3))
    assert (between[~np.eye(6, dtype=bool)].mean()) > 1.2 * within.mean()


@pytest.mark.parametrize("size", [24, 256])
def test_extreme_sizes(size):
    s = localizer(size=size, per_category=1)
    assert s.images.shape == (6, size, size)
    assert np.isfinite(s.images).all() and 0 <= s.images.min() and s.images.max() <= 1


def test_diet_categories_and_splits():
    assert len(DIET_CATEGORIES) >= 16 and len(set(DIET_CATEGORIES)) == len(DIET_CATEGORIES)
    assert "faces" in DIET_CATEGORIES
    assert set(LOCALIZER_CATEGORIES) <= set(DIET_CATEGORIES)
    train = training_diet("train", per_category=3, size=24, seed=0)
    val = training_diet("val", per_category=3, size=24, seed=0)
    assert train.categories == val.categories == list(DIET_CATEGORIES)
    assert train.images.shape == (3 * len(DIET_CATEGORIES), 24, 24)
    assert train.images.dtype == np.float32
    assert np.bincount(train.labels).tolist() == [3] * len(DIET_CATEGORIES)
    assert train.name != val.name
    np.testing.assert_array_equal(train.images, training_diet("train", 3, 24, 0).images)


def test_real_faces_are_crops_of_the_photographed_faces():
    """``real_faces``: that share of the faces is replaced by augmented crops around FACE_PHOTOS' faces."""
    from PIL import Image

    from topoviewer.stimuli.photos import face_photo_crops, face_photos

    n, size = 40, 32
    plain = training_diet("val", per_category=n, size=size, seed=1)
    mixed = training_diet("val", per_category=n, size=size, seed=1, options={"real_faces": 0.5})
    assert mixed.name == plain.name[:-1] + ",real_faces=0.5)"
    faces = np.flatnonzero(np.asarray(plain.labels) == plain.categories.index("faces"))
    others = np.setdiff1d(np.arange(len(plain)), faces)
    np.testing.assert_array_equal(mixed.images[others], plain.images[others])  # only faces change
    changed = ~np.all(mixed.images[faces] == plain.images[faces], axis=(1, 2))
    assert 0.25 <= changed.mean() <= 0.75
    # an unaugmented crop (zoom 1, no shift or rotation) is the face's box resized, computed here
    img, row, col, h = face_photos()[0]
    box = img[row - h // 2:row + h // 2, col - h // 2:col + h // 2]
    expected = np.asarray(Image.fromarray(np.ascontiguousarray(box)).resize((size, size), Image.Resampling.BOX))
    rng = np.random.default_rng(0)
    crops = face_photo_crops(rng, 30, size, zoom=(1.0, 1.0), shift=0.0, rotate=0.0)
    best = min(np.abs(c - expected).mean() for c in np.concatenate([crops, crops[:, :, ::-1]]))
    assert best < 0.02
    # the photographed faces correlate with the face box far more than with another part of the photograph
    corner = np.asarray(Image.fromarray(np.ascontiguousarray(img[:h, :h])).resize((size, size), Image.Resampling.BOX))
    assert min(np.abs(c - corner).mean() for c in crops) > 0.05


def test_real_face_warp_reshapes_only_the_photographed_faces():
    """``real_face_warp``: the photographed faces get other proportions; nothing else changes."""
    from topoviewer.stimuli.photos import _reshape, face_photo_crops

    n, size = 30, 32
    plain = training_diet("val", per_category=n, size=size, seed=1, options={"real_faces": 0.5})
    warped = training_diet("val", per_category=n, size=size, seed=1, options={"real_faces": 0.5, "real_face_warp": 0.05})
    faces = np.asarray(plain.labels) == plain.categories.index("faces")
    np.testing.assert_array_equal(warped.images[~faces], plain.images[~faces])
    changed = ~np.all(warped.images[faces] == plain.images[faces], axis=(1, 2))
    assert 0.25 <= changed.mean() <= 0.75  # the real faces, not the drawn ones
    # the first crop is drawn identically, then reshaped: the same face, moved by a pixel or two
    a = face_photo_crops(np.random.default_rng(3), 1, size)[0]
    b = face_photo_crops(np.random.default_rng(3), 1, size, warp=0.05)[0]
    assert not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.6
    # a vanishing warp is the identity; a pure vertical stretch maps row r to centre + (r − centre) / s
    img = np.random.default_rng(0).random((size, size)).astype(np.float32)
    np.testing.assert_allclose(_reshape(img, np.random.default_rng(1), 1e-9), img, atol=1e-5)
    ramp = np.repeat(np.arange(size, dtype=np.float32)[:, None], size, axis=1) / size
    rng = np.random.default_rng(2)
    out = _reshape(ramp, rng, 0.1)
    stretch = np.exp(np.random.default_rng(2).uniform(np.log(0.9), -np.log(0.9)))
    mid = (size - 1) / 2
    inner = slice(size // 2 - 3, size // 2 + 3)  # near the centre, where the ramp is not reflected
    slope = np.polyfit(np.arange(size)[inner], out[inner].mean(axis=1), 1)[0] * size
    assert abs(slope - 1 / stretch) < 0.15 and abs(out[int(mid)].mean() - mid / size) < 0.15


def test_face_context_cuts_the_face_photographs_beside_the_faces(monkeypatch):
    """``face_context``: that share of the clutter is cut from FACE_PHOTOS without touching their faces."""
    n, size = 40, 32
    plain = training_diet("val", per_category=n, size=size, seed=1)
    mixed = training_diet("val", per_category=n, size=size, seed=1, options={"face_context": 0.5})
    clutter = np.asarray(plain.labels) == plain.categories.index("clutter")
    np.testing.assert_array_equal(mixed.images[~clutter], plain.images[~clutter])
    changed = ~np.all(mixed.images[clutter] == plain.images[clutter], axis=(1, 2))
    assert 0.25 <= changed.mean() <= 0.75
    # on a photograph that is white in the face's box (margin 1.3) and black elsewhere, every crop is black
    from topoviewer.stimuli import photos

    img = np.zeros((300, 200), np.float32)
    row, col, h = 150, 100, 60
    img[row - 39:row + 39, col - 39:col + 39] = 1.0
    monkeypatch.setattr(photos, "face_photos", lambda: ((img, row, col, h),))
    crops = photos.face_context_crops(np.random.default_rng(5), 50, 16)
    assert crops.shape == (50, 16, 16) and crops.max() == 0.0
    img[row - 40:row + 40, col - 40:col + 40] = 1.0  # one pixel more than the box: some crops see it
    assert photos.face_context_crops(np.random.default_rng(5), 50, 16).max() > 0.0


def test_train_val_and_localizer_share_no_image():
    size, n = 32, 6
    train = training_diet("train", per_category=n, size=size, seed=0)
    val = training_diet("val", per_category=n, size=size, seed=0)
    loc = localizer(size=size, per_category=n, seed=0)
    sets = [_hashes(train.images), _hashes(val.images), _hashes(loc.images)]
    assert [len(h) for h in sets] == [len(train), len(val), len(loc)]
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]
    # not even near-duplicates of the same drawing
    for other in (val, loc):
        distance = np.abs(train.images[:, None] - other.images[None]).mean(axis=(2, 3))
        assert distance.min() > 0.02


@pytest.mark.parametrize("call, message", [
    (lambda: localizer(categories=("faces", "dogs")), "dogs"),
    (lambda: localizer(categories=()), "categories"),
    (lambda: localizer(size=8), "size"),
    (lambda: localizer(size=32.5), "size"),
    (lambda: localizer(per_category=0), "per_category"),
    (lambda: localizer(seed=-1), "seed"),
    (lambda: training_diet("test"), "split"),
    (lambda: training_diet(per_category=2, options={"real_face": 0.5}), "unknown diet setting.*real_face.*real_faces"),
    (lambda: training_diet(per_category=2, options={"real_faces": 1.5}), "real_faces is a share of the faces"),
    (lambda: training_diet(per_category=2, options={"face_context": True}), "face_context is a share of the clutter"),
    (lambda: training_diet(per_category=2, options={"real_face_warp": 1.0}), "real_face_warp is a fraction of the image"),
])
def test_generator_arguments_are_checked(call, message):
    with pytest.raises(TopoviewerError, match=message):
        call()


# ------------------------------------------------------------------ StimulusSet

def _toy_set():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0])
    images = np.linspace(0, 1, labels.size * 4, dtype=np.float32).reshape(-1, 2, 2)
    return StimulusSet(images, labels, ["a", "b", "c"], "toy")


def test_split_halves_is_stratified_disjoint_and_deterministic():
    s = _toy_set()
    a, b = s.split_halves(seed=0)
    assert len(a) + len(b) == len(s)
    assert np.bincount(a.labels, minlength=3).tolist() == [2, 1, 1]
    assert np.bincount(b.labels, minlength=3).tolist() == [3, 2, 2]
    assert not _hashes(a.images) & _hashes(b.images)
    assert a.categories == b.categories == s.categories
    a2, _ = s.split_halves(seed=0)
    np.testing.assert_array_equal(a.images, a2.images)
    picks = {tuple(_hashes(s.split_halves(seed=k)[0].images)) for k in range(8)}
    assert len(picks) > 1
    assert a.name != b.name and "toy" in a.name


def test_subset_and_mask():
    s = _toy_set()
    m = s.mask("a")
    assert m.dtype == bool and m.sum() == 5
    by_mask = s.subset(m)
    by_index = s.subset(np.flatnonzero(m))
    np.testing.assert_array_equal(by_mask.images, by_index.images)
    assert (by_mask.labels == 0).all() and by_mask.categories == ["a", "b", "c"]
    assert by_mask.name == by_index.name != s.subset(np.flatnonzero(m)[:2]).name
    assert len(s.subset(np.array([], dtype=int))) == 0
    with pytest.raises(TopoviewerError, match="a, b, c"):
        s.mask("d")
    with pytest.raises(TopoviewerError, match="mask"):
        s.subset(np.ones(3, bool))
    with pytest.raises(TopoviewerError, match="indices"):
        s.subset([0, 11])


def test_stimulus_set_validates_its_fields():
    images = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(TopoviewerError, match="label"):
        StimulusSet(images, [0], ["a"], "x")
    with pytest.raises(TopoviewerError, match="index"):
        StimulusSet(images, [0, 1], ["a"], "x")
    with pytest.raises(TopoviewerError, match="shape"):
        StimulusSet(np.zeros((2, 4)), [0, 0], ["a"], "x")
    with pytest.raises(TopoviewerError, match="unique"):
        StimulusSet(images, [0, 0], ["a", "a"], "x")
    with pytest.raises(TopoviewerError, match=r"\[0, 1\]"):
        StimulusSet(images + 2, [0, 0], ["a"], "x")
    rgb = StimulusSet(np.zeros((2, 4, 4, 3)), [0, 0], ["a"], "x")
    assert rgb.images.dtype == np.float32 and rgb.labels.dtype == np.int64


# -------------------------------------------------------------------- load_folder

@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    cats = tmp_path / "set"
    (cats / "houses").mkdir(parents=True)
    (cats / "faces").mkdir()
    (cats / ".hidden").mkdir()
    noise = lambda h, w, *c: rng.integers(0, 256, (h, w, *c), dtype=np.uint8)  # noqa: E731
    Image.fromarray(noise(40, 50)).save(cats / "faces" / "a.png")
    Image.fromarray(noise(30, 36, 3)).save(cats / "faces" / "b.JPG")
    Image.fromarray(noise(32, 32, 4)).save(cats / "faces" / "c.png")
    Image.fromarray(rng.integers(0, 65536, (48, 40), dtype=np.uint16)).save(cats / "houses" / "d.tif")
    Image.fromarray(noise(60, 60, 3)).save(cats / "houses" / "e.bmp")
    Image.fromarray(rng.integers(0, 65536, (35, 33), dtype=np.uint16)).save(cats / "houses" / "f.PNG")
    (cats / "houses" / "notes.txt").write_text("not an image")
    return cats


def test_load_folder_reads_every_format(folder):
    s = load_folder(folder)
    assert s.categories == ["faces", "houses"]
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert s.images.shape == (6, 30, 30)  # the shortest side over all images
    assert s.images.dtype == np.float32
    assert 0 <= s.images.min() and s.images.max() <= 1 and s.images.std() > 0.05
    assert s.name == str(folder.resolve())
    sized = load_folder(str(folder), size=16)
    assert sized.images.shape == (6, 16, 16) and sized.name.endswith("(size=16)")
    assert load_folder(folder, size=64).images.shape == (6, 64, 64)


def test_load_folder_centre_crops_after_resizing(tmp_path):
    (tmp_path / "c").mkdir()
    image = np.zeros((20, 60), np.uint8)
    image[:, 20:40] = 255  # the centre third is white
    Image.fromarray(image).save(tmp_path / "c" / "wide.png")
    s = load_folder(tmp_path, size=10)
    assert s.images.shape == (1, 10, 10)
    assert s.images[0, :, 2:8].min() > 0.9


def test_load_folder_errors(tmp_path, folder):
    with pytest.raises(TopoviewerError, match="missing"):
        load_folder(tmp_path / "nope")
    with pytest.raises(TopoviewerError, match="file"):
        load_folder(folder / "faces" / "a.png")
    (tmp_path / "flat").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(TopoviewerError, match="subfolder"):
        load_folder(tmp_path / "flat")
    (folder / "empty").mkdir()
    with pytest.raises(TopoviewerError, match="empty.*no images"):
        load_folder(folder)
    (folder / "empty" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    with pytest.raises(TopoviewerError, match="broken.png"):
        load_folder(folder)
    with pytest.raises(TopoviewerError, match="size"):
        load_folder(folder, size=0)


# --------------------------------------------------------------------- load_image

@pytest.mark.parametrize("mode, shape", [
    ("1", (5, 7)), ("L", (5, 7)), ("LA", (5, 7)), ("P", (5, 7, 3)), ("RGB", (5, 7, 3)),
    ("RGBA", (5, 7, 3)), ("CMYK", (5, 7, 3)), ("I;16", (5, 7)), ("I", (5, 7)), ("F", (5, 7)),
])
def test_load_image_modes(tmp_path, mode, shape):
    image = Image.new(mode, (7, 5))
    path = tmp_path / ("x.tif" if mode in ("I", "F", "CMYK") else "x.png")
    image.save(path)
    out = load_image(path)
    assert out.shape == shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1


def test_load_image_values(tmp_path):
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(tmp_path / "white16.png")
    assert load_image(tmp_path / "white16.png").min() == 1.0
    Image.fromarray(np.full((3, 3), 1000, np.int32)).save(tmp_path / "i32.tif")
    np.testing.assert_allclose(load_image(tmp_path / "i32.tif"), 1000 / 65535, rtol=1e-5)
    Image.new("RGBA", (4, 4), (255, 255, 255, 0)).save(tmp_path / "clear.png")
    np.testing.assert_allclose(load_image(tmp_path / "clear.png"), 0.5)
    Image.new("LA", (4, 4), (0, 255)).save(tmp_path / "black.png")
    np.testing.assert_allclose(load_image(str(tmp_path / "black.png")), 0.0)
    p = Image.new("P", (4, 4))
    p.putpalette([0, 0, 0, 255, 0, 0])
    p.putpixel((0, 0), 1)
    p.info["transparency"] = 0
    p.save(tmp_path / "palette.png", transparency=0)
    out = load_image(tmp_path / "palette.png")
    np.testing.assert_allclose(out[0, 0], [1, 0, 0])
    np.testing.assert_allclose(out[1, 1], [0.5, 0.5, 0.5])
    Image.fromarray(np.array([[2.0, 4.0]], np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_allclose(load_image(tmp_path / "f.tif"), [[0, 1]])


@pytest.mark.parametrize("array, expected", [
    (np.full((2, 3), 255, np.uint8), np.ones((2, 3))),
    (np.full((2, 3), 65535, np.uint16), np.ones((2, 3))),
    (np.full((2, 3, 1), 0.25), np.full((2, 3), 0.25)),
    (np.array([[-1.0, 1.0]]), np.array([[0.0, 1.0]])),
    (np.ones((2, 2), bool), np.ones((2, 2))),
    (np.full((2, 2, 3), 0.2, np.float32), np.full((2, 2, 3), 0.2)),
    (np.dstack([np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2), np.uint8)]), np.full((2, 2, 3), 0.5)),
    (np.dstack([np.zeros((2, 2)), np.ones((2, 2))]), np.zeros((2, 2))),
])
def test_load_image_arrays(array, expected):
    out = load_image(array)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("array, message", [
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.array([[0.0, np.inf]]), "NaN or infinite"),
    (np.zeros((0, 4)), "empty"),
    (np.zeros((4, 4, 5)), "shape"),
    (np.zeros(4), "shape"),
    (np.zeros((4, 4), np.int32), "dtype"),
])
def test_load_image_array_errors(array, message):
    with pytest.raises(TopoviewerError, match=message):
        load_image(array)


def test_load_image_file_errors(tmp_path):
    with pytest.raises(TopoviewerError, match="missing"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(TopoviewerError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(TopoviewerError, match="path or a numpy array"):
        load_image(42)
    text = tmp_path / "notes.png"
    text.write_text("hello, I am not a picture")
    with pytest.raises(TopoviewerError, match="notes.png.*not an image"):
        load_image(text)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(TopoviewerError, match="garbage.jpg"):
        load_image(garbage)
    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)).save(whole)
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(TopoviewerError, match="truncated.png.*corrupt or truncated"):
        load_image(truncated)


def test_huge_images_are_refused(tmp_path, monkeypatch):
    Image.new("L", (20, 20)).save(tmp_path / "big.png")     # 400 px: above the limit
    Image.new("L", (40, 40)).save(tmp_path / "bomb.png")    # 1600 px: Pillow's error path
    pil_limit = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(files, "MAX_PIXELS", 300)
    for name in ("big.png", "bomb.png"):
        with pytest.raises(TopoviewerError, match=f"{name}.*MAX_PIXELS"):
            load_image(tmp_path / name)
    with pytest.raises(TopoviewerError, match="MAX_PIXELS"):
        load_image(np.zeros((20, 20), np.uint8))
    assert Image.MAX_IMAGE_PIXELS == pil_limit  # Pillow's setting is restored
    monkeypatch.setattr(files, "MAX_PIXELS", 10_000)
    assert load_image(tmp_path / "bomb.png").shape == (40, 40)
