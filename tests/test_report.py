"""The hallmark report: measure() on the default model, summarise() and write_report()."""

import copy
import math

import numpy as np
import pytest

from topoviewer.hallmarks import measure
from topoviewer.io import load
from topoviewer.report import MAIN_PROTOCOL, summarise, write_report


@pytest.fixture(scope="module")
def measured():
    return measure(load("sample"), null=10)


def test_measure_reports_the_protocol(measured):
    m = measured
    assert set(m["stimulation"]) == {"peak1/paper", "normal_density/paper", "peak1/strict"}
    for st in m["stimulation"].values():
        assert st["inside_delta"] == pytest.approx(st["inside_next_patch_mean"] - st["baseline"])
        assert st["outside_delta"] == pytest.approx(np.mean(st["outside_deltas"]))
        assert len(st["outside_deltas"]) == 8
    assert m["null"]["n_shuffles"] == 10
    assert all(v is None or 1 / 11 <= v <= 1 for v in m["null"]["p"].values())
    assert m["calibrated_threshold"]["faces"] > 0
    assert set(m["fraction_selective_calibrated"]) == set(m["fraction_selective"])


def test_summary_and_markdown(measured, tmp_path):
    runs = []
    for shift in (0.0, 0.05, 0.12):
        r = copy.deepcopy(measured)
        r["stimulation"][MAIN_PROTOCOL]["inside_delta"] += shift
        runs.append(r)
    results = {"recipe": {"arch": "tdann_small"}, "topographic": runs, "control": runs[:2]}
    s = summarise(results)["topographic"]
    st = s["stimulation"][MAIN_PROTOCOL]
    diff = np.array([r["stimulation"][MAIN_PROTOCOL]["inside_delta"] - r["stimulation"][MAIN_PROTOCOL]["outside_delta"]
                     for r in runs])
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(len(diff)))  # own paired t
    assert st["t"] == pytest.approx(t) and st["df"] == 2
    assert s["face_patch_null95_runs"] == 3 * bool(measured["patch_null95"]["faces"])
    md = write_report(results, tmp_path).read_text()
    assert "| face patch, null95 rule" in md and "**Spatial null** (10 position shuffles" in md
    assert f"| {MAIN_PROTOCOL} | topographic |" in md and f"t(2) = {t:.2f}" in md
    assert (tmp_path / "images" / "hallmarks_curves.png").stat().st_size > 10_000
