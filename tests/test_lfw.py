"""The LFW validation photographs: a built-in stimulus set that never enters the training diet."""

import numpy as np
import pytest

pytest.importorskip("skimage")

from topoviewer.stimuli import lfw  # noqa: E402
from topoviewer.stimuli.lfw import image_hashes, lfw_raw  # noqa: E402


def test_lfw_set_has_200_images_faces_first():
    s = lfw(size=32)
    assert s.images.shape == (200, 32, 32)
    assert s.categories == ["faces", "non-faces"]
    assert (s.labels[:100] == 0).all() and (s.labels[100:] == 1).all()
    raw = lfw_raw()
    # the set is the LFW subset, in order: at 25 px it is the raw crops
    np.testing.assert_allclose(lfw(size=None).images, raw, atol=1e-6)
    # faces are the first 100 (a face crop is brighter in the middle than a non-face crop)
    centre = s.images[:, 8:24, 8:24].mean(axis=(1, 2))
    assert centre[:100].mean() > centre[100:].mean()


def test_lfw_is_a_cli_stimulus_set(monkeypatch):
    from types import SimpleNamespace

    from topoviewer.cli import _stimuli

    model = SimpleNamespace(input_size=32)
    s = _stimuli(SimpleNamespace(stimuli="lfw", stimuli_seed=1234), model)
    assert len(s) == 200 and s.name == "lfw(size=32)"


def test_no_lfw_image_in_the_training_diet(monkeypatch):
    """The diet is generated without ever reading the LFW subset, and shares no image with it."""
    import skimage.data

    from topoviewer.stimuli import photos, training_diet
    from topoviewer.stimuli.photos import HELD_OUT, PHOTO_POOL

    assert not set(PHOTO_POOL) & set(HELD_OUT)
    assert "lfw_subset" in HELD_OUT

    def forbidden(*a, **k):
        raise AssertionError("the training diet read the LFW validation set")

    photos.photo_pool.cache_clear()
    monkeypatch.setattr(skimage.data, "lfw_subset", forbidden)
    for name in HELD_OUT[1:4]:
        if hasattr(skimage.data, name):
            monkeypatch.setattr(skimage.data, name, forbidden)
    try:
        diet = training_diet("val", per_category=50, size=32, seed=0)  # as training builds its val split
        train = training_diet("train", per_category=40, size=32, seed=0)
    finally:
        photos.photo_pool.cache_clear()
    monkeypatch.undo()
    val = lfw(size=32).images
    raw = lfw_raw()
    for images in (diet.images, train.images):
        assert not image_hashes(images) & (image_hashes(val) | image_hashes(raw))
        # and no near-copy: every diet image differs from every LFW image
        a = images.reshape(len(images), -1)
        b = val.reshape(len(val), -1)
        a = (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-6)
        b = (b - b.mean(1, keepdims=True)) / (b.std(1, keepdims=True) + 1e-6)
        assert (a @ b.T / a.shape[1]).max() < 0.95
