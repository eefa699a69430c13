"""Publication figures (topoviewer.figures): real PNG/SVG/PDF files, sane pixels,
mm geometry (orientation, scale bar, patch outline), purity curves and clear errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from topoviewer import figures
from topoviewer.errors import TopoviewerError
from topoviewer.figures import (
    map_figure,
    model_figure,
    monkey_reference_purity,
    nice_scale_length,
    purity_figure,
    sheet_map_axes,
)
from topoviewer.sheet import Sheet


@pytest.fixture(scope="module")
def tiny():
    """A tiny untrained TDANN, a small localizer and their analysis (computed once)."""
    import torch

    from topoviewer.families import build
    from topoviewer.pipeline import analyze
    from topoviewer.stimuli import localizer

    torch.manual_seed(0)
    model = build("tdann_small", {"fc_units": [256, 256]})
    stimuli = localizer(size=32, per_category=8, seed=3)
    return model, stimuli, analyze(model, stimuli)


def _no_leftovers(folder):
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], "atomic write left a temporary file"


# ---------------------------------------------------------------------- file formats
def test_map_figure_png_is_a_real_png_at_the_requested_dpi(tiny, tmp_path):
    model, _, analysis = tiny
    sizes = {}
    for dpi in (40, 80):
        out = map_figure(analysis, model, tmp_path / f"maps{dpi}.png", dpi=dpi)
        assert out == tmp_path / f"maps{dpi}.png"
        raw = out.read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(out) as im:
            im.load()
            sizes[dpi] = im.size
            assert im.format == "PNG"
            assert im.info["dpi"] == pytest.approx((dpi, dpi), abs=0.05)  # PNG stores pixels per metre
            # figure size in inches × dpi: 4 panels per row, one row per sheet
            n_rows = len(analysis.sheets)
            w_in = 4 * figures.PANEL_W + 0.2
            h_in = n_rows * figures.PANEL_H + 0.45
            assert im.size == (round(w_in * dpi), round(h_in * dpi))
            rgb = np.asarray(im.convert("RGB"))
    assert abs(sizes[80][0] - 2 * sizes[40][0]) <= 1 and abs(sizes[80][1] - 2 * sizes[40][1]) <= 1
    # not blank: many distinct colours (maps, colorbars, lines), mostly white background
    colours = np.unique(rgb.reshape(-1, 3), axis=0)
    assert len(colours) > 200
    white = np.all(rgb == 255, axis=-1).mean()
    assert 0.2 < white < 0.95
    # the diverging d′ colormap really is there: strong reds and strong blues
    r, b = rgb[..., 0].astype(int), rgb[..., 2].astype(int)
    assert np.sum((r - b > 80) & (r > 150)) > 100
    assert np.sum((b - r > 80) & (b > 150)) > 100
    _no_leftovers(tmp_path)


def test_map_figure_svg_and_pdf_without_pyplot_state(tiny, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    rc_before, figs_before = dict(matplotlib.rcParams), plt.get_fignums()
    model, _, analysis = tiny
    svg = map_figure(analysis, model, tmp_path / "maps.svg")
    root = ET.parse(svg).getroot()
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    text = svg.read_text()
    assert "x (mm)" in text and "2 mm" in text  # labels stay text (svg.fonttype none)
    assert "<image" in text  # the maps are embedded rasters
    pdf = map_figure(analysis, model, tmp_path / "maps.PDF")  # suffix is case-insensitive
    raw = pdf.read_bytes()
    assert raw.startswith(b"%PDF") and b"%%EOF" in raw[-32:]
    assert len(raw) > 10_000
    _no_leftovers(tmp_path)
    # built on Figure objects, styled in an rc_context: no pyplot figure, rcParams untouched
    assert plt.get_fignums() == figs_before
    assert dict(matplotlib.rcParams) == rc_before


@pytest.mark.parametrize("name", ["maps.jpg", "maps", "maps.png.bak"])
def test_unknown_suffix_is_refused_before_any_work(tiny, tmp_path, name):
    model, stimuli, analysis = tiny
    with pytest.raises(TopoviewerError, match=r"\.png, \.svg, \.pdf"):
        map_figure(analysis, model, tmp_path / name)
    with pytest.raises(TopoviewerError, match="valid suffixes"):
        model_figure(model, stimuli, tmp_path / name)  # fails before analysing
    with pytest.raises(TopoviewerError, match="unknown file type"):
        purity_figure([([0.5, 1.5], [1.0, 0.2])], tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_map_figure_rejects_unknown_category(tiny, tmp_path):
    model, _, analysis = tiny
    with pytest.raises(TopoviewerError, match="category 'trees'"):
        map_figure(analysis, model, tmp_path / "x.png", category="trees")


def test_model_figure_runs_the_analysis(tiny, tmp_path):
    model, stimuli, _ = tiny
    out = model_figure(model, stimuli, tmp_path / "fig.png", category="bodies", dpi=40)
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"


def test_map_figure_on_a_channel_grid_model(tmp_path):
    """TopoNet sheets are in grid cells: the figure says so and still renders.

    A channel grid has one unit per 1-cell region, so purity uses 1-unit regions there: the
    figure draws the same purity curve as the analysis summary (one implementation).
    """
    import torch

    from topoviewer.families import build
    from topoviewer.pipeline import analyze
    from topoviewer.stimuli import localizer

    torch.manual_seed(0)
    model = build("toponet_small", {"widths": [8, 8, 64, 64]})
    stimuli = localizer(size=32, per_category=6, seed=5)
    analysis = analyze(model, stimuli)
    out = map_figure(analysis, model, tmp_path / "grid.svg")
    text = out.read_text()
    assert "x (cell)" in text and "1 cell" in text  # axis labels and scale bar in cells
    assert "purity not defined" not in text and "purity rings (1 cell)" in text
    for name, maps in analysis.sheets.items():  # the figure's curve is the summary's curve
        curve = maps.purity("faces")
        summary = maps.summary["purity_curve"]
        assert summary["centre_mm"] == list(curve.centre)
        np.testing.assert_allclose(np.array(summary["purity"], float), curve.purity)


# ---------------------------------------------------------------------- geometry
def _axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def test_sheet_map_orientation_y_up_and_extent():
    sheet = Sheet.uniform("s", 400, (10.0, 10.0), seed=0)
    fig, ax = _axes()
    image = np.zeros((20, 20))
    image[0, :] = 1.0  # row 0 = lowest y
    im, cbar, _ = sheet_map_axes(ax, sheet, image, pixel_mm=0.5, cmap="viridis", vmin=0, vmax=1,
                                   title="t", colorbar_label="value")
    assert im.origin == "lower"
    assert im.get_extent() == pytest.approx((0.0, 10.0, 0.0, 10.0))
    assert ax.get_xlim() == (0.0, 10.0) and ax.get_ylim() == (0.0, 10.0)
    assert ax.get_xlabel() == "x (mm)" and ax.get_ylabel() == "y (mm)"
    assert cbar.ax.get_ylabel() == "value"
    # the bright row is drawn at the bottom of the axes
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    x_mid, y_low = ax.transData.transform((5.0, 0.25))
    x_mid, y_high = ax.transData.transform((5.0, 9.75))
    h = rgb.shape[0]
    low, high = rgb[int(h - y_low), int(x_mid)], rgb[int(h - y_high), int(x_mid)]
    assert low.sum() > high.sum() + 200  # viridis(1) is bright yellow, viridis(0) dark purple


@pytest.mark.parametrize("span, expected", [(10.0, 2.0), (40.0, 5.0), (16.0, 2.0), (3.0, 0.5), (100.0, 20.0)])
def test_nice_scale_length(span, expected):
    assert nice_scale_length(span) == pytest.approx(expected)


@pytest.mark.parametrize("extent, length, label", [((10.0, 10.0), 2.0, "2 mm"), ((40.0, 25.0), 5.0, "5 mm")])
def test_scale_bar_has_the_right_length_in_data_units(extent, length, label):
    from matplotlib.patches import Rectangle
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    sheet = Sheet.uniform("s", 300, extent, seed=1)
    fig, ax = _axes()
    px = 0.5
    rows, cols = int(extent[1] / px), int(extent[0] / px)
    _, _, bar = sheet_map_axes(ax, sheet, np.random.default_rng(0).random((rows, cols)), pixel_mm=px,
                               title="", colorbar_label="")
    bars = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
    assert bars == [bar] and bar.get_gid() == "scalebar"
    assert bar.length == pytest.approx(length)
    rect = next(c for c in bar.size_bar.get_children() if isinstance(c, Rectangle))
    assert rect.get_width() == pytest.approx(length)
    assert bar.txt_label.get_text() == label
    # rendered: the bar's on-screen length equals `length` mm through the axes' data transform
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn = rect.get_window_extent(renderer).width
    expected = ax.transData.transform((length, 0))[0] - ax.transData.transform((0, 0))[0]
    assert drawn == pytest.approx(expected, rel=0.02)


def test_scale_bar_moves_away_from_a_mark():
    sheet = Sheet.uniform("s", 100, (10.0, 10.0))
    _, ax = _axes()
    _, _, bar = sheet_map_axes(ax, sheet, np.zeros((10, 10)), pixel_mm=1.0)
    assert bar.loc == 4  # lower right
    _, ax = _axes()
    _, _, bar = sheet_map_axes(ax, sheet, np.zeros((10, 10)), pixel_mm=1.0, marks=[(9.0, 1.0)])
    assert bar.loc == 3  # lower left: the mark stays visible


def test_scale_bar_on_a_grid_sheet_counts_cells():
    sheet = Sheet.channel_grid("g", 128)  # 8 × 16 cells
    _, ax = _axes()
    _, _, bar = sheet_map_axes(ax, sheet, sheet.rasterise(np.arange(128.0)), pixel_mm=1.0)
    assert bar.length == 1.0 and bar.txt_label.get_text() == "1 cell"
    assert ax.get_xlabel() == "x (cell)"


def test_patch_outline_follows_the_voxel_edges():
    sheet = Sheet.uniform("s", 400, (10.0, 10.0), seed=0)
    _, ax = _axes()
    mask = np.zeros((20, 20), bool)
    mask[4:8, 10:13] = True  # x ∈ [5, 6.5], y ∈ [2, 4]
    sheet_map_axes(ax, sheet, np.zeros((20, 20)), pixel_mm=0.5, outline=mask)
    contours = [c for c in ax.get_children() if c.get_gid() == "outline"]
    assert len(contours) == 1
    verts = np.concatenate([p.vertices for p in contours[0].get_paths()])
    assert verts[:, 0].min() == pytest.approx(5.0, abs=0.07) and verts[:, 0].max() == pytest.approx(6.5, abs=0.07)
    assert verts[:, 1].min() == pytest.approx(2.0, abs=0.07) and verts[:, 1].max() == pytest.approx(4.0, abs=0.07)
    # no outline for an empty mask
    _, ax = _axes()
    sheet_map_axes(ax, sheet, np.zeros((20, 20)), pixel_mm=0.5, outline=np.zeros((20, 20), bool))
    assert not [c for c in ax.get_children() if c.get_gid() == "outline"]


def test_sheet_map_rejects_non_2d_images():
    _, ax = _axes()
    with pytest.raises(TopoviewerError, match="2-D"):
        sheet_map_axes(ax, Sheet.uniform("s", 10), np.zeros((2, 3, 4)), pixel_mm=1.0)


# ---------------------------------------------------------------------- purity
def test_monkey_reference_shape():
    d = np.linspace(0, 8, 81)
    p = monkey_reference_purity(d)
    assert p[0] > 0.95
    assert np.all(np.diff(p) < 0)
    assert monkey_reference_purity(4.0) < 0.2
    assert p[-1] == pytest.approx(0.1, abs=0.01)


def test_purity_mean_and_sem_align_uneven_curves():
    curves = [
        {"distance_mm": [0.5, 1.5, 2.5], "purity": [1.0, 0.5, None]},  # summary-style, None = empty bin
        ([0.5, 1.5], [0.6, 0.3]),
        ([0.5, 1.5, 2.5, 3.5], [0.8, 0.4, 0.2, 0.1]),
    ]
    d, stack = figures._stack_curves(curves)
    np.testing.assert_allclose(d, [0.5, 1.5, 2.5, 3.5])
    mean, sem, n = figures._mean_sem(stack)
    np.testing.assert_allclose(mean, [0.8, 0.4, 0.2, 0.1])
    np.testing.assert_array_equal(n, [3, 3, 1, 1])
    np.testing.assert_allclose(sem[:2], [np.std([1.0, 0.6, 0.8], ddof=1) / np.sqrt(3),
                                         np.std([0.5, 0.3, 0.4], ddof=1) / np.sqrt(3)])
    np.testing.assert_allclose(sem[2:], 0.0)  # a single curve has no spread


def test_purity_figure_formats_and_groups(tiny, tmp_path):
    from topoviewer.analysis import PurityCurve

    _, _, analysis = tiny
    summary_curve = analysis.sheets["fc6"].summary["purity_curve"]
    rng = np.random.default_rng(0)
    d = np.arange(6) + 0.5
    trained = [PurityCurve((5.0, 5.0), d, np.clip(np.exp(-d / 1.5) + rng.normal(0, 0.05, 6), 0, 1),
                           np.full(6, 10), 1.0) for _ in range(5)]
    out = purity_figure({"trained": trained, "untrained": [summary_curve]}, tmp_path / "p.png", dpi=80)
    with Image.open(out) as im:
        assert im.format == "PNG" and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 50
    svg = purity_figure(trained, tmp_path / "p.svg", labels="TDANN")
    text = svg.read_text()
    assert "TDANN (n = 5, mean ± SEM)" in text and "qualitative reference" in text
    ET.parse(svg)
    pdf = purity_figure([trained, trained[:2]], tmp_path / "p.pdf", labels=["a", "b"])
    assert pdf.read_bytes().startswith(b"%PDF")


def test_purity_figure_errors(tmp_path):
    with pytest.raises(TopoviewerError, match="at least one"):
        purity_figure([], tmp_path / "p.png")
    with pytest.raises(TopoviewerError, match="labels"):
        purity_figure([([0.5], [1.0])], tmp_path / "p.png", labels=["a", "b"])
    with pytest.raises(TopoviewerError, match="distance_mm"):
        figures._curve_arrays({"purity": [1.0]})
    with pytest.raises(TopoviewerError, match="differ in shape"):
        figures._curve_arrays(([0.5, 1.5], [1.0]))


def test_map_figure_draws_the_null_band(tiny, tmp_path):
    from topoviewer.pipeline import analyze

    model, stimuli, _ = tiny
    analysis = analyze(model, stimuli, null=5)
    text = map_figure(analysis, model, tmp_path / "null.svg").read_text()
    assert "spatial null, 5–95 % (5 shuffles)" in text
    plain = map_figure(analyze(model, stimuli), model, tmp_path / "plain.svg").read_text()
    assert "spatial null" not in plain


def test_figure_and_screen_share_colormaps_and_limits(tiny, tmp_path, monkeypatch):
    """map_figure draws each map with the colormap and limits of topoviewer.style (the GUI's too)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.image import AxesImage

    from topoviewer.style import CMAP, DPRIME_PERCENTILE

    import topoviewer.figures as figures

    model, _, analysis = tiny
    fig_store = {}
    real_save = figures.save_figure
    monkeypatch.setattr(figures, "save_figure",
                        lambda fig, out, dpi=200: fig_store.setdefault("fig", fig) and real_save(fig, out, dpi))
    map_figure(analysis, model, tmp_path / "f.png", dpi=40)
    images = [im for ax in fig_store["fig"].get_axes() for im in ax.get_images() if isinstance(im, AxesImage)]
    sheet = model.sheets[0]
    dp = analysis.sheets[sheet.name].dprime["faces"]
    # own computation of the d′ limit: the 99th percentile of |d′|, at least 1.5 × 0.85
    lim = max(np.percentile(np.abs(dp), DPRIME_PERCENTILE), 1.5 * 0.85)
    first_sheet = images[:3]  # d′, voxel t, purity rings of the first sheet
    assert [im.get_cmap().name for im in first_sheet] == [CMAP["dprime"], CMAP["voxel_t"], CMAP["purity"]]
    np.testing.assert_allclose(first_sheet[0].get_clim(), (-lim, lim))
    t = analysis.sheets[sheet.name].voxel_t["faces"]
    tl = max(np.nanmax(np.abs(t)), 12.0)
    np.testing.assert_allclose(first_sheet[1].get_clim(), (-tl, tl))
    assert first_sheet[2].get_clim() == (0.0, 1.0)
