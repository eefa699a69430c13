"""The hallmark report: measure() on the default model, summarise() and write_report()."""

import copy
import math

import numpy as np
import pytest

from topoviewer.hallmarks import measure
from topoviewer.io import load
from topoviewer.report import EARLY_MARKERS, MAIN_PROTOCOL, summarise, write_report


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
    # the early visual sheet section is written on its own (report.write_early_section): the report keeps it
    start, end = EARLY_MARKERS
    (tmp_path / "hallmarks.md").write_text(f"stale\n{start}\nearly rows\n{end}\n<!-- discussion -->\nnotes\n")
    md = write_report(results, tmp_path).read_text()
    assert "stale" not in md and md.count(start) == 1 and f"{start}\nearly rows\n{end}" in md
    assert md.index(end) < md.index("<!-- discussion -->\nnotes\n")
    assert "| face patch, null95 rule" in md and "**Spatial null** (10 position shuffles" in md
    assert f"| {MAIN_PROTOCOL} | topographic |" in md and f"t(2) = {t:.2f}" in md
    assert (tmp_path / "images" / "hallmarks_curves.png").stat().st_size > 10_000


def test_beyond_patches_section(measured, tmp_path):
    """Invariance and lesion numbers per run (as report.beyond_patches returns them) → mean ± SEM and counts."""
    runs = []
    for k, (identity, after, random, p) in enumerate(((0.1, 0.5, 0.9, 1 / 11), (0.2, 0.8, 0.7, 0.5), (0.3, 0.6, 0.8, 2 / 11))):
        r = copy.deepcopy(measured)
        r["suites"] = {"fc7": {"identity": identity, "view": 0.05, "mirror": 0.01 * k, "faces_before": 0.95,
                               "faces_after": after, "faces_random": random, "faces_p": p, "lesion_units": 400,
                               "random_lesions": 10}}
        runs.append(r)
    results = {"recipe": {"arch": "tdann_small"}, "topographic": runs, "control": [copy.deepcopy(measured)]}
    s = summarise(results)["topographic"]["suites"]["fc7"]
    assert s["identity"] == pytest.approx((0.2, np.std([0.1, 0.2, 0.3], ddof=1) / math.sqrt(3)))
    assert s["lesion_beats_all_runs"] == 1 and s["lesion_worse_than_random_runs"] == 2
    md = write_report(results, tmp_path).read_text()
    assert "## Beyond patches: viewpoint invariance and face-patch lesions" in md
    assert "| fc7 · identity index | 0.2 ± 0.058 | — |" in md
    assert "| fc7 · runs: patch lesion below the random mean / below every random lesion | 2/3, 1/3 | 0/1, 0/1 |" in md
