"""The user cache of analyses: same maps as a fresh analysis, keyed by file bytes and options, never stale."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from topoviewer import cache
from topoviewer.io import load
from topoviewer.pipeline import analyze, default_stimuli


def test_cached_analysis_equals_a_fresh_one_and_follows_the_file_and_options(tiny_model_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOVIEWER_CACHE_DIR", str(tmp_path / "cache"))
    assert cache.cache_dir() == tmp_path / "cache"
    model = load(str(tiny_model_file))
    made = []

    def make():
        made.append(1)
        return default_stimuli(model)

    desc = f"default_stimuli(input_size={model.input_size})"
    first, stim1 = cache.cached_analysis(model, tiny_model_file, desc, make)
    entries = sorted((tmp_path / "cache").glob("analysis-*.npz"))
    assert len(entries) == 1 and not list((tmp_path / "cache").glob("*.tmp"))  # written atomically
    second, stim2 = cache.cached_analysis(model, tiny_model_file, desc, make)
    assert len(made) == 1  # the second call read the entry
    fresh = analyze(model, default_stimuli(model))
    np.testing.assert_array_equal(stim2.images, stim1.images)
    assert stim2.categories == fresh.categories and second.stimuli_name == fresh.stimuli_name
    for name, maps in fresh.sheets.items():
        got = second.sheets[name]
        assert got.sheet is model.sheet(name)
        np.testing.assert_array_equal(second.responses[name], fresh.responses[name])
        for c in fresh.categories:
            np.testing.assert_allclose(got.dprime[c], maps.dprime[c])
            np.testing.assert_allclose(got.voxel_t[c], maps.voxel_t[c], equal_nan=True)
        assert json.dumps(got.summary, sort_keys=True) == json.dumps(maps.summary, sort_keys=True)
        assert got.thresholds == maps.thresholds
    # other options or other file bytes: another key, recomputed
    assert cache.analysis_key(tiny_model_file, desc, {"fwhm_mm": 3.0}) != cache.analysis_key(tiny_model_file, desc, {})
    changed = tmp_path / "changed.safetensors"
    changed.write_bytes(tiny_model_file.read_bytes() + b" ")
    assert cache.analysis_key(changed, desc, {}) != cache.analysis_key(tiny_model_file, desc, {})
    # a damaged entry is recomputed and replaced
    entries[0].write_bytes(b"not an npz")
    again, _ = cache.cached_analysis(model, tiny_model_file, desc, make)
    assert len(made) == 2 and np.allclose(again.sheets[name].dprime["faces"], fresh.sheets[name].dprime["faces"])
    assert cache.cached_analysis(model, tiny_model_file, desc, make) and len(made) == 2


def test_cached_preview_gives_the_d_prime_maps_and_rasters_without_torch(tiny_model_file, tmp_path, monkeypatch):
    from topoviewer.errors import TopoviewerError
    from topoviewer.io import read_sheets

    monkeypatch.setenv("TOPOVIEWER_CACHE_DIR", str(tmp_path / "cache"))
    model = load(str(tiny_model_file))
    _, sheets = read_sheets(tiny_model_file)
    assert cache.cached_preview(tiny_model_file, sheets, "desc") is None  # nothing cached yet
    analysis, _ = cache.cached_analysis(model, tiny_model_file, "desc", lambda: default_stimuli(model))
    categories, dprime = cache.cached_preview(tiny_model_file, sheets, "desc")
    assert categories == analysis.categories
    for s in sheets:
        ref = model.sheet(s.name)
        np.testing.assert_array_equal(s.positions, ref.positions)
        assert (s.extent_mm, s.origin_mm, s.grid_shape) == (ref.extent_mm, ref.origin_mm, ref.grid_shape)
        for c in categories:
            np.testing.assert_array_equal(dprime[s.name][c], analysis.sheets[s.name].dprime[c])
        # the stored display raster was handed over: drawing needs no KD-tree, and equals the model's own
        px = s.default_pixel_mm()
        assert ("nearest", px) in s._cache
        np.testing.assert_array_equal(s.rasterise(dprime[s.name]["faces"], px),
                                      ref.rasterise(analysis.sheets[s.name].dprime["faces"], px))
    with pytest.raises(TopoviewerError, match=r"must be \(\d+, \d+\) unit indices < 256"):
        sheets[0].set_nearest_map(sheets[0].default_pixel_mm(), np.full((3, 3), 70))
    # neither torch nor the analysis code (scipy.spatial) is imported for it
    code = ("import sys; from topoviewer.io import read_sheets; from topoviewer.cache import cached_preview; "
            f"s = read_sheets({str(tiny_model_file)!r})[1]; "
            f"assert cached_preview({str(tiny_model_file)!r}, s, 'desc') is not None; "
            "print(sorted(m for m in ('torch', 'scipy.spatial', 'topoviewer.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TOPOVIEWER_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
